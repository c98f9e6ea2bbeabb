package provider

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// Review finding 4: the missing-publication grace ended at the first look
// that could not ask the publisher, and let the change through, although
// the look before it had found the publication missing. "Cannot ask, leave
// it to PostgreSQL" holds only when the first look could not ask. Here the
// probe's session is cut 2 s into the grace, so every later look fails.
func TestAccReviewSubscriptionMissingPublicationProbeCut(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0), routertest.WithSetting("wal_level", "logical"))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, topo.Primary.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var major int
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int / 10000`).Scan(&major); err != nil {
		t.Fatal(err)
	}
	if major >= 18 {
		t.Skip("PostgreSQL 18 subscribes to a missing publication without stopping: nothing is refused")
	}
	probe := &publisherProbe{connection: topo.Primary.DSN(), conn: conn, tried: true}
	cut := make(chan error, 1)
	go func() {
		time.Sleep(2 * time.Second)
		cut <- topo.Primary.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, conn.PgConn().PID())
	}()
	r := &subscriptionResource{}
	plan := subscriptionResourceModel{
		Name:         types.StringValue("sub_probe_cut"),
		Publications: types.SetValueMust(types.StringType, []attr.Value{types.StringValue("pub_never_made")}),
	}
	var diags diag.Diagnostics
	there := r.publicationsThere(ctx, plan, probe, "Nothing was changed.", &diags)
	if err := <-cut; err != nil {
		t.Fatal(err)
	}
	if there {
		t.Fatal("a subscription to a publication found missing went ahead once the publisher could no longer be asked")
	}
	if !diags.HasError() || !strings.Contains(diags[0].Detail(), `pub_never_made`) {
		t.Errorf("want the Publication Not on the Publisher refusal naming the publication, got %v", diags)
	}
}
