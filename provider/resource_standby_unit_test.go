package provider

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/normalized"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/syncrep"
)

// Read turns any primary_conninfo into fields: libpq's defaults for what it
// leaves out, unknown keywords into primary_conninfo_params, and time
// settings as the server spells them (the framework keeps the configuration's
// spelling when it means the same: normalized.PostgresTime).
func TestStandbyStateFill(t *testing.T) {
	s := standbyState{
		Conninfo:        `host=db1 user='rep user' password='se\'cret' keepalives_idle=30`,
		ApplyDelay:      "5min",
		StreamingDelay:  "-1",
		ReceiverTimeout: "1min",
	}
	m := standbyResourceModel{
		RecoveryMinApplyDelay:    normalized.NewPostgresTime("300s"),
		MaxStandbyStreamingDelay: normalized.NewPostgresTime("30s"),
	}
	if err := s.fill(context.Background(), &m); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{
		"host": m.PrimaryHost.ValueString(), "user": m.PrimaryUser.ValueString(), "password": m.PrimaryPassword.ValueString(),
		"sslmode": m.PrimarySSLMode.ValueString(), "apply": m.RecoveryMinApplyDelay.ValueString(),
		"streaming": m.MaxStandbyStreamingDelay.ValueString(), "receiver": m.WalReceiverTimeout.ValueString(), "status": m.Status.ValueString(),
	}
	for k, v := range map[string]string{
		"host": "db1", "user": "rep user", "password": "se'cret", "sslmode": "prefer",
		"apply": "5min", "streaming": "-1", "receiver": "1min", "status": "stopped",
	} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if m.PrimaryPort.ValueInt64() != 5432 || !m.ApplicationName.IsNull() || !m.PrimarySlotName.IsNull() || !m.SenderPort.IsNull() {
		t.Errorf("defaults: port %v, application_name %v, slot %v, sender_port %v", m.PrimaryPort, m.ApplicationName, m.PrimarySlotName, m.SenderPort)
	}
	extra := map[string]string{}
	m.PrimaryConninfoParams.ElementsAs(context.Background(), &extra, false)
	if len(extra) != 1 || extra["keepalives_idle"] != "30" {
		t.Errorf("primary_conninfo_params = %v, want keepalives_idle only", extra)
	}

	// A port list (a host list's, one port per host) reads into
	// primary_ports, libpq's empty entry as the default port, and
	// primary_port keeps its default; one port into primary_port.
	s.Conninfo = "host=db1,db2,db3 port=5433,,5434"
	if err := s.fill(context.Background(), &m); err != nil {
		t.Fatal(err)
	}
	var ports []int64
	m.PrimaryPorts.ElementsAs(context.Background(), &ports, false)
	if !slices.Equal(ports, []int64{5433, 5432, 5434}) || m.PrimaryPort.ValueInt64() != 5432 {
		t.Errorf("port=5433,,5434: primary_ports %v, primary_port %v; want [5433 5432 5434] and 5432", ports, m.PrimaryPort)
	}
	s.Conninfo = "host=db1,db2 port=5433"
	if err := s.fill(context.Background(), &m); err != nil || !m.PrimaryPorts.IsNull() || m.PrimaryPort.ValueInt64() != 5433 {
		t.Errorf("port=5433: primary_ports %v, primary_port %v, err %v; want null and 5433", m.PrimaryPorts, m.PrimaryPort, err)
	}
	s.Conninfo = "host=db1 port=x"
	if err := s.fill(context.Background(), &m); err == nil || !strings.Contains(err.Error(), "primary_ports") {
		t.Errorf("port=x: err %v, want one that names primary_port and primary_ports", err)
	}
}

// The addresses a standby may stream from pair hosts and ports as libpq
// does: one port for every host, or one each.
func TestStandbyWantPrimaries(t *testing.T) {
	for conninfo, want := range map[string]string{
		"host=db1":                     "db1:5432",
		"host=db1 port=5433":           "db1:5433",
		"host=db1,db2 port=5433":       "db1:5433 or db2:5433",
		"host=db1,db2 port=5433,5434":  "db1:5433 or db2:5434",
		"host='db1, db2' port=',5434'": "db1:5432 or db2:5434",
	} {
		if got := (standbyWant{Conninfo: conninfo}).primariesText(); got != want {
			t.Errorf("%s: %q, want %q", conninfo, got, want)
		}
	}
}

// The apply-time and plan-time availability check counts standbys the way
// the server matches them: case-insensitively, "*" matching every one.
func TestListedStreaming(t *testing.T) {
	streaming := []string{"replica-1", "Replica-2", "walreceiver"}
	for _, tc := range []struct {
		names   []string
		listed  int
		missing int
	}{
		{[]string{"replica-1"}, 1, 0},
		{[]string{"replica-1", "replica-2"}, 2, 0},
		{[]string{"replica-9", "REPLICA-1"}, 1, 1},
		{[]string{"*"}, 3, 0},
		{[]string{"replica-9", "*"}, 3, 1},
	} {
		listed, missing := listedStreaming(syncrep.Config{Method: syncrep.First, NumSync: 1, Standbys: tc.names}, streaming)
		if listed != tc.listed || len(missing) != tc.missing {
			t.Errorf("%v: listed %d, missing %v; want %d listed, %d missing", tc.names, listed, missing, tc.listed, tc.missing)
		}
	}
}

// runsAlready: the running WAL receiver counts as already on the planned
// settings only when its conninfo (as pg_stat_wal_receiver shows it,
// unquoted, the password hidden) holds each planned parameter whole, and
// the password is the one it started with; otherwise apply waits for it to
// restart.
func TestStandbyRunsAlready(t *testing.T) {
	shown := "user=rep user password=******** channel_binding=prefer dbname=replication host=db1 port=5432 fallback_application_name=walreceiver sslmode=prefer"
	longerPort := strings.Replace(shown, "port=5432", "port=54321", 1)
	otherHost := strings.Replace(shown, "host=db1", "host=db2", 1)
	want := standbyWant{Conninfo: `host=db1 port=5432 user='rep user' password=new`, password: "new"}
	for _, c := range []struct {
		name     string
		conninfo *string
		before   string
		wantRuns bool
	}{
		{"the planned settings, same password", &shown, `host=db1 port=5432 user='rep user' password=new`, true},
		{"the planned settings, the password changed", &shown, `host=db1 port=5432 user='rep user' password=old`, false},
		{"a port the planned one begins", &longerPort, `host=db1 port=54321 user='rep user' password=new`, false},
		{"another host", &otherHost, `host=db2 port=5432 user='rep user' password=new`, false},
		{"no conninfo shown", nil, `host=db1 port=5432 user='rep user' password=new`, false},
	} {
		s := standbyState{ReceiverConninfo: c.conninfo}
		if got := s.runsAlready(standbyState{Conninfo: c.before}, want); got != c.wantRuns {
			t.Errorf("%s: runsAlready = %v, want %v", c.name, got, c.wantRuns)
		}
	}
}
