package examples_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReplaceKeepsItsName: terraform apply -replace of a publication or a
// subscription plans the create half a second time, without the prior
// state; the check that refuses a name the database already has
// (refuseExistingName) took the object being replaced for another's and
// refused every such replacement ("Publication Already Exists"). A name
// another made is still refused, and so is a tainted publication's (its
// plan has no prior state at all), with the way to replace it.
func TestReplaceKeepsItsName(t *testing.T) {
	cli := findCLI(t)
	cli.configFile = buildProvider(t)
	topo := routertest.Start(t)
	dir := t.TempDir()
	writeProviders(t, dir, map[string]server{"primary": {topo.Primary, "postgres"}})
	writeFile(t, filepath.Join(dir, "main.tf"), `
resource "pgreplication_publication" "orders" {
  provider   = pgreplication.primary
  name       = "replace_me"
  all_tables = true
}

resource "pgreplication_replication_slot" "orders" {
  provider = pgreplication.primary
  name     = "replace_me_sub"
  type     = "logical"
  plugin   = "pgoutput"
}

resource "pgreplication_subscription" "orders" {
  provider     = pgreplication.primary
  database     = "subscriber"
  name         = "replace_me_sub"
  conninfo     = "host=127.0.0.1 port=`+strconv.Itoa(topo.Primary.Port)+` dbname=postgres user=postgres"
  publications = [pgreplication_publication.orders.name]
  create_slot  = false
  slot_name    = pgreplication_replication_slot.orders.name
  enabled      = false
}
`)
	execSQL(t, topo.Primary, "postgres", `CREATE DATABASE subscriber`)
	cli.run(t, dir, 0, "apply", "-auto-approve", "-input=false", "-no-color")
	cli.run(t, dir, 0, "apply", "-auto-approve", "-input=false", "-no-color", "-replace=pgreplication_subscription.orders")
	cli.run(t, dir, 0, "apply", "-auto-approve", "-input=false", "-no-color", "-replace=pgreplication_publication.orders")
	// A tainted object is planned as a new one, with no prior state at
	// all: its name is refused, and the error says how to replace it.
	cli.run(t, dir, 0, "taint", "-no-color", "pgreplication_publication.orders")
	if out := strings.Join(strings.Fields(cli.run(t, dir, 1, "plan", "-input=false", "-no-color")), " "); !strings.Contains(out, "terraform untaint <address>, then terraform apply -replace=<address>") {
		t.Errorf("the plan of a tainted publication does not say how to replace it:\n%s", out)
	}
	cli.run(t, dir, 0, "untaint", "-no-color", "pgreplication_publication.orders")
	cli.run(t, dir, 0, "apply", "-auto-approve", "-input=false", "-no-color", "-replace=pgreplication_publication.orders")
	execSQL(t, topo.Primary, "postgres", `CREATE PUBLICATION by_hand FOR ALL TABLES`)
	writeFile(t, filepath.Join(dir, "other.tf"), `
resource "pgreplication_publication" "by_hand" {
  provider   = pgreplication.primary
  name       = "by_hand"
  all_tables = true
}
`)
	if out := cli.run(t, dir, 1, "plan", "-input=false", "-no-color"); !strings.Contains(out, "Publication Already Exists") {
		t.Errorf("a publication made by hand was not refused at plan:\n%s", out)
	}
	if err := os.Remove(filepath.Join(dir, "other.tf")); err != nil {
		t.Fatal(err)
	}
	cli.run(t, dir, 0, "destroy", "-auto-approve", "-input=false", "-no-color")
}
