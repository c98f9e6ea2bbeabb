package provider

import (
	"context"
	"encoding/binary"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	fwresource "github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// syncConfig renders a pgreplication_synchronous_replication on topo's
// primary; body holds its attributes. The configuration talks to the
// primary only.
func syncConfig(topo *routertest.Topology, body string) string {
	return providerConfig("primary", topo.Primary) + `
resource "pgreplication_synchronous_replication" "this" {
  provider = pgreplication.primary
` + body + `
}
`
}

// TestAccSynchronousReplication_basic makes replica-1 synchronous, switches
// to a quorum of both standbys, and shows that hand edits of
// synchronous_standby_names (in every form PostgreSQL accepts) plan exactly
// the field they changed. It refuses, at plan time, a standby that is not
// connected, and destroy leaves commits unblocked.
func TestAccSynchronousReplication_basic(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	// Server-wide settings that can block commits: not the shared topology.
	topo := routertest.Start(t, routertest.WithStandbys(2))
	primary := topo.Primary
	const addr = "pgreplication_synchronous_replication.this"
	first := `
  standby_names = ["replica-1"]
`
	quorum := `
  method        = "any"
  num_sync      = 1
  standby_names = ["replica-1", "replica-2"]
`
	hostile := `
  method        = "any"
  standby_names = ["replica-1", "Stand \"by\" (x)", "UPPER case.x/y"]
`
	missing := `
  standby_names = ["replica-2", "replica-9"]
  num_sync      = 2
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			// Destroy resets the setting, and a commit returns again.
			if got := queryValue[string](t, primary, "postgres", `SHOW synchronous_standby_names`); got != "" {
				return fmt.Errorf("synchronous_standby_names = %q after destroy, want empty", got)
			}
			return commitWithin(primary, 10*time.Second)
		},
		Steps: []resource.TestStep{
			{
				Config: syncConfig(topo, first),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact("synchronous_replication")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("method"), knownvalue.StringExact("first")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("num_sync"), knownvalue.Int64Exact(1)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("synchronous_commit"), knownvalue.StringExact("on")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("sync_state"), knownvalue.MapExact(map[string]knownvalue.Check{
						"replica-1": knownvalue.StringExact("sync"),
						"replica-2": knownvalue.StringExact("async"),
					})),
				},
				Check: func(*terraform.State) error {
					if got := queryValue[string](t, primary, "postgres", `SHOW synchronous_standby_names`); got != `FIRST 1 ("replica-1")` {
						return fmt.Errorf("synchronous_standby_names = %s", got)
					}
					// replica-1 streams, so commits go through.
					return commitWithin(primary, 10*time.Second)
				},
			},
			{
				ResourceName:      addr,
				ImportState:       true,
				ImportStateId:     "synchronous_replication",
				ImportStateVerify: true,
			},
			{
				Config: syncConfig(topo, quorum),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				// Apply waits until the WAL senders report the new states;
				// sync_state, a live attribute, shows them from the next refresh.
				Check: syncStates(t, primary, map[string]string{"replica-1": "quorum", "replica-2": "quorum"}),
			},
			{
				PreConfig: func() {
					alterSystemByHand(t, primary, "synchronous_standby_names", `ANY 2 ("replica-1", "replica-2")`)
				},
				Config: syncConfig(topo, quorum),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectDrift(addr, "num_sync")},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("sync_state"), knownvalue.MapExact(map[string]knownvalue.Check{
						"replica-1": knownvalue.StringExact("quorum"),
						"replica-2": knownvalue.StringExact("quorum"),
					})),
				},
			},
			{
				// The pre-PostgreSQL 10 form: a bare list is FIRST 1.
				PreConfig: func() {
					alterSystemByHand(t, primary, "synchronous_standby_names", `"replica-1", "replica-2"`)
				},
				Config: syncConfig(topo, quorum),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectDrift(addr, "method")},
				},
			},
			{
				PreConfig: func() {
					alterSystemByHand(t, primary, "synchronous_standby_names", `ANY 1 ("replica-2", "replica-1")`)
				},
				Config: syncConfig(topo, quorum),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectDrift(addr, "standby_names")},
				},
			},
			{
				PreConfig: func() { alterSystemByHand(t, primary, "synchronous_commit", "remote_apply") },
				Config:    syncConfig(topo, quorum),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectDrift(addr, "synchronous_commit")},
				},
			},
			{
				// Reset by hand: synchronous replication is off, which the
				// plan shows as the standby list it lost.
				PreConfig: func() { alterSystemByHand(t, primary, "synchronous_standby_names", "") },
				Config:    syncConfig(topo, quorum),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectDrift(addr, "standby_names")},
				},
			},
			{
				// A name outside printable ASCII never matches a standby:
				// PostgreSQL escapes it in the walsender's application_name
				// (r\xc3\xa9plica-2), so commits would wait for a standby
				// that never confirms. Refused at plan, even when commits
				// may wait for standbys that are not there yet.
				Config:      syncConfig(topo, "method = \"any\"\n  standby_names = [\"replica-1\", \"réplica-2\", \"line\\nbreak\"]\n  allow_unavailable = true\n"),
				PlanOnly:    true,
				ExpectError: errorText("Invalid Standby Name", `"réplica-2" has characters outside printable ASCII`, "pg_stat_replication", "Invalid Standby Name", `"line\nbreak"`),
			},
			{
				// Quotes, spaces, dots, a slash, parentheses and upper case
				// survive as quoted names; replica-1 alone makes the quorum.
				Config: syncConfig(topo, hostile),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("standby_names"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.StringExact("replica-1"), knownvalue.StringExact(`Stand "by" (x)`), knownvalue.StringExact("UPPER case.x/y"),
					})),
				},
			},
			{
				ResourceName:      addr,
				ImportState:       true,
				ImportStateId:     "synchronous_replication",
				ImportStateVerify: true,
				// Live, as of the last refresh: the state has the states
				// from before the last update, the import reads current ones.
				ImportStateVerifyIgnore: []string{"sync_state"},
			},
			{
				Config:      syncConfig(topo, `standby_names = ["replica-1", "replica-2"]`+"\n  num_sync = 3"),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`num_sync Exceeds the Standby List`),
			},
			{
				// replica-9 does not exist: commits would block. Refused at plan.
				Config:      syncConfig(topo, missing),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Too Few Synchronous Standbys Connected.*needs\s+2\s+of\s+the\s+listed\s+standbys\s+streaming,\s+but\s+1\s+are.*Not\s+connected:\s+"replica-9".*allow_unavailable`),
			},
			{
				// Accepted when asked for. Commits on the primary now wait for
				// replica-9, so nothing writes until destroy resets it.
				Config: syncConfig(topo, missing+"  allow_unavailable = true\n"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("num_sync"), knownvalue.Int64Exact(2)),
				},
				Check: syncStates(t, primary, map[string]string{"replica-2": "sync"}),
			},
		},
	})
}

