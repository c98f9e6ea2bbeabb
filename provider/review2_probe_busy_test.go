package provider

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// 8236cbb made a primary that refuses the probe's connection for now
// (class 53: too many connections) refuse reset_on_destroy, as a silent
// one does: it is there, and comes back with its synchronous_standby_names.
// The rule is applied to the database connection only. The probe falls
// back to a replication connection, and a class-53 refusal on either side
// of that fallback still takes the reset for one Terraform cannot check,
// which warns and goes ahead:
//
//   - walsenders full: the role of primary_conninfo may not connect to the
//     database (the usual replication-only role: pg_hba or CONNECT), and
//     every WAL sender slot of the primary is taken (max_wal_senders sized
//     to the standbys): the replication connection is refused with 53300,
//     and the probe reports the database connection's error instead.
//   - database full: the database connection is refused with 53300 (the
//     role's CONNECTION LIMIT, or max_connections, used up by the
//     application), the replication connection reads the setting alone,
//     which lists another standby that does not stream: "cannot be told",
//     a warning, although the same primary a moment later would say the
//     standby is needed.
//
// In both cases the primary's synchronous_standby_names needs this standby,
// the destroy goes ahead, and every commit on the primary then waits.
func TestReview2StandbyResetBusyPrimaryRefuses(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	primary, standby := topo.Primary, topo.Standbys[0]
	ctx := context.Background()
	const role = "review2_repl"
	r, pool, setNames := standbyStreamingAs(t, primary, standby, role)
	check := func(t *testing.T, want string) {
		t.Helper()
		look := r.resetBlocksCommits(ctx, pool)
		if !look.refuses() {
			t.Errorf("%s: the reset is not refused (unchecked %v, silent %v): %s\n%s", want, look.unchecked, look.silent, look.summary, look.detail)
		}
	}

	t.Run("walsenders full", func(t *testing.T) {
		setNames(pgsql.Ident(standby.Name))
		execSQL(t, primary, "postgres", `REVOKE CONNECT ON DATABASE postgres FROM PUBLIC`)
		defer execSQL(t, primary, "postgres", `GRANT CONNECT ON DATABASE postgres TO PUBLIC`)
		// Take every WAL sender slot left, as more standbys would.
		var held []*pgconn.PgConn
		defer func() {
			for _, c := range held {
				_ = c.Close(ctx)
			}
		}()
		for i := 0; i < 64; i++ {
			cfg, err := pgconn.ParseConfig(primary.DSN())
			if err != nil {
				t.Fatal(err)
			}
			cfg.RuntimeParams["replication"] = "true"
			c, err := pgconn.ConnectConfig(ctx, cfg)
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "53300" {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		t.Logf("%d WAL sender slots taken", len(held))
		check(t, "the primary lists the standby alone and refuses the replication connection for now (53300)")
	})

	t.Run("database full", func(t *testing.T) {
		// FIRST 1 (standby, ghost): ghost never streams, so the standby is needed.
		setNames(fmt.Sprintf(`FIRST 1 (%s, ghost)`, pgsql.Ident(standby.Name)))
		execSQL(t, primary, "postgres", `ALTER ROLE `+role+` CONNECTION LIMIT 0`)
		defer execSQL(t, primary, "postgres", `ALTER ROLE `+role+` CONNECTION LIMIT -1`)
		check(t, "the primary needs the standby (ghost does not stream) and refuses the database connection for now (53300)")
		execSQL(t, primary, "postgres", `ALTER ROLE `+role+` CONNECTION LIMIT -1`)
		if look := r.resetBlocksCommits(ctx, pool); !look.refuses() || look.summary != "Resetting Standby Would Block Commits" {
			t.Errorf("once the primary takes the connection it refuses the reset; got %q (unchecked %v)", look.summary, look.unchecked)
		}
	})
}
