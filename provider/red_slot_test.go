package provider

import (
	"context"
	"fmt"
	"os"
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

// A plan that replaces a physical slot a standby streams through (its name
// changes) says so: without terminate_active_on_destroy the drop will fail,
// and with it the standby's session is ended. Before, only a destroy warned,
// and a replacement was silent until apply failed. The apply that fails
// leaves the slot and the standby's streaming as they were.
func TestAccReplicationSlot_replacingActiveSlotWarns(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	const addr = "pgreplication_replication_slot.used"
	const first, second = "red_slot_used", "red_slot_renamed"
	config := func(name string, terminate bool) string {
		return providerConfig("primary", topo.Primary) + fmt.Sprintf(`
resource "pgreplication_replication_slot" "used" {
  provider                    = pgreplication.primary
  name                        = %q
  type                        = "physical"
  immediately_reserve         = true
  terminate_active_on_destroy = %t
}
`, name, terminate)
	}
	activePID := func() int64 {
		return queryValue[int64](t, topo.Primary, "postgres", `SELECT coalesce((SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1), 0)`, first)
	}
	var pid int64
	logPath := traceLog(t)
	warnings := func(want ...string) func() {
		return func() {
			t.Helper()
			b, err := os.ReadFile(logPath)
			if err != nil {
				t.Fatal(err)
			}
			// The log holds diagnostics as JSON strings: quotes escaped.
			log := strings.Join(strings.Fields(string(b)), " ")
			for _, w := range want {
				if !strings.Contains(log, w) {
					t.Errorf("the plan did not warn %q", w)
				}
			}
			if err := os.Truncate(logPath, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkSlotsDropped(t, topo.Primary, first, second),
		Steps: []resource.TestStep{
			{Config: config(first, false)},
			{
				PreConfig: func() {
					execSQL(t, standby, "postgres", `ALTER SYSTEM SET primary_slot_name = `+pgsql.Literal(first))
					execSQL(t, standby, "postgres", `SELECT pg_reload_conf()`)
					waitFor(t, 30*time.Second, "the standby to stream through the slot", func() bool { return activePID() != 0 })
					pid = activePID()
					if err := os.Truncate(logPath, 0); err != nil {
						t.Fatal(err)
					}
				},
				Config:             config(second, false),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				PreConfig: warnings("Replication Slot Is Active",
					first+`\" (replacing it), which is in use by process`, `application_name \"replica-1\"`, "so the drop will fail"),
				Config: config(second, false),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionDestroyBeforeCreate),
				}},
				ExpectError: regexp.MustCompile(`Cannot\s+Drop\s+Active\s+Replication\s+Slot`),
			},
			{
				// The failed apply dropped nothing: the standby still streams
				// through the slot, in the same session.
				PreConfig: func() {
					if got := activePID(); got != pid {
						t.Errorf("after the failed replacement the slot's consumer is %d, want the standby's %d", got, pid)
					}
					if err := os.Truncate(logPath, 0); err != nil {
						t.Fatal(err)
					}
				},
				Config: config(first, true),
				Check: func(*terraform.State) error {
					if !slotExists(t, topo.Primary, first) {
						return fmt.Errorf("slot %s is gone", first)
					}
					return nil
				},
			},
			{
				Config:             config(second, true),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
	warnings("Dropping an Active Replication Slot Ends Its Consumer's Session",
		first+`\" (replacing it) with terminate_active_on_destroy = true, so it first terminates process`, `application_name \"replica-1\"`)()
}

// A temporary slot of another session is named as such, with what to do,
// when a configuration imports it or creates a slot of its name. Before,
// the import said no such object existed and the create that it existed
// and to import it.
func TestAccReplicationSlot_temporarySlotOfItsName(t *testing.T) {
	topo := testAccTopology(t)
	const name = "red_slot_temporary"
	ctx := context.Background()
	holder, err := pgx.Connect(ctx, topo.Primary.DSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Close(context.Background()) })
	if _, err := holder.Exec(ctx, `SELECT pg_create_physical_replication_slot($1, true, true)`, name); err != nil {
		t.Fatal(err)
	}
	config := providerConfig("", topo.Primary) + `
resource "pgreplication_replication_slot" "this" {
  name                = "` + name + `"
  type                = "physical"
  immediately_reserve = true
}
`
	temporary := fmt.Sprintf(`Replication slot %q on %s:%d is a temporary slot of process %d`, name, topo.Primary.Host, topo.Primary.Port, holder.PgConn().PID())
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config + `
import {
  to = pgreplication_replication_slot.this
  id = "` + name + `"
}
`,
				ExpectError: errorText("Cannot Import a Temporary Replication Slot", temporary, "let that session end"),
			},
			{
				Config:      config,
				ExpectError: errorText("Replication Slot Name Taken by a Temporary Slot", temporary, "choose another name"),
			},
		},
	})
}

