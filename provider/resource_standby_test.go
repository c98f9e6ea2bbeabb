package provider

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// standbyConfig renders a pgreplication_standby on the first standby of
// topo, streaming from its primary; body adds attributes. The configuration
// talks to the standby only (one provider block: see
// testAccProtoV6ProviderFactories).
func standbyConfig(topo *routertest.Topology, body string) string {
	return providerConfig("standby1", topo.Standbys[0]) + standbyBlock("standby1", topo.Primary.Host, topo.Primary.Port, body)
}

// standbyBlock is the pgreplication_standby "this" that streams from
// host:port as postgres, on the provider alias (the default one when "");
// body adds attributes.
func standbyBlock(alias, host string, port int, body string) string {
	provider := ""
	if alias != "" {
		provider = fmt.Sprintf("  provider        = pgreplication.%s\n", alias)
	}
	return fmt.Sprintf(`
resource "pgreplication_standby" "this" {
%s  primary_host    = %q
  primary_port    = %d
  primary_user    = "postgres"
  primary_sslmode = "disable"
%s
}
`, provider, host, port, body)
}

// replicaWaiting is the body of a standby named replica-1 whose apply waits
// wait for it to stream: with standbyBlock, what the tests of failed
// applies declare.
func replicaWaiting(wait string) string {
	return fmt.Sprintf("  application_name = \"replica-1\"\n  wait_timeout     = %q", wait)
}

