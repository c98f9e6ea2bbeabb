package routerlib

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestForgetCaptureConnWithItsContextDone: forgetCaptureConn is called
// with the caller's context, which may have ended (a prepare of
// captureConnOf cut by pgconn's cancel-request handler, which leaves the
// connection open). The deallocation then never went out, the names stayed
// taken on the server, and the next capture on the connection prepared
// them again: "prepared statement routerlib_capture_1 already exists"
// (42P05; TestReview6CaptureCutMidReplyLeavesNoReply/cancel-request, once
// in a CI run). Such a connection is now closed, so that the pool drops it.
func TestForgetCaptureConnWithItsContextDone(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, topo.Primary.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := captureConnOf(ctx, conn); err != nil {
		t.Fatal(err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	forgetCaptureConn(done, conn)
	if conn.PgConn().IsClosed() {
		return // the pool drops it: nothing is prepared on it again
	}
	if _, err := captureConnOf(ctx, conn); err != nil {
		t.Fatalf("the next capture on the connection, left open: %v", err)
	}
}