// A physical slot that reserves no WAL yet (no immediately_reserve, no
// consumer) has no retained_wal_bytes, as the resource's and the data
// source's documentation say: null, like its restart_lsn and wal_status.
// Before, both showed 0 (greatest() of a NULL and 0), as for a slot whose
// consumer is caught up.
func TestAccReplicationSlot_unreservedRetainsNothing(t *testing.T) {
	topo := testAccTopology(t)
	const name = "red_slot_unreserved"
	const addr = "pgreplication_replication_slot.this"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkSlotsDropped(t, topo.Primary, name),
		Steps: []resource.TestStep{{
			Config: providerConfig("", topo.Primary) + `
resource "pgreplication_replication_slot" "this" {
  name = "` + name + `"
  type = "physical"
}

data "pgreplication_replication_status" "this" {
  depends_on = [pgreplication_replication_slot.this]
}
`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("restart_lsn"), knownvalue.Null()),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("retained_wal_bytes"), knownvalue.Null()),
				statecheck.ExpectKnownValue("data.pgreplication_replication_status.this", tfjsonpath.New("slots"), listContains(knownvalue.ObjectPartial(map[string]knownvalue.Check{
					"name":               knownvalue.StringExact(name),
					"restart_lsn":        knownvalue.Null(),
					"retained_wal_bytes": knownvalue.Null(),
				}))),
			},
		}},
	})
}

// The consumer named in a warning or error is what the provider's role may
// see of it: a role without pg_read_all_stats reads NULL for another role's
// backend type and client, which was shown as "client local" (a standby on
// another host named as a local session); it is now left out. A role that
// may see it gets the backend type, application_name and address.
func TestAccReplicationSlot_consumerSeenByUnprivilegedRole(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	const role = "tfacc_no_stats"
	execSQL(t, topo.Primary, "postgres", "CREATE ROLE "+role+" LOGIN")
	pid := queryValue[int64](t, topo.Primary, "postgres", `SELECT pid::bigint FROM pg_stat_replication`)
	describe := func(user string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cfg, err := pgx.ParseConfig(topo.Primary.DSN())
		if err != nil {
			t.Fatal(err)
		}
		cfg.User = user
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close(ctx) }()
		var row consumerRow
		if err := conn.QueryRow(ctx, consumerQuery, pid).Scan(&row.backend, &row.app, &row.addr, &row.port); err != nil {
			t.Fatal(err)
		}
		return describeConsumer(pid, row)
	}
	unprivileged := describe(role)
	t.Logf("as %s: %s", role, unprivileged)
	if !strings.HasPrefix(unprivileged, fmt.Sprintf("process %d", pid)) || strings.Contains(unprivileged, "client") {
		t.Errorf("as a role without pg_read_all_stats the standby's session reads %q: want its process ID and no client", unprivileged)
	}
	full := describe("postgres")
	want := fmt.Sprintf(`process %d (walsender, application_name "replica-1", client 127.0.0.1)`, pid)
	if full != want {
		t.Errorf("as a superuser the standby's session reads %q, want %q", full, want)
	}
	port := int32(-1)
	if got, want := describeConsumer(7, consumerRow{port: &port}), "process 7 (client on a Unix socket)"; got != want {
		t.Errorf("a Unix-socket session reads %q, want %q", got, want)
	}
}
