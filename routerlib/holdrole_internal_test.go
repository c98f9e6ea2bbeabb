package routerlib

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// HoldRoleSessions takes every session role has left on node (until the
// server refuses another with 53300) and keeps them open until the test
// ends, so that a pool connecting as role cannot dial. Backends of
// sessions closed just before may still count until they exit: while it
// could take none it tries again, for up to 5 s. The full-primary tests of
// both test packages share it.
func HoldRoleSessions(t *testing.T, node *routertest.Node, role string) []*pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(node.DSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.User = role
	var held []*pgx.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close(context.Background())
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := pgx.ConnectConfig(context.Background(), cfg)
		if err == nil {
			held = append(held, c)
			continue
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "53300" {
			t.Fatal(err)
		}
		if len(held) > 0 {
			return held
		}
		if time.Now().After(deadline) {
			t.Fatalf("the role %s has no session left to hold", role)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