// TestAccStandby_basic declares a standby's streaming configuration with a
// physical slot, imports it, changes it in place, and shows that each hand
// edit (ALTER SYSTEM and a reload) plans exactly the field it changed.
func TestAccStandby_basic(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1)) // reconfigured: not the shared one
	standby := topo.Standbys[0]
	execSQL(t, topo.Primary, "postgres", `SELECT pg_create_physical_replication_slot('standby_basic')`)
	const addr = "pgreplication_standby.this"
	base := `
  application_name  = "replica-1"
  primary_slot_name = "standby_basic"
  wait_timeout      = "30s"
`
	updated := base + `
  hot_standby_feedback     = true
  recovery_min_apply_delay = "300s"
`
	// Only a provider attribute changes: an update that must not touch the
	// server (the WAL receiver keeps its pid).
	updatedWait := strings.Replace(updated, `"30s"`, `"45s"`, 1)
	var receiverPID int
	handConninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres sslmode=disable application_name=by_hand", topo.Primary.Port)
	// routertest trusts every local connection, so the password is not
	// checked; it must still round-trip through primary_conninfo.
	hostile := `
  application_name  = "Replica \"one\" 'ü' \\ x"
  primary_slot_name = "standby_basic"
  primary_password  = "pa'ss \\word"
  primary_conninfo_params = {
    connect_timeout = "10"
  }
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			// Destroy forgets: the standby must still stream through the slot.
			return waitStreamingFrom(standby, topo.Primary.Port)
		},
		Steps: []resource.TestStep{
			{
				Config: standbyConfig(topo, base),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact("standby")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("status"), knownvalue.StringExact("streaming")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("sender_host"), knownvalue.StringExact(topo.Primary.Host)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("sender_port"), knownvalue.Int64Exact(int64(topo.Primary.Port))),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("primary_slot_name"), knownvalue.StringExact("standby_basic")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("primary_sslmode"), knownvalue.StringExact("disable")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("hot_standby_feedback"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("max_standby_streaming_delay"), knownvalue.StringExact("30s")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("received_lsn"), knownvalue.StringRegexp(regexp.MustCompile(`^[0-9A-F]+/[0-9A-F]+$`))),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("replay_lag"), knownvalue.NotNull()),
				},
				Check: func(*terraform.State) error {
					// The primary sees the standby through the declared slot and name.
					active := queryValue[bool](t, topo.Primary, "postgres", `SELECT active FROM pg_replication_slots WHERE slot_name = 'standby_basic'`)
					name := queryValue[string](t, topo.Primary, "postgres", `SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'`)
					if !active || name != "replica-1" {
						return fmt.Errorf("primary: slot active %v, streaming standby %q; want true, replica-1", active, name)
					}
					return nil
				},
			},
			{
				ResourceName:      addr,
				ImportState:       true,
				ImportStateId:     "standby",
				ImportStateVerify: true,
				// wait_timeout is the provider's own (import sets the default,
				// the test uses 30s); the LSNs and the lag are measurements
				// that move whenever the primary writes WAL.
				ImportStateVerifyIgnore: []string{"wait_timeout", "received_lsn", "replay_lsn", "replay_lag"},
			},
			{
				// ALTER SYSTEM refuses a line break anywhere in
				// primary_conninfo: refused before the plan, on the attribute.
				Config:      standbyConfig(topo, strings.Replace(base, `"replica-1"`, `"replica-1\n"`, 1)+"  passfile = \"/pgpass\\n\"\n"),
				PlanOnly:    true,
				ExpectError: errorText("Value Contains a Line Break", `application_name = "replica-1\n"`, "Value Contains a Line Break", `passfile = "/pgpass\n"`),
			},
			{
				// A keyword with its own attribute is refused before the plan.
				Config:      standbyConfig(topo, base+"  primary_conninfo_params = { port = \"5433\" }\n"),
				PlanOnly:    true,
				ExpectError: errorText("Invalid Connection Parameter", "pgreplication_standby has an attribute for it"),
			},
			{
				Config: standbyConfig(topo, updated),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("hot_standby_feedback"), knownvalue.Bool(true)),
					// Kept as written, though the server shows 5min: no diff.
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("recovery_min_apply_delay"), knownvalue.StringExact("300s")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("status"), knownvalue.StringExact("streaming")),
				},
				Check: func(*terraform.State) error {
					if got := queryValue[string](t, standby, "postgres", `SHOW recovery_min_apply_delay`); got != "5min" {
						return fmt.Errorf("recovery_min_apply_delay = %s on the standby, want 5min", got)
					}
					return nil
				},
			},
			{
				PreConfig: func() {
					receiverPID = queryValue[int](t, standby, "postgres", `SELECT pid FROM pg_stat_wal_receiver`)
				},
				Config: standbyConfig(topo, updatedWait),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				Check: func(*terraform.State) error {
					if pid := queryValue[int](t, standby, "postgres", `SELECT pid FROM pg_stat_wal_receiver`); pid != receiverPID {
						return fmt.Errorf("the WAL receiver restarted (pid %d, was %d) for a change of wait_timeout only", pid, receiverPID)
					}
					return nil
				},
			},
			{
				PreConfig: func() { alterSystemByHand(t, standby, "primary_conninfo", handConninfo) },
				Config:    standbyConfig(topo, updatedWait),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectDrift(addr, "application_name")},
				},
			},
			{
				PreConfig: func() { alterSystemByHand(t, standby, "hot_standby_feedback", "off") },
				Config:    standbyConfig(topo, updatedWait),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectDrift(addr, "hot_standby_feedback")},
				},
			},
			{
				PreConfig: func() { alterSystemByHand(t, standby, "recovery_min_apply_delay", "1min") },
				Config:    standbyConfig(topo, updatedWait),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectDrift(addr, "recovery_min_apply_delay")},
				},
			},
			{
				// Without primary_conninfo the standby configuration is gone.
				PreConfig: func() { alterSystemByHand(t, standby, "primary_conninfo", "") },
				Config:    standbyConfig(topo, updatedWait),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectRecreate(addr)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("status"), knownvalue.StringExact("streaming")),
				},
			},
			{
				// Quotes, a backslash, spaces and non-ASCII survive
				// primary_conninfo's quoting and the SQL literal around it;
				// the password reads back (import verifies it too).
				Config: standbyConfig(topo, hostile),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("application_name"), knownvalue.StringExact(`Replica "one" 'ü' \ x`)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("status"), knownvalue.StringExact("streaming")),
				},
			},
			{
				ResourceName:            addr,
				ImportState:             true,
				ImportStateId:           "standby",
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"wait_timeout", "received_lsn", "replay_lsn", "replay_lag"},
			},
		},
	})
}

