package examples_test

import (
	"strings"
	"testing"
	"time"
)

// A primary that is frozen (SIGSTOP: a stalled VM, a long GC-like pause,
// a host under swap) during the destroy of a pgreplication_standby with
// reset_on_destroy = true, while its synchronous_standby_names needs that
// standby. The probe of the primary times out, which stbyfix ("standby: a primary Terraform cannot ask never refuses reset_on_destroy")
// treats like a primary Terraform's machine cannot reach at all: it warns
// and resets. Once the primary thaws, every commit there waits for the
// standby the destroy cut off, with no end. A timeout on an address the
// standby was streaming from a moment ago is not "unreachable from here":
// the primary is there and will come back; the reset should be refused (or
// looked at again within the grace) as it is for a primary that answers.
func TestReviewStandbyResetFrozenPrimaryBlocksCommits(t *testing.T) {
	cli, topo, standby := oneStandby(t)
	dir := syncStandbyToReset(t, cli, topo, `"%s"`)

	if err := topo.Primary.Freeze(); err != nil {
		t.Fatal(err)
	}
	code, out := cli.exec(t, dir, tfArgs("destroy")...)
	if err := topo.Primary.Thaw(); err != nil {
		t.Fatal(err)
	}
	t.Logf("destroy with the primary frozen exited %d:\n%s", code, lastLines(out, 20))
	var conninfo string
	_ = standby.QueryRow(t.Context(), `SELECT current_setting('primary_conninfo')`).Scan(&conninfo)
	if took, err := commitAfterReset(t, topo.Primary, "review_after_frozen_reset"); err != nil || took > 9*time.Second {
		t.Errorf("the destroy ran while the primary was frozen (exit %d, primary_conninfo now %q); after it thawed, a commit there does not "+
			"finish in 10 s (%v, %v): it waits for the standby the destroy cut off", code, conninfo, took.Round(time.Second), err)
	}
	if code == 0 && !strings.Contains(out, "Resetting Standby") {
		t.Errorf("the destroy exits 0 and says nothing of the reset's risk")
	}
}
