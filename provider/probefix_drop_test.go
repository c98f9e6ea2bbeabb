package provider

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// probefixDropEnv carries the connection and the database that
// TestProbefixDropDatabaseHelper drops, when the test binary runs as the
// local-exec command of a terraform_data.
const probefixDropEnv = "PROBEFIX_DROP_DATABASE"

// dropDatabaseOnDestroy declares the terraform_data name, whose destroy runs
// DROP DATABASE database on n without FORCE (TestProbefixDropDatabaseHelper),
// as a psql -c in a local-exec would: a resource that depends on it is
// destroyed first.
func dropDatabaseOnDestroy(name string, n *routertest.Node, database string) string {
	return fmt.Sprintf(`
resource "terraform_data" %q {
  input = %q
  provisioner "local-exec" {
    when        = destroy
    command     = "\"$BIN\" -test.run='^TestProbefixDropDatabaseHelper$' -test.v -test.count=1"
    environment = {
      BIN = %q
      %s = self.input
    }
  }
}
`, name, n.DSNFor("postgres")+"|"+database, os.Args[0], probefixDropEnv)
}

// TestProbefixDropDatabaseHelper is not a test: run by a destroy-time
// local-exec provisioner (the test binary itself, as a psql -c 'DROP
// DATABASE …' would be), it drops the database named in $PROBEFIX_DROP_DATABASE
// ("dsn|database") without FORCE, and fails with the server's error.
func TestProbefixDropDatabaseHelper(t *testing.T) {
	v := os.Getenv(probefixDropEnv)
	if v == "" {
		t.Skip("run by TestAccSubscription_probefixDestroyThenDropDatabase's local-exec")
	}
	dsn, database, _ := strings.Cut(v, "|")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	began := time.Now()
	if _, err := conn.Exec(ctx, "DROP DATABASE "+pgsql.Ident(database)); err != nil {
		t.Fatalf("DROP DATABASE %s after %s: %v", database, time.Since(began).Round(time.Millisecond), err)
	}
	t.Logf("DROP DATABASE %s took %s", database, time.Since(began).Round(time.Millisecond))
}

// A terraform destroy that drops subscriptions and then, in the same run,
// the publisher's database (a postgresql_database of cyrilgdn/postgresql
// the subscriptions depend on, or a local-exec DROP DATABASE, as here):
// the destroy's refresh read each subscription's slot on the publisher
// through the probe pool, whose sessions stayed connected to that database
// for publisherPoolIdle (15 s) after, and DROP DATABASE without FORCE,
// which waits 5 s for the other sessions to leave, failed with 55006
// ("database … is being accessed by other users", "There are 2 other
// sessions using the database"). The probe's sessions now end once its
// checks are over (publisherPoolIdle), within DROP DATABASE's wait.
func TestAccSubscription_probefixDestroyThenDropDatabase(t *testing.T) {
	testAccPreCheck(t)
	pub := routertest.Start(t, routertest.WithStandbys(0)).Primary
	f := newSubscriptionFixture(t, pub, "sub_probefix_drop", `CREATE PUBLICATION pub_a FOR TABLE t1;`, nil)
	// Runs before the fixture's cleanup, which drops the database (WITH
	// FORCE) and must find it.
	t.Cleanup(func() {
		if queryValue[bool](t, pub, "postgres", `SELECT NOT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, f.pubDB) {
			execSQL(t, pub, "postgres", "CREATE DATABASE "+pgsql.Ident(f.pubDB))
		}
	})
	pw := "canary" + canaryMark + "-probefix-drop"
	logPath := traceLog(t)
	config := canaryVariable(t, pw) + subscriberProvider(f.sub) + dropDatabaseOnDestroy("publisher_database", pub, f.pubDB) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  count        = 3
  provider     = pgreplication.subscriber
  name         = "sub_probefix_drop_${count.index}"
  conninfo     = "%s password=${var.canary_password}"
  publications = ["pub_a"]
  copy_data    = false
  depends_on   = [terraform_data.publisher_database]
}
`, f.conninfo(""))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config},
			{Config: config, Destroy: true},
		},
	})
	if queryValue[bool](t, pub, "postgres", `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, f.pubDB) {
		t.Errorf("the destroy's local-exec did not drop the publisher's database %s", f.pubDB)
	}
	checkLogHasNo(t, logPath, canaryParts(pw), "sub_probefix_drop_2")
}