// A hand edit of primary_conninfo that the next apply reverts before the
// standby's startup process took the edit's reload leaves the WAL receiver
// as it was: the startup process reads the configuration once, sees no
// change, and never restarts it. Apply must see that the receiver already
// runs the planned settings instead of waiting wait_timeout for a restart
// (TestAccStandby_basic failed so at load 35: "Standby Is Not Streaming",
// the standby reporting it streams as planned). The startup process is
// stopped (SIGSTOP) from the hand edit until the apply's settings are in
// effect, which makes that order certain.
func TestAccStandby_handEditRevertedBeforeStartupReload(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1)) // stopped in part: not the shared one
	standby := topo.Standbys[0]
	const addr = "pgreplication_standby.this"
	body := `
  application_name = "replica-1"
  wait_timeout     = "15s"
`
	startup := queryValue[int](t, standby, "postgres", `SELECT pid FROM pg_stat_activity WHERE backend_type = 'startup'`)
	t.Cleanup(func() { _ = continueProcess(startup) })
	handConninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres sslmode=disable application_name=by_hand", topo.Primary.Port)
	var receiverPID int
	resumed := make(chan error, 1)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				// Another application_name first, so that this apply writes
				// primary_conninfo in the provider's spelling, which the
				// startup process then runs with: a standby whose text
				// already means the declared connection keeps its text.
				PreConfig: func() {
					alterSystemByHand(t, standby, "primary_conninfo", strings.Replace(handConninfo, "by_hand", "before_test", 1))
				},
				Config: standbyConfig(topo, body),
			},
			{
				PreConfig: func() {
					receiverPID = queryValue[int](t, standby, "postgres", `SELECT pid FROM pg_stat_wal_receiver`)
					if err := stopProcess(startup); err != nil {
						t.Fatal(err)
					}
					alterSystemByHand(t, standby, "primary_conninfo", handConninfo)
					// Once the apply's settings are in effect, the startup
					// process takes both reloads as one.
					go func() {
						_, err := pollUntil(context.Background(), time.Minute, func(context.Context) (bool, error) {
							var cur string
							err := queryRow(standby, `SELECT setting FROM pg_settings WHERE name = 'primary_conninfo'`, nil, &cur)
							return err == nil && cur != handConninfo, nil
						})
						if kerr := continueProcess(startup); err == nil {
							err = kerr
						}
						resumed <- err
					}()
				},
				Config: standbyConfig(topo, body),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectDrift(addr, "application_name")},
				},
				Check: func(*terraform.State) error {
					if err := <-resumed; err != nil {
						return err
					}
					// The premise: the receiver never restarted.
					if pid := queryValue[int](t, standby, "postgres", `SELECT pid FROM pg_stat_wal_receiver`); pid != receiverPID {
						return fmt.Errorf("the WAL receiver restarted (pid %d, was %d): the startup process took the hand edit, and this test proves nothing", pid, receiverPID)
					}
					return nil
				},
			},
		},
	})
}

// TestAccStandby_badPrimary points a standby at a port where no primary
// listens: apply fails after wait_timeout and says what the standby reports.
func TestAccStandby_badPrimary(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	port := freePort(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      providerConfig("standby1", topo.Standbys[0]) + standbyBlock("standby1", "127.0.0.1", port, replicaWaiting("5s")),
			ExpectError: regexp.MustCompile(fmt.Sprintf(`(?s)Standby Is Not Streaming.*does\s+not\s+stream\s+from\s+127\.0\.0\.1:%d.*reports:.*pg_stat_wal_receiver.*primary_conninfo`, port)),
		}},
	})
}

// A standby slow to answer its status when wait_timeout ends (as on a
// machine at load 28, where TestAccStandby_badPrimary once said "Cannot Read
// Standby Status … no answer within 4.98s") is reported as not streaming,
// with the status it gave, not as a standby that did not answer. Every
// answer to the status query comes a second late here, so the deadline
// falls while one is on its way (the old wait failed so 5 of 5 runs).
func TestAccStandby_slowStatusAtDeadline(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	slow := standby.NewProxy(t)
	slow.DelayAnswers("pg_stat_wal_receiver", time.Second)
	port := freePort(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      providerBlockAt("", standby.Host, slow.Port(), "postgres", "postgres", "disable") + standbyBlock("", "127.0.0.1", port, replicaWaiting("5s")),
			ExpectError: regexp.MustCompile(fmt.Sprintf(`(?s)Standby Is Not Streaming.*does\s+not\s+stream\s+from\s+127\.0\.0\.1:%d.*reports:.*pg_stat_wal_receiver.*primary_conninfo`, port)),
		}},
	})
}

