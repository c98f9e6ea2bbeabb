package provider

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A slot replaced by a logical slot of a plugin the server cannot load
// (a typo, a package not installed, a library that is no output plugin)
// is refused at plan, and the slot stays, at the position it had. Before,
// the plan passed, the apply dropped the old slot and then failed to
// create the new one: the slot and its consumer's position were lost for
// nothing. The same for a physical slot replaced by a logical one. A
// plugin the server loads replaces the slot as before, and the check
// leaves no slot of its own behind.
func TestAccReplicationSlot_pluginCheckedBeforeDrop(t *testing.T) {
	testAccPreCheck(t)
	// A server of its own: a long transaction of another test would hold
	// the check past its 5 s, and the plan would only warn.
	topo := routertest.Start(t, routertest.WithStandbys(0), routertest.WithSetting("wal_level", "logical"))
	logPath := traceLog(t)
	const name = "pc_plugin_checked"
	const addr = "pgreplication_replication_slot.this"
	config := func(body string) string {
		return providerConfig("primary", topo.Primary) + `
resource "pgreplication_replication_slot" "this" {
  provider = pgreplication.primary
  name     = "` + name + `"
` + body + `
}
`
	}
	// The slot as the last apply left it: another slot of that name (the
	// drop and create of a replacement) has another position, since WAL
	// moves on after each step (moveWAL).
	var was struct{ slotType, plugin, lsn string }
	slot := func() (slotType, plugin, lsn string) {
		t.Helper()
		var p, l *string
		if err := queryRow(topo.Primary, `SELECT slot_type, plugin, restart_lsn::text FROM pg_replication_slots WHERE slot_name = $1`,
			[]any{name}, &slotType, &p, &l); err != nil {
			t.Fatalf("reading slot %s: %v", name, err)
		}
		if p != nil {
			plugin = *p
		}
		if l != nil {
			lsn = *l
		}
		return slotType, plugin, lsn
	}
	remember := func() {
		was.slotType, was.plugin, was.lsn = slot()
		execSQL(t, topo.Primary, "postgres", `SELECT pg_switch_wal(), pg_logical_emit_message(false, 'pc', 'moved on')`)
	}
	// stillThere is the PreConfig after a refused plan: the slot is the
	// one from before, and no check slot is left.
	stillThere := func() {
		t.Helper()
		if !slotExists(t, topo.Primary, name) {
			t.Fatalf("slot %s was dropped by a plan the provider refused", name)
		}
		if typ, plugin, lsn := slot(); typ != was.slotType || plugin != was.plugin || lsn != was.lsn {
			t.Fatalf("slot %s is now %s/%q at %s, want the one from before, %s/%q at %s: it was replaced", name, typ, plugin, lsn, was.slotType, was.plugin, was.lsn)
		}
		noCheckSlots(t, topo.Primary, name)
	}
	noCheckSlotsLeft := func() { noCheckSlots(t, topo.Primary, name) }
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkSlotsDropped(t, topo.Primary, name),
		Steps: []resource.TestStep{
			{
				Config: config(`  type = "logical"`),
				Check: func(*terraform.State) error {
					remember()
					return nil
				},
			},
			{
				Config:      config(`  type = "logical"` + "\n" + `  plugin = "pc_no_such_plugin"`),
				ExpectError: errorText("Output Plugin Not Installed", `"pc_plugin_checked"`, `"pc_no_such_plugin"`, "Nothing was dropped", "or correct plugin"),
			},
			{
				PreConfig:   stillThere,
				Config:      config(`  type = "logical"` + "\n" + `  plugin = "plpgsql"`),
				ExpectError: errorText("Not an Output Plugin", `"plpgsql"`, "Nothing was dropped"),
			},
			{
				// A plugin named by a path is not loaded at plan (a plan
				// loads no library of the configuration's choosing): the
				// plan warns and goes on.
				PreConfig:          stillThere,
				Config:             config(`  type = "logical"` + "\n" + `  plugin = "/tmp/pc_no_such_dir/pc_plugin"`),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				// A plugin the server loads: replaced as before.
				PreConfig: func() {
					stillThere()
					if !logHasEntry(t, logPath, "Output Plugin Not Verified", "/tmp/pc_no_such_dir/pc_plugin", "named by a path is not loaded at plan") {
						t.Fatal("the plan of a plugin named by a path did not warn that it was not verified")
					}
					if logHasEntry(t, logPath, "running SQL", "pg_create_logical_replication_slot", "pc_no_such_dir") {
						t.Fatal("the plan loaded a plugin named by a path")
					}
					// This step's own plan must not warn (Check below).
					if err := os.Truncate(logPath, 0); err != nil {
						t.Fatal(err)
					}
				},
				Config: config(`  type = "logical"` + "\n" + `  plugin = "test_decoding"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionDestroyBeforeCreate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("plugin"), knownvalue.StringExact("test_decoding")),
				},
				Check: func(*terraform.State) error {
					noCheckSlots(t, topo.Primary, name)
					if !logHasEntry(t, logPath, "running SQL", "pg_create_logical_replication_slot", "pgreplication_check_"+name+"_", "test_decoding") {
						return fmt.Errorf("the plan did not load test_decoding with a temporary slot: no check ran")
					}
					if logHasEntry(t, logPath, "Output Plugin Not Verified") {
						return fmt.Errorf("the plan warned that the plugin was not verified")
					}
					if _, plugin, _ := slot(); plugin != "test_decoding" {
						return fmt.Errorf("slot %s has plugin %q after the replacement, want test_decoding", name, plugin)
					}
					remember()
					return nil
				},
			},
			{
				// Tainted, and so dropped first: planned as a create,
				// with no prior state.
				Taint:       []string{addr},
				Config:      config(`  type = "logical"` + "\n" + `  plugin = "pc_no_such_plugin"`),
				ExpectError: errorText("Output Plugin Not Installed", `(a slot of plugin "test_decoding")`, "Nothing was dropped"),
			},
			{
				PreConfig: stillThere,
				Config:    config(`  type = "physical"` + "\n" + `  immediately_reserve = true`),
				Check: func(*terraform.State) error {
					remember()
					return nil
				},
			},
			{
				// A physical slot (a standby's, its WAL reserved) replaced
				// by a logical one of a plugin the server does not have.
				Config:      config(`  type = "logical"` + "\n" + `  plugin = "pc_no_such_plugin"`),
				ExpectError: errorText("Output Plugin Not Installed", "(a physical slot)", "Nothing was dropped"),
			},
			{
				PreConfig: stillThere,
				Config:    config(`  type = "physical"` + "\n" + `  immediately_reserve = true`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: func(*terraform.State) error {
					noCheckSlotsLeft()
					return nil
				},
			},
		},
	})
}

// noCheckSlots fails the test if a slot of the provider's plugin check
// (checkPlugin) of slot checked is on n: each is dropped at once.
func noCheckSlots(t *testing.T, n *routertest.Node, checked string) {
	t.Helper()
	if left := queryValue[int64](t, n, "postgres", `SELECT count(*) FROM pg_replication_slots WHERE starts_with(slot_name, 'pgreplication_check_' || $1 || '_')`, checked); left != 0 {
		t.Fatalf("%d slots of the plugin check of %s are left on %s", left, checked, n.Name)
	}
}

// The plugin check of a role that may not create slots (a drift audit's)
// is not tried: the plan reads that, warns, and goes on. And the check
// waits at most 5 s: a transaction that holds a new logical slot back (a
// consistent snapshot waits for it to end) holds the check's, whose plugin
// loaded before that wait, and the server ends it (statement_timeout), so
// no check slot is left while the transaction runs on, and the plan goes on
// without a warning.
func TestAccReplicationSlot_pluginCheckBounded(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0), routertest.WithSetting("wal_level", "logical"))
	const name, audit = "pc_plugin_held", "pc_audit"
	execSQL(t, topo.Primary, "postgres", "CREATE ROLE "+audit+" LOGIN")
	config := func(role, plugin string) string {
		return providerConfigAs("primary", topo.Primary, role) + fmt.Sprintf(`
resource "pgreplication_replication_slot" "this" {
  provider = pgreplication.primary
  name     = %q
  type     = "logical"
  plugin   = %q
}
`, name, plugin)
	}
	logPath := traceLog(t)
	ctx := context.Background()
	var held *pgx.Conn
	var heldFor time.Time
	t.Cleanup(func() {
		if held != nil {
			_ = held.Close(ctx)
		}
	})
	ran := func() bool {
		return logHasEntry(t, logPath, "running SQL", "pg_create_logical_replication_slot", "pgreplication_check_"+name+"_")
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkSlotsDropped(t, topo.Primary, name),
		Steps: []resource.TestStep{
			{
				Config: config("postgres", "pgoutput"),
				Check: func(*terraform.State) error {
					return os.Truncate(logPath, 0)
				},
			},
			{
				Config:             config(audit, "test_decoding"),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				PreConfig: func() {
					if !logHasEntry(t, logPath, "Output Plugin Not Verified", name, "test_decoding", "no REPLICATION") {
						t.Fatalf("the plan as %s did not warn that the plugin was not verified", audit)
					}
					if ran() {
						t.Fatalf("the plan as %s, which may not create slots, tried to", audit)
					}
					if err := os.Truncate(logPath, 0); err != nil {
						t.Fatal(err)
					}
					c, err := pgx.Connect(ctx, topo.Primary.DSNFor("postgres"))
					if err != nil {
						t.Fatal(err)
					}
					held = c
					if _, err := held.Exec(ctx, `BEGIN; SELECT pg_catalog.txid_current()`); err != nil {
						t.Fatal(err)
					}
					heldFor = time.Now()
				},
				Config:             config("postgres", "test_decoding"),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				PreConfig: func() {
					took := time.Since(heldFor)
					if !ran() {
						t.Fatal("the plan did not load test_decoding with a temporary slot: no check ran")
					}
					if !logHasEntry(t, logPath, "SQL failed", "statement timeout") {
						t.Error("the check's slot did not wait for the transaction held: the test tested nothing of its bound")
					}
					if logHasEntry(t, logPath, "Output Plugin Not Verified") {
						t.Error("the plan warned that the plugin was not verified, though it loaded before the wait")
					}
					noCheckSlots(t, topo.Primary, name)
					if took < 5*time.Second || took > time.Minute {
						t.Errorf("the plans took %v with the transaction held, want the check's 5 s and a little more", took)
					}
					if _, err := held.Exec(ctx, `COMMIT`); err != nil {
						t.Fatal(err)
					}
				},
				Config: config("postgres", "test_decoding"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("pgreplication_replication_slot.this", tfjsonpath.New("plugin"), knownvalue.StringExact("test_decoding")),
				},
			},
		},
	})
}

// A replacement whose new plugin is known only at apply (another
// resource's attribute) cannot be checked at plan: the plan warns that
// the plugin is not verified, and the apply replaces the slot.
func TestAccReplicationSlot_pluginUnknownAtPlanWarns(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0), routertest.WithSetting("wal_level", "logical"))
	const name = "pc_plugin_unknown"
	config := func(plugin string) string {
		return providerConfig("primary", topo.Primary) + fmt.Sprintf(`
resource "terraform_data" "plugin" {
  input = %q
}

resource "pgreplication_replication_slot" "this" {
  provider = pgreplication.primary
  name     = %q
  type     = "logical"
  plugin   = terraform_data.plugin.output
}
`, plugin, name)
	}
	logPath := traceLog(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkSlotsDropped(t, topo.Primary, name),
		Steps: []resource.TestStep{
			{
				Config: config("pgoutput"),
				Check: func(*terraform.State) error {
					return os.Truncate(logPath, 0)
				},
			},
			{
				Config: config("test_decoding"),
				Check: func(*terraform.State) error {
					if !logHasEntry(t, logPath, "Output Plugin Not Verified", name, "known only at apply") {
						return fmt.Errorf("the plan did not warn that the plugin, unknown at plan, was not verified")
					}
					return nil
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("pgreplication_replication_slot.this", tfjsonpath.New("plugin"), knownvalue.StringExact("test_decoding")),
				},
			},
		},
	})
}

// A slot on a PostgreSQL 16+ standby replaced by a logical slot while the
// standby's primary runs with wal_level = replica: the standby's own
// wal_level is logical, so the plan's wal_level check passes, but the
// server cannot create a logical slot (55000: logical decoding on a standby
// needs wal_level = logical on the primary). The plugin check meets that
// before the apply drops the old slot: the plan is refused with the
// server's reason, and the slot stays.
func TestAccReplicationSlot_pluginCheckStandbyOfReplicaPrimary(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	if topo.Version < 16 {
		t.Skipf("logical slots on a standby need PostgreSQL 16; the topology runs %d", topo.Version)
	}
	primary, standby := topo.Primary, topo.Standbys[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	execSQL(t, primary, "postgres", `ALTER SYSTEM SET wal_level = replica`)
	if err := primary.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// The standby learns the primary's wal_level from its WAL (a
	// parameter change record at the restart): wait until it replayed
	// past it.
	lsn := queryValue[string](t, primary, "postgres", `SELECT pg_current_wal_insert_lsn()::text`)
	waitFor(t, 30*time.Second, "the standby to replay the primary's restart", func() bool {
		return queryValue[bool](t, standby, "postgres", `SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)`, lsn)
	})
	if got := queryValue[string](t, standby, "postgres", `SHOW wal_level`); got != "logical" {
		t.Fatalf("the standby runs with wal_level = %s, want logical (the plan's own check would refuse the slot first)", got)
	}
	const name = "pc_standby_55000"
	config := func(body string) string {
		return providerConfig("standby", standby) + `
resource "pgreplication_replication_slot" "this" {
  provider = pgreplication.standby
  name     = "` + name + `"
` + body + `
}
`
	}
	physical := func() {
		t.Helper()
		if got := queryValue[string](t, standby, "postgres", `SELECT coalesce((SELECT slot_type FROM pg_replication_slots WHERE slot_name = $1), 'none')`, name); got != "physical" {
			t.Fatalf("slot %s on the standby is %s after a refused plan, want the physical slot from before", name, got)
		}
		noCheckSlots(t, standby, name)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkSlotsDropped(t, standby, name),
		Steps: []resource.TestStep{
			{Config: config(`  type = "physical"`)},
			{
				Config: config(`  type = "logical"` + "\n" + `  plugin = "pgoutput"`),
				ExpectError: errorText("Cannot Create the New Slot", `"`+name+`" (a physical slot)`, `"pgoutput"`,
					"Nothing was dropped", "on the primary"),
			},
			{
				PreConfig: physical,
				Config:    config(`  type = "physical"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
		},
	})
}

