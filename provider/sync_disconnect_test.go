//go:build unix

package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestAccSynchronousReplication_disconnectDuringConfirmation: the listed
// standby is made to hold apply in its confirmation wait (frozen, so it
// cannot confirm the commit record apply writes), and then its connection
// breaks during that wait, a disconnect rather than a freeze:
//   - walreceiver_killed: its WAL receiver is killed (SIGKILL: the
//     connection closes at once) and the standby, thawed, restarts and
//     reconnects on its own within seconds. Apply waits for it and applies
//     once it confirms the commit record; commits return.
//   - standby_stopped: every process of the standby is killed at once (as
//     an immediate shutdown or a lost host would end it). Apply waits
//     out the confirmation wait for it, then refuses, naming the standby as
//     disconnected during the check and the fix; nothing is applied
//     (synchronous_standby_names stays empty, commits return); it streams
//     again once started.
//   - primary_restarted: the primary stops (immediate shutdown) and starts
//     again, and the standby, thawed, reconnects to it. Apply waits for it,
//     and applies once it confirms; commits return.
//
// The old code no longer waited for a standby whose connection broke: it
// refused the restarted primary's standby at once with "Not connected:
// "replica-1" … Start or fix the missing standbys" though it was back and
// confirming seconds later (3 of 3 runs), the standby whose WAL receiver
// restarted whenever a poll fell between its two connections (1 of 2), and
// the stopped one without saying that it had been there and left.
func TestAccSynchronousReplication_disconnectDuringConfirmation(t *testing.T) {
	testAccPreCheck(t)
	for _, c := range []struct {
		name       string
		disconnect func(t *testing.T, topo *routertest.Topology, receiver int)
		refused    bool
	}{
		{"walreceiver_killed", func(t *testing.T, topo *routertest.Topology, receiver int) {
			kill(t, receiver, syscall.SIGKILL)
			thaw(t, topo.Standbys[0])
		}, false},
		{"standby_stopped", func(t *testing.T, topo *routertest.Topology, _ int) {
			// Stopped as by -m immediate or a host gone: every process at
			// once, still frozen (a thawed standby would confirm first, and
			// pg_ctl's shutdown right after a killed child can hang in
			// the postmaster's crash restart).
			pm := postmasterPID(t, topo.Standbys[0])
			for _, pid := range append(childrenOf(t, pm), pm) {
				kill(t, pid, syscall.SIGKILL)
			}
			_ = topo.Standbys[0].Thaw() // its processes are gone
		}, true},
		{"primary_restarted", func(t *testing.T, topo *routertest.Topology, _ int) {
			pid := postmasterPID(t, topo.Primary)
			kill(t, pid, syscall.SIGQUIT) // immediate shutdown
			for deadline := time.Now().Add(20 * time.Second); syscall.Kill(pid, 0) == nil && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond)
			}
			if err := topo.Primary.Start(context.Background()); err != nil {
				t.Error(err)
			}
			time.Sleep(2 * time.Second) // apply polls the restarted primary with the standby still frozen
			thaw(t, topo.Standbys[0])
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Server-wide settings that can block commits: not the shared topology.
			topo := routertest.Start(t, routertest.WithStandbys(1))
			standby := topo.Standbys[0]
			ctx := context.Background()
			receiver := queryValue[int32](t, standby, "postgres", `SELECT pid FROM pg_stat_wal_receiver`)
			config := syncConfig(topo, fmt.Sprintf("\n  standby_names = [%q]\n", standby.Name))
			var expect *regexp.Regexp
			if c.refused {
				expect = errorText("Too Few Synchronous Standbys Connected", "Not connected: "+fmt.Sprintf("%q (%q was connected during this check, disconnected, and did not come back within 30s", standby.Name, standby.Name),
					"Start or fix the missing standbys")
			}
			done := make(chan struct{})
			var started time.Time
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories, // the real 30 s wait
				CheckDestroy: func(*terraform.State) error {
					return commitWithin(topo.Primary, 10*time.Second)
				},
				Steps: []resource.TestStep{{
					PreConfig: func() {
						if err := standby.Freeze(); err != nil {
							t.Fatal(err)
						}
						t.Cleanup(func() { _ = standby.Thaw() })
						// Apply has begun when its commit record is written:
						// the primary's WAL moves (the plan writes none).
						from := queryValue[string](t, topo.Primary, "postgres", `SELECT pg_current_wal_insert_lsn()::text`)
						go func() {
							defer close(done)
							conn, err := topo.Primary.Connect(ctx)
							if err != nil {
								t.Error(err)
								return
							}
							for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
								var moved bool
								if err := conn.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn() > $1::pg_lsn`, from).Scan(&moved); err != nil || moved {
									break
								}
							}
							conn.Close(ctx)
							started = time.Now()
							time.Sleep(2 * time.Second)
							c.disconnect(t, topo, int(receiver))
						}()
					},
					Config:      config,
					ExpectError: expect,
					Check: func(*terraform.State) error {
						if got, want := queryValue[string](t, topo.Primary, "postgres", "SHOW synchronous_standby_names"), fmt.Sprintf("FIRST 1 (%q)", standby.Name); got != want {
							return fmt.Errorf("synchronous_standby_names = %q, want %q", got, want)
						}
						return commitWithin(topo.Primary, 10*time.Second)
					},
				}},
			})
			<-done
			t.Logf("apply ended %s after it began to wait", time.Since(started).Round(100*time.Millisecond))
			_ = standby.Thaw()
			if got := queryValue[string](t, topo.Primary, "postgres", "SHOW synchronous_standby_names"); c.refused && got != "" {
				t.Errorf("synchronous_standby_names = %q after the refused apply, want empty", got)
			}
			if err := commitWithin(topo.Primary, 10*time.Second); err != nil {
				t.Error(err)
			}
			if c.name == "standby_stopped" {
				if err := standby.Start(ctx); err != nil {
					t.Fatal(err)
				}
			}
			wctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if err := standby.WaitStreaming(wctx); err != nil {
				t.Errorf("the standby does not stream again: %v", err)
			}
		})
	}
}

func kill(t *testing.T, pid int, sig syscall.Signal) {
	if err := syscall.Kill(pid, sig); err != nil {
		t.Errorf("kill %d %s: %v", pid, sig, err)
	}
}

// postmasterPID reads the first line of n's postmaster.pid.
func postmasterPID(t *testing.T, n *routertest.Node) int {
	pid, err := n.PostmasterPID()
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// childrenOf lists the processes whose parent is pid, from /proc.
func childrenOf(t *testing.T, pid int) []int {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var children []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // ended meanwhile
		}
		// pid (comm) state ppid …: comm may hold spaces, so read after the last ')'.
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			if child, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(f, "/proc/"), "/stat")); err == nil {
				children = append(children, child)
			}
		}
	}
	return children
}