// duringStandbyWait runs fault on the standby once it shows primary_conninfo
// with port, which the provider wrote, and the provider has its answer to
// pg_reload_conf(): apply is then waiting for the standby to stream. It
// returns a function that waits for fault to have run and returns how long
// ago it did.
//
// A new session shows the new primary_conninfo as soon as the postmaster
// took the reload's signal, which can be before the provider's session has
// sent it pg_reload_conf()'s answer: a fault then (a freeze, at load 30)
// cuts that statement, not the wait, and the apply fails on the statement's
// own bound (statement_timeout and its grace) with another error. So the
// fault waits until no provider session is still on pg_reload_conf(): one
// that has sent another statement since, or let its session go.
func duringStandbyWait(t *testing.T, standby *routertest.Node, port int, fault func() error) (sinceFault func() time.Duration) {
	t.Helper()
	done := make(chan time.Time, 1)
	go func() {
		want := fmt.Sprintf("port=%d", port)
		const reloadAnswered = `SELECT current_setting('primary_conninfo'), NOT EXISTS (
  SELECT FROM pg_stat_activity a
  WHERE a.application_name = 'terraform-provider-pgreplication' AND a.query ILIKE '%pg_reload_conf()%'
    AND NOT EXISTS (SELECT FROM pg_stat_activity b
      WHERE b.application_name = a.application_name AND b.query_start > a.query_start AND b.query NOT ILIKE '%pg_reload_conf()%'))`
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			var cur string
			var answered bool
			if err := queryRow(standby, reloadAnswered, nil, &cur, &answered); err == nil && answered && strings.Contains(strings.ReplaceAll(cur, "'", ""), want) {
				if err := fault(); err != nil {
					t.Error(err)
				}
				done <- time.Now()
				return
			}
		}
		t.Error("the provider never wrote primary_conninfo with port", port)
		done <- time.Now()
	}()
	return func() time.Duration { return time.Since(<-done) }
}

// standbyWaitConfig is a standby on topo's only standby streaming from a
// port where no primary listens, so that apply waits wait_timeout (8s); its
// provider's statement_timeout is 40s, the bound of one statement before the
// wait was bounded as a whole.
func standbyWaitConfig(topo *routertest.Topology, port int) string {
	s := topo.Standbys[0]
	return fmt.Sprintf(`
provider "pgreplication" {
  host              = %q
  port              = %d
  username          = "postgres"
  database          = "postgres"
  sslmode           = "disable"
  statement_timeout = "40s"
}
`, s.Host, s.Port) + standbyBlock("", "127.0.0.1", port, replicaWaiting("8s"))
}

// A standby that stops answering (SIGSTOP) while apply waits for it to
// stream fails the apply when wait_timeout ends, saying it did not answer,
// instead of after the provider's statement_timeout (40s here, 5min by
// default): wait_timeout bounds the wait, statements included.
func TestAccStandby_frozenDuringWait(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1)) // frozen: not the shared one
	standby := topo.Standbys[0]
	t.Cleanup(func() {
		if err := standby.Thaw(); err != nil {
			t.Error(err)
		}
	})
	port := freePort(t)
	sinceFreeze := duringStandbyWait(t, standby, port, standby.Freeze)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      standbyWaitConfig(topo, port),
			ExpectError: errorText("Cannot Read Standby", standby.Host+":"+itoa(standby.Port), "no answer within"),
		}},
	})
	// The apply ends at most 8s after the freeze; the CLI's own work after
	// it (and a busy machine) gets the rest of the margin.
	elapsed := sinceFreeze()
	if elapsed > 30*time.Second {
		t.Errorf("the apply failed %s after the standby froze; want within wait_timeout (8s) and a margin", elapsed)
	}
	t.Logf("the test ended %s after the standby froze", elapsed)
}

// A standby restarted while apply waits for it to stream is waited for, not
// reported as a failed read: the apply goes on until wait_timeout and then
// says why the standby does not stream (here: no primary at that port).
func TestAccStandby_restartedDuringWait(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1)) // restarted: not the shared one
	standby := topo.Standbys[0]
	port := freePort(t)
	sinceRestart := duringStandbyWait(t, standby, port, func() error { return standby.Restart(context.Background()) })
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      standbyWaitConfig(topo, port),
			ExpectError: errorText("Standby Is Not Streaming", fmt.Sprintf("does not stream from 127.0.0.1:%d", port)),
		}},
	})
	sinceRestart()
}