// syncStates checks pg_stat_replication's sync_state of the named standbys.
func syncStates(t *testing.T, primary *routertest.Node, want map[string]string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for name, state := range want {
			got := queryValue[string](t, primary, "postgres", `SELECT coalesce((SELECT sync_state FROM pg_stat_replication WHERE application_name = $1), 'not connected')`, name)
			if got != state {
				return fmt.Errorf("%s has sync_state %s, want %s", name, got, state)
			}
		}
		return nil
	}
}

// commitWithin commits a write on n, failing if the commit waits longer
// than timeout (as it does when synchronous standbys are missing).
func commitWithin(n *routertest.Node, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, n.DSN())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS sync_commit_probe (at timestamptz); INSERT INTO sync_commit_probe VALUES (now())`); err != nil {
		return fmt.Errorf("%s: a commit did not return within %s: %w", n.Name, timeout, err)
	}
	return nil
}

// TestAccSynchronousReplication_waitsForJoiningStandby lists a standby whose
// WAL sender is still starting (pg_stat_replication state startup), as a
// standby is right after an apply changed its primary_conninfo or slot: the
// provider waits until it streams instead of refusing it as not connected,
// and it becomes the synchronous standby.
func TestAccSynchronousReplication_waitsForJoiningStandby(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	// Server-wide settings that can block commits: not the shared topology.
	topo := routertest.Start(t, routertest.WithStandbys(0))
	const addr = "pgreplication_synchronous_replication.this"
	startStreaming := joiningStandby(t, topo.Primary, "joining")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			return commitWithin(topo.Primary, 10*time.Second)
		},
		Steps: []resource.TestStep{{
			PreConfig: func() {
				state := queryValue[string](t, topo.Primary, "postgres", `SELECT state FROM pg_stat_replication WHERE application_name = 'joining'`)
				if state != "startup" {
					t.Fatalf("the joining standby's WAL sender is %q before the plan, want startup", state)
				}
				// The plan, which checks the standbys, runs meanwhile.
				time.AfterFunc(3*time.Second, startStreaming)
			},
			Config: syncConfig(topo, `
  standby_names = ["joining"]