// A create that meets a slot made outside the configuration, of another
// plugin: the plan cannot tell it from a tainted slot (which the apply
// drops first), so the plugin check's refusal says both, import first.
// The slot made by hand is never touched: not by the refused plan, and not
// by the apply of a plugin the server loads, which fails as "already
// exists" and names the import.
func TestAccReplicationSlot_pluginCheckMeetsSlotMadeByHand(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0), routertest.WithSetting("wal_level", "logical"))
	const name = "pc_made_by_hand"
	execSQL(t, topo.Primary, "postgres", `SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, name)
	lsn := queryValue[string](t, topo.Primary, "postgres", `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, name)
	config := func(plugin string) string {
		return providerConfig("primary", topo.Primary) + `
resource "pgreplication_replication_slot" "this" {
  provider = pgreplication.primary
  name     = "` + name + `"
  type     = "logical"
  plugin   = "` + plugin + `"
}
`
	}
	untouched := func() {
		t.Helper()
		got := queryValue[string](t, topo.Primary, "postgres",
			`SELECT coalesce((SELECT plugin || ' ' || confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1), 'none')`, name)
		if want := "test_decoding " + lsn; got != want {
			t.Fatalf("slot %s made by hand is now %q, want %q: the provider touched it", name, got, want)
		}
		noCheckSlots(t, topo.Primary, name)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config("pc_no_such_plugin"),
				ExpectError: errorText("Output Plugin Not Installed", `Replication slot "`+name+`" is on`, "already, and this plan creates it",
					"made outside this configuration", "import it instead", "If it is tainted:", `(a slot of plugin "test_decoding")`, "Nothing was dropped"),
			},
			{
				PreConfig:   untouched,
				Config:      config("pgoutput"),
				ExpectError: errorText("Replication Slot Already Exists", "made outside this configuration: import it"),
			},
			{
				PreConfig: untouched,
				Config:    providerConfig("primary", topo.Primary),
			},
		},
	})
	untouched()
}