// TestAccStandby_notAStandby plans a standby configuration against a
// primary: the plan fails, naming the server and the fix.
func TestAccStandby_notAStandby(t *testing.T) {
	topo := testAccTopology(t) // plan only: nothing changes
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: providerConfig("primary", topo.Primary) + fmt.Sprintf(`
resource "pgreplication_standby" "on_primary" {
  provider     = pgreplication.primary
  primary_host = "127.0.0.1"
  primary_port = %d
  primary_user = "postgres"
}
`, topo.Standbys[0].Port),
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(fmt.Sprintf(`(?s)Server Is Not a Standby.*127\.0\.0\.1:%d\s+is\s+not\s+in\s+recovery.*Point\s+the\s+resource's\s+provider\s+at\s+the\s+standby`, topo.Primary.Port)),
		}},
	})
}

// TestAccStandby_resetOnDestroy destroys with reset_on_destroy = true: the
// settings are reset, and (as documented) the standby stops streaming.
func TestAccStandby_resetOnDestroy(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			ok, _ := pollUntil(context.Background(), 30*time.Second, func(context.Context) (bool, error) {
				var conninfo string
				var receivers int
				err := queryRow(standby, `SELECT current_setting('primary_conninfo'), (SELECT count(*) FROM pg_stat_wal_receiver)`, nil, &conninfo, &receivers)
				return err == nil && conninfo == "" && receivers == 0, nil
			})
			if !ok {
				return fmt.Errorf("%s: primary_conninfo still set or a WAL receiver still runs after destroy with reset_on_destroy", standby.Name)
			}
			return nil
		},
		Steps: []resource.TestStep{{
			Config: standbyConfig(topo, `
  application_name = "replica-1"
  reset_on_destroy = true
`),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("pgreplication_standby.this", tfjsonpath.New("status"), knownvalue.StringExact("streaming")),
			},
		}},
	})
}

// alterSystemByHand changes a setting on a node the way an operator would
// (ALTER SYSTEM and a reload), and waits until new sessions see it. An
// empty value resets the setting.
func alterSystemByHand(t *testing.T, n *routertest.Node, name, value string) {
	t.Helper()
	old := queryValue[string](t, n, "postgres", `SELECT setting FROM pg_settings WHERE name = $1`, name)
	if value == "" {
		execSQL(t, n, "postgres", "ALTER SYSTEM RESET "+pgsql.Ident(name))
	} else {
		execSQL(t, n, "postgres", "ALTER SYSTEM SET "+pgsql.Ident(name)+" = "+pgsql.Literal(value))
	}
	execSQL(t, n, "postgres", "SELECT pg_reload_conf()")
	ok, _ := pollUntil(context.Background(), 10*time.Second, func(context.Context) (bool, error) {
		var cur string
		err := queryRow(n, `SELECT setting FROM pg_settings WHERE name = $1`, []any{name}, &cur)
		return err == nil && cur != old, nil
	})
	if !ok {
		t.Fatalf("%s: %s is still %q after ALTER SYSTEM and a reload", n.Name, name, old)
	}
}

// queryRow runs a one-row query and scans it into dest; unlike queryValue
// it returns the error, for checks that poll.
func queryRow(n *routertest.Node, sql string, args []any, dest ...any) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, n.DSN())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sql, args...).Scan(dest...)
}

// waitStreamingFrom waits until a standby's WAL receiver streams from port.
func waitStreamingFrom(n *routertest.Node, port int) error {
	var status string
	var from int
	ok, _ := pollUntil(context.Background(), 30*time.Second, func(context.Context) (bool, error) {
		err := queryRow(n, `SELECT status, sender_port FROM pg_stat_wal_receiver`, nil, &status, &from)
		return err == nil && status == "streaming" && from == port, nil
	})
	if !ok {
		return fmt.Errorf("%s does not stream from port %d (status %q, sender port %d)", n.Name, port, status, from)
	}
	return nil
}

