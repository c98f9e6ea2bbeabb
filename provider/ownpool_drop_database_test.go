package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// The provider's own pool in a database it manages a publication in kept
// its sessions for a minute (MaxConnIdleTime), and a destroy that drops the
// publication and then the database without FORCE failed with 55006, as
// the probe pool's did (poolIdle).
func TestAccPublication_probefixDestroyThenDropDatabase(t *testing.T) {
	testAccPreCheck(t)
	pub := routertest.Start(t, routertest.WithStandbys(0)).Primary
	const db = "probefix_ownpool"
	execSQL(t, pub, "postgres", "CREATE DATABASE "+db)
	execSQL(t, pub, db, `CREATE TABLE t1 (id int PRIMARY KEY)`)
	config := providerConfig("primary", pub) + dropDatabaseOnDestroy("database", pub, db) + fmt.Sprintf(`
resource "pgreplication_publication" "this" {
  provider   = pgreplication.primary
  database   = %q
  name       = "pub_probefix_ownpool"
  tables     = { "public.t1" = {} }
  depends_on = [terraform_data.database]
}
`, db)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config},
			{Config: config, Destroy: true},
		},
	})
	if queryValue[bool](t, pub, "postgres", `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, db) {
		execSQL(t, pub, "postgres", "DROP DATABASE "+pgsql.Ident(db)+" WITH (FORCE)")
		t.Errorf("the destroy's local-exec did not drop %s", db)
	}
}