`),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("sync_state"), knownvalue.MapExact(map[string]knownvalue.Check{
					"joining": knownvalue.StringExact("sync"),
				})),
			},
			Check: func(*terraform.State) error {
				// The standby acknowledges WAL: commits return.
				return commitWithin(topo.Primary, 10*time.Second)
			},
		}},
	})
}

// joiningStandby opens a physical replication connection to primary named
// name, which pg_stat_replication shows in state startup. The function it
// returns makes it start streaming from the current WAL position,
// acknowledging everything it receives as flushed and applied, so that
// commits waiting for it as a synchronous standby return. It stops when the
// test ends.
func joiningStandby(t *testing.T, primary *routertest.Node, name string) (startStreaming func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := pgconn.Connect(ctx, primary.DSN()+"&replication=true&application_name="+name)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	identify, err := conn.Exec(ctx, "IDENTIFY_SYSTEM").ReadAll()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	start := string(identify[0].Rows[0][2]) // xlogpos
	done, begin := make(chan struct{}), make(chan struct{})
	var once sync.Once
	t.Cleanup(func() {
		cancel()
		<-done
		_ = conn.Close(context.Background())
	})
	go func() {
		defer close(done)
		select {
		case <-begin:
		case <-ctx.Done():
			return
		}
		fe := conn.Frontend()
		fe.Send(&pgproto3.Query{String: "START_REPLICATION PHYSICAL " + start})
		if fe.Flush() != nil {
			return
		}
		var received uint64
		for {
			msg, err := conn.ReceiveMessage(ctx)
			if err != nil {
				return
			}
			m, ok := msg.(*pgproto3.CopyData)
			if !ok || len(m.Data) < 17 {
				continue
			}
			switch m.Data[0] {
			case 'w': // XLogData: start, WAL end, send time, the WAL
				received = max(received, binary.BigEndian.Uint64(m.Data[1:])+uint64(len(m.Data)-25))
			case 'k': // keepalive: WAL end, send time, reply requested
				received = max(received, binary.BigEndian.Uint64(m.Data[1:]))
			default:
				continue
			}
			// Standby status update: written, flushed and applied up to
			// received, the time (unused by the server here), no reply wanted.
			reply := make([]byte, 34)
			reply[0] = 'r'
			for i := range 3 {
				binary.BigEndian.PutUint64(reply[1+8*i:], received)
			}
			fe.Send(&pgproto3.CopyData{Data: reply})
			if fe.Flush() != nil {
				return
			}
		}
	}()
	return func() { once.Do(func() { close(begin) }) }
}

// TestSynchronousReplication_planCheckFailureWarns: when the plan's check
// of the standbys fails for a reason other than a missing privilege (here
// the configuration points at a standby, where pg_current_wal_flush_lsn
// fails: recovery is in progress), the plan still goes on, since apply
// checks again, but warns with the server's error: before, it was
// swallowed, which once hid a query that could not scan (5df3af3).
func TestSynchronousReplication_planCheckFailureWarns(t *testing.T) {
	topo := testAccTopology(t)
	standby := topo.Standbys[0]
	ctx := context.Background()
	r := &synchronousReplicationResource{server: newServer(connSettings{
		Host: standby.Host, Port: int64(standby.Port), Database: "postgres", Username: "postgres", SSLMode: "disable",
	})}
	var sr fwresource.SchemaResponse
	r.Schema(ctx, fwresource.SchemaRequest{}, &sr)
	sch := sr.Schema
	m := synchronousReplicationResourceModel{
		ID: types.StringUnknown(), Method: types.StringValue("first"), NumSync: types.Int64Value(1),
		StandbyNames:      types.ListValueMust(types.StringType, []attr.Value{types.StringValue(topo.Standbys[1].Name)}),
		SynchronousCommit: types.StringValue("on"), AllowUnavailable: types.BoolValue(false), SyncState: types.MapUnknown(types.StringType),
	}
	plan := tfsdk.Plan{Schema: sch}
	if d := plan.Set(ctx, &m); d.HasError() {
		t.Fatal(d)
	}
	resp := fwresource.ModifyPlanResponse{Plan: plan}
	r.ModifyPlan(ctx, fwresource.ModifyPlanRequest{
		Config: tfsdk.Config{Schema: sch, Raw: plan.Raw},
		Plan:   plan,
		State:  tfsdk.State{Schema: sch, Raw: tftypes.NewValue(sch.Type().TerraformType(ctx), nil)},
	}, &resp)
	if resp.Diagnostics.HasError() || resp.Diagnostics.WarningsCount() != 1 {
		t.Fatalf("diagnostics %v, want one warning and no error", resp.Diagnostics)
	}
	w := resp.Diagnostics.Warnings()[0]
	for _, want := range []string{
		"Reading the primary's WAL position on " + r.server.describe() + " failed", "pg_current_wal_flush_lsn",
		"recovery is in progress", "Apply checks them again",
	} {
		if !strings.Contains(w.Detail(), want) {
			t.Errorf("the warning does not say %q: %s", want, w.Detail())
		}
	}
}