// freePort returns a port nothing listens on, a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestAccStandby_writeOnlyPassword streams as a role whose password the
// primary checks (scram-sha-256), given write-only: the standby
// authenticates with it, neither `terraform show -json` nor the state file
// holds it, a new value alone changes nothing, a new version writes it
// (the standby reconnects with it after the primary changed the role's
// password), and a change of another connection parameter keeps it. With a
// CLI older than 1.11 the framework refuses the argument, naming it.
func TestAccStandby_writeOnlyPassword(t *testing.T) {
	testAccPreCheck(t)
	if !cliSupportsWriteOnly(t) {
		topo := testAccTopology(t) // refused at validation: nothing changes
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
			Steps: []resource.TestStep{{
				Config:      standbyConfig(topo, `primary_password_wo = "x"`+"\n"+`primary_password_wo_version = 1`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)WriteOnly Attribute Not Allowed.*primary_password_wo`),
			}},
		})
		return
	}
	topo := routertest.Start(t, routertest.WithStandbys(1)) // reconfigured: not the shared one
	standby := topo.Standbys[0]
	const role, first, second = "standby_wo", "first-wo-Secret", "second-wo-Secret"
	execSQL(t, topo.Primary, "postgres", "SET password_encryption = 'scram-sha-256'; CREATE ROLE "+role+" LOGIN REPLICATION PASSWORD '"+first+"'")
	if err := topo.Primary.RequirePassword(context.Background(), role); err != nil {
		t.Fatal(err)
	}
	const addr = "pgreplication_standby.this"
	config := func(password string, version int, appName string) string {
		return providerConfig("standby1", standby) + fmt.Sprintf(`
resource "pgreplication_standby" "this" {
  provider                    = pgreplication.standby1
  primary_host                = %q
  primary_port                = %d
  primary_user                = %q
  primary_sslmode             = "disable"
  primary_password_wo         = %q
  primary_password_wo_version = %d
  application_name            = %q
  wait_timeout                = "30s"
}
`, topo.Primary.Host, topo.Primary.Port, role, password, version, appName)
	}
	// The standby's primary_conninfo holds the password it was given.
	conninfoHas := func(want, notWant string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			ci := queryValue[string](t, standby, "postgres", `SELECT current_setting('primary_conninfo')`)
			if !strings.Contains(ci, want) || strings.Contains(ci, notWant) {
				return fmt.Errorf("primary_conninfo of %s does not hold the password of the last version (%q, not %q)", standby.Name, want, notWant)
			}
			return nil
		}
	}
	// The primary streams to the standby as the password-checked role.
	streamingAs := func(appName string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			n := queryValue[int](t, topo.Primary, "postgres",
				`SELECT count(*) FROM pg_stat_replication WHERE usename = $1 AND application_name = $2 AND state = 'streaming'`, role, appName)
			if n != 1 {
				return fmt.Errorf("the primary has %d streaming standbys as %s named %s, want 1", n, role, appName)
			}
			return nil
		}
	}
	dir := t.TempDir()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		WorkingDir:               dir,
		Steps: []resource.TestStep{
			{
				// Both passwords: refused at plan time, on the attribute.
				Config:      standbyConfig(topo, `primary_password = "a"`+"\n"+`primary_password_wo = "b"`+"\n"+`primary_password_wo_version = 1`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid Attribute Combination.*primary_password_wo`),
			},
			{
				// A version without the password.
				Config:      standbyConfig(topo, `primary_password_wo_version = 1`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid Attribute Combination.*primary_password_wo`),
			},
			{
				Config: config(first, 1, "wo-1"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("status"), knownvalue.StringExact("streaming")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("primary_password"), knownvalue.Null()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("primary_password_wo"), knownvalue.Null()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("primary_password_wo_version"), knownvalue.Int64Exact(1)),
					expectNoSecret(dir, first),
				},
				Check: resource.ComposeTestCheckFunc(conninfoHas(first, second), streamingAs("wo-1")),
			},
			{
				// The primary's role gets a new password. A new value without a
				// new version is no change: Terraform cannot compare write-only values.
				PreConfig: func() {
					execSQL(t, topo.Primary, "postgres", "SET password_encryption = 'scram-sha-256'; ALTER ROLE "+role+" PASSWORD '"+second+"'")
				},
				Config:   config(second, 1, "wo-1"),
				PlanOnly: true,
			},
			{
				// A new version writes it: the WAL receiver restarts and
				// authenticates with the new password (the old one no longer works).
				Config: config(second, 2, "wo-1"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("status"), knownvalue.StringExact("streaming")),
					expectNoSecret(dir, first),
					expectNoSecret(dir, second),
				},
				Check: resource.ComposeTestCheckFunc(conninfoHas(second, first), streamingAs("wo-1")),
			},
			{
				// Another parameter of primary_conninfo changes, the version
				// does not: the standby keeps the password it has, and
				// reconnects with it.
				Config: config("ignored-without-a-new-version", 2, "wo-2"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("application_name"), knownvalue.StringExact("wo-2")),
					expectNoSecret(dir, second),
				},
				Check: resource.ComposeTestCheckFunc(conninfoHas(second, "ignored"), streamingAs("wo-2")),
			},
		},
	})
}
