package routerlib_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestCloseEndsSessionVerifyWaitingForThePrimary: the session
// middleware's Verify, asking the primary its position while the primary
// may only be restarting (awaitWriter; health.timeout 10s bounds the
// wait), ends when Close begins, and the warning it logs says the Router
// closed (ErrClosed), not that no primary takes writes (ErrNoPrimary),
// which would send an operator looking at a primary that is fine.
func TestCloseEndsSessionVerifyWaitingForThePrimary(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	a := steadyHealth(topo.Artifact(), 30*time.Second)
	a.Health.Timeout = "10s"
	logs := &syncBuffer{}
	r, err := routerlib.New(ctx, a, routerlib.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m, value := signedAtPrimary(t, r, topo.Primary)
	loseWrites(t, r, topo.Primary) // and it stays down
	endedByClose(t, r, "Verify waiting for the primary", func() error {
		if _, ok := m.Verify(ctx, value); ok {
			t.Error("Verify accepted a value no primary position was read for")
		}
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "the session starts empty") {
				t.Logf("logged: %s", line)
				if strings.Contains(line, routerlib.ErrClosed.Error()) {
					return routerlib.ErrClosed
				}
				return errors.New(line)
			}
		}
		return errors.New("Verify logged no warning")
	})
}
