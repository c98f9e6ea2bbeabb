package routerlib

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestWriterByTimeline covers the split-brain rule case by case, including
// what a real server never shows: a node out of recovery whose timeline
// could not be read.
func TestWriterByTimeline(t *testing.T) {
	down := checkResult{err: errors.New("connection refused")}
	primaryOn := func(tli uint32) checkResult { return checkResult{timeline: tli} }
	standby := checkResult{recovery: true}
	cases := []struct {
		name    string
		last    []uint32 // timelines remembered from earlier checks
		results []checkResult
		writer  int    // index of the writer, -1 for none
		why     string // in the reason when there is none
	}{
		{"one primary", []uint32{0, 0}, []checkResult{primaryOn(1), standby}, 0, ""},
		{"promoted, old primary down", []uint32{1, 0}, []checkResult{down, primaryOn(2)}, 1, ""},
		{"old primary back", []uint32{1, 2}, []checkResult{primaryOn(1), primaryOn(2)}, 1, ""},
		{"old primary back, new one down", []uint32{1, 2}, []checkResult{primaryOn(1), down}, -1, `last seen out of recovery on timeline 2: "a" is an old primary; fence it`},
		{"same timeline", []uint32{0, 0}, []checkResult{primaryOn(2), primaryOn(2)}, -1, "split brain"},
		{"unreadable timelines", []uint32{0, 0}, []checkResult{primaryOn(0), primaryOn(0)}, -1, "cannot be read"},
		{"lone node, unreadable", []uint32{0, 0}, []checkResult{primaryOn(0), standby}, 0, ""},
		{"one unreadable", []uint32{0, 0}, []checkResult{primaryOn(3), primaryOn(0)}, -1, "cannot be read"},
		{"down node was on the same timeline", []uint32{0, 2}, []checkResult{primaryOn(2), down}, -1, "last seen out of recovery on timeline 2 too: a split brain; fence one of them"},
		{"no node out of recovery", []uint32{1, 0}, []checkResult{down, standby}, -1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			top := &topology{}
			for i, tli := range c.last {
				n := &node{server: &server{}, name: string(rune('a' + i))}
				if c.results[i].err == nil && !c.results[i].recovery {
					tli = c.results[i].timeline // checkAll stores it before choosing
				}
				n.timeline.Store(tli)
				top.nodes = append(top.nodes, n)
			}
			next, why, _ := writerByTimeline(top, c.results)
			switch {
			case c.writer < 0 && next != nil:
				t.Errorf("writer %s, want none", next.name)
			case c.writer >= 0 && next != top.nodes[c.writer]:
				t.Errorf("writer %v (%s), want %s", next, why, top.nodes[c.writer].name)
			case !strings.Contains(why, c.why) || (c.why == "") != (why == ""):
				t.Errorf("reason %q, want one with %q", why, c.why)
			}
		})
	}
}

// TestHoldOldTimelinesReadmits: a replica in rotation that holdOldTimelines
// takes out as the writes move to a promoted node comes back at its next
// check once that check shows the new timeline, whatever its count of good
// checks (a late check had set it to 0), without readmit_after checks; one
// still on the old timeline at that check waits readmit_after checks after
// it follows, as any ejected replica.
func TestHoldOldTimelinesReadmits(t *testing.T) {
	const readmit = 3
	onTimeline := func(tli uint32) checkResult {
		return checkResult{recovery: true, history: true, seenTimeline: tli, walTimeline: tli}
	}
	for _, follows := range []bool{true, false} {
		top := &topology{readmit: readmit, eject: 3, timeout: time.Second}
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		mk := func(name string) *node {
			n := &node{server: &server{logger: logger, checkNow: make(chan struct{}, 1)}, name: name}
			top.nodes = append(top.nodes, n)
			return n
		}
		old, promoted, replica := mk("old"), mk("promoted"), mk("replica")
		old.timeline.Store(1)
		old.ejected.Store(uint32(EjectNotInRecovery))
		top.writer.Store(old)
		promoted.timeline.Store(2) // its check out of recovery, just recorded
		replica.admitted, replica.goods = true, 0
		replica.last, replica.lastGood = onTimeline(1), onTimeline(1)
		r := &Router{}

		holdOldTimelines(top, promoted)
		top.writer.Store(promoted)
		if got := EjectReason(replica.ejected.Load()); got != EjectOldTimeline {
			t.Fatalf("the replica on timeline 1 as the writes move to timeline 2: %q, want %q", got, EjectOldTimeline)
		}
		select {
		case <-replica.checkNow:
		default:
			t.Error("no check of the replica asked for")
		}
		checks := 0
		if !follows {
			replica.last = onTimeline(1) // the check asked for: not following yet
			r.rotate(top, replica, time.Now(), false)
			checks++
		}
		for replica.last = onTimeline(2); !replica.inRotation() && checks < 10; checks++ {
			r.rotate(top, replica, time.Now(), false)
		}
		want := 1
		if !follows {
			want = 1 + readmit
		}
		if checks != want {
			t.Errorf("following the new primary %v at the check asked for: back in rotation after %d checks, want %d", follows, checks, want)
		}
	}
}

// TestWatcherHandsOverAnAnswer: a watcher that a reload stops just as its
// node's check answers leaves the answer, and the failed intervals it
// stands for, to the next topology's watcher. It used to drop both, 1 time
// in 2 (select picks at random among the answer and the stop): a good
// check lost, or a hung node's failures not counted toward its ejection.
func TestWatcherHandsOverAnAnswer(t *testing.T) {
	top := &topology{interval: time.Hour, timeout: time.Hour}
	n := &node{server: &server{checkNow: make(chan struct{}, 1)}, name: "n"}
	w := &n.watch
	w.results = make(chan checkResult, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the reload swapped topologies
	for i := range 50 {
		w.next = time.Now().Add(time.Hour)
		w.running = true
		w.pending = []time.Time{time.Now().Add(time.Hour), time.Now().Add(2 * time.Hour)}
		w.results <- checkResult{lsn: uint64(i)}
		(&Router{}).watchNode(ctx, top, n)
		if !w.running || len(w.pending) != 2 || len(w.results) != 1 {
			t.Fatalf("round %d: after the watcher stopped, running %v, %d deadlines pending, %d answers waiting; want the answer and its 2 deadlines kept", i, w.running, len(w.pending), len(w.results))
		}
		if res := <-w.results; res.lsn != uint64(i) {
			t.Fatalf("round %d: answer %d kept", i, res.lsn)
		}
	}
}

// TestNotFollowing covers the reasons of a standby with no WAL of the
// primary's timeline 2 (diverged_test.go builds the real cases), including
// what no test can time: a standby pointed at the promoted node while it
// streams the old timeline up to the fork.
func TestNotFollowing(t *testing.T) {
	const fork = 0x14DF660
	cases := []struct {
		name string
		res  checkResult
		want EjectReason
	}{
		{"not pointed at the promoted node", checkResult{seenTimeline: 1, walTimeline: 1, receivedTLI: 1, lsn: fork + 100}, EjectOldTimeline},
		{"streaming the old timeline up to the fork", checkResult{seenTimeline: 2, walTimeline: 1, receivedTLI: 1, receiverEnd: fork, lsn: fork - 100}, EjectOldTimeline},
		{"at the fork, about to switch", checkResult{seenTimeline: 2, walTimeline: 1, receivedTLI: 1, receiverEnd: fork, lsn: fork}, EjectOldTimeline},
		{"replayed past the fork", checkResult{seenTimeline: 2, walTimeline: 1, receivedTLI: 1, receiverEnd: fork, lsn: fork + 1}, EjectDiverged},
		{"upstream refuses to stream", checkResult{seenTimeline: 2, walTimeline: 1, lsn: fork}, EjectDiverged},
		{"switched at the fork, no WAL of the new timeline yet", checkResult{seenTimeline: 2, walTimeline: 1, receivedTLI: 2, receiverEnd: fork, lsn: fork}, EjectOldTimeline},
		{"no WAL receiver", checkResult{seenTimeline: 2, walTimeline: 1, receiverEnd: fork + 100, lsn: fork}, EjectDiverged},
	}
	for _, c := range cases {
		if got := notFollowing(c.res, 2, forkPoint{}); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	// The receiver gone, with the fork seen at an earlier check: short of
	// it is old (it lost its upstream first), past it diverged.
	seen := forkPoint{primaryTLI: 2, tli: 1, end: fork}
	for _, c := range []struct {
		name string
		res  checkResult
		fork forkPoint
		want EjectReason
	}{
		{"lost its upstream short of the fork", checkResult{seenTimeline: 2, walTimeline: 1, lsn: fork - 100}, seen, EjectOldTimeline},
		{"at the fork", checkResult{seenTimeline: 2, walTimeline: 1, lsn: fork}, seen, EjectOldTimeline},
		{"past the fork", checkResult{seenTimeline: 2, walTimeline: 1, lsn: fork + 1}, seen, EjectDiverged},
		{"a fork of another primary timeline", checkResult{seenTimeline: 3, walTimeline: 1, lsn: fork - 100}, seen, EjectDiverged},
		{"WAL of another timeline", checkResult{seenTimeline: 2, walTimeline: 0, lsn: fork - 100}, seen, EjectDiverged},
	} {
		primary := uint32(2)
		if c.res.seenTimeline == 3 {
			primary = 3
		}
		if got := notFollowing(c.res, primary, c.fork); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	if why := divergedWhy(cases[3].res, 2); !strings.Contains(why, "0/14DF661") || !strings.Contains(why, "past 0/14DF660") {
		t.Errorf("divergedWhy names neither the replay position nor the fork: %s", why)
	}
}

// TestClusterOf: the cluster is the system identifier most nodes share
// (and stays known while they are down), else the primary's; a node that
// cannot be read counts for nothing.
func TestClusterOf(t *testing.T) {
	const ours, theirs = 7713588667813446091, -42
	primary := func(id int64) checkResult { return checkResult{cluster: id, timeline: 1} }
	standby := func(id int64) checkResult { return checkResult{cluster: id, recovery: true} }
	down := checkResult{err: errNotChecked, cluster: ours}
	tp := &topology{}
	cases := []struct {
		name    string
		results []checkResult
		want    int64
	}{
		{"a standby of another cluster", []checkResult{primary(ours), standby(ours), standby(theirs)}, ours},
		{"the primary of another cluster", []checkResult{primary(theirs), standby(ours), standby(ours)}, ours},
		{"two standbys of ours down: remembered", []checkResult{primary(theirs), down, standby(ours)}, ours},
		{"unread identifiers count for nothing", []checkResult{primary(ours), standby(0), standby(0)}, ours},
	}
	for _, c := range cases {
		if got, tie := clusterOf(tp, c.results, noTwins(len(c.results))); got != c.want || tp.cluster != c.want || tie {
			t.Errorf("%s: %d (t.cluster %d, tie %v), want %d", c.name, got, tp.cluster, tie, c.want)
		}
	}
	fresh := &topology{}
	if got, tie := clusterOf(fresh, []checkResult{primary(ours), standby(theirs)}, noTwins(2)); got != ours || !tie {
		t.Errorf("one primary and one standby that disagree, nothing remembered: %d (tie %v), want the primary's %d and a tie", got, tie, ours)
	}
	if fresh.clusterSeen != 0 {
		t.Errorf("a tie was remembered as the cluster: %d", fresh.clusterSeen)
	}
	if !otherCluster(standby(theirs), ours) || otherCluster(standby(0), ours) || otherCluster(standby(theirs), 0) || otherCluster(down, theirs) {
		t.Error("otherCluster: wrong with an identifier unknown, or a check that failed")
	}
}

// TestBouncerRefused: only PgBouncer's refusals before it forwards a call
// are "not sent"; its errors after forwarding, and a server's own 08P01,
// are not.
func TestBouncerRefused(t *testing.T) {
	fatal := func(code, msg string) error {
		return fmt.Errorf("wrapped: %w", &pgconn.PgError{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: msg})
	}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fatal("08P01", "server login has been failing, try again later (server_login_retry)"), true},
		{fatal("08P01", "pgbouncer cannot connect to server"), true},
		{fatal("08P01", "query_wait_timeout"), true},
		{fatal("08P01", "no more connections allowed (max_client_conn)"), true},
		{fatal("08P01", "server conn crashed?"), false},
		{fatal("08P01", "query_timeout"), true},  // a client still waiting for a server (TestReview11BouncerQueryTimeoutWhileQueued)
		{fatal("08P01", "query timeout"), false}, // a forwarded call's (bouncerTimedOut)
		{fatal("08P01", "invalid frontend message type 0"), false},
		{fatal("57P01", "terminating connection due to administrator command"), false},
		{&pgconn.PgError{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: "08P01", Message: "query_wait_timeout"}, false},
	} {
		if got := bouncerRefused(c.err); got != c.want {
			t.Errorf("bouncerRefused(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// noTwins is twinsOf's answer for n nodes that each reach their own server.
func noTwins(n int) []int {
	twin := make([]int, n)
	for i := range twin {
		twin[i] = -1
	}
	return twin
}

// TestTwinsOf: nodes that reach one server (same system identifier and
// postmaster start time) stand for it once, by the first that answered;
// a node whose check failed is compared by its last answer. Standbys of
// one cluster (same identifier, other start times) are not one server.
func TestTwinsOf(t *testing.T) {
	const id, start = 7713588667813446091, 1700000000000000000
	at := func(started int64) checkResult { return checkResult{cluster: id, started: started} }
	down := checkResult{err: errors.New("connection refused")}
	top := &topology{}
	for _, name := range []string{"a", "b", "c", "d"} {
		top.nodes = append(top.nodes, &node{server: &server{}, name: name})
	}
	top.nodes[0].lastGood = at(start)
	got := twinsOf(top, []checkResult{down, at(start), at(start + 1), at(start)})
	if want := []int{1, -1, -1, 1}; !slices.Equal(got, want) {
		t.Errorf("twinsOf: %v, want %v (b stands for the server a and d reach too; c is another server of the cluster)", got, want)
	}
}

// TestClonesOf: a declared replica out of recovery on the declared
// primary's own timeline is a copy of the cluster, not a rival, while the
// declared primary takes the writes or nothing does yet; after a failover
// (another writer) the same sight is a split brain, and a replica on a
// later timeline was promoted. A copy that stops answering blocks nothing.
func TestClonesOf(t *testing.T) {
	down := checkResult{err: errors.New("connection refused")}
	primaryOn := func(tli uint32) checkResult { return checkResult{timeline: tli, cluster: 7} }
	standby := checkResult{recovery: true, cluster: 7}
	// downOn is a node last seen out of recovery on timeline tli.
	downOn := func(tli uint32) checkResult { return checkResult{err: down.err, timeline: tli} }
	standbyOn := func(tli uint32) checkResult {
		return checkResult{recovery: true, cluster: 7, history: true, seenTimeline: tli, walTimeline: tli}
	}
	cases := []struct {
		name    string
		writer  int // index of the writer before, -1 for none
		clone   uint32
		results []checkResult
		want    int    // index of the writer, -1 for none
		why     string // in the reason when there is none, or in the copy's conflict
	}{
		{"copy on timeline 1", 0, 0, []checkResult{primaryOn(1), primaryOn(1), standby}, 0, "copy of the cluster"},
		{"copy at startup", -1, 0, []checkResult{primaryOn(1), primaryOn(1), standby}, 0, "copy of the cluster"},
		{"copy on a later timeline of the primary", 0, 0, []checkResult{primaryOn(3), primaryOn(3), standby}, 0, "copy of the cluster"},
		{"promoted while the primary is up", 0, 0, []checkResult{primaryOn(1), primaryOn(2), standby}, 1, "old primary"},
		{"old replica back on an earlier timeline", 0, 0, []checkResult{primaryOn(3), primaryOn(2), standby}, 0, "old primary"},
		{"after a failover", 1, 0, []checkResult{primaryOn(2), primaryOn(2), standby}, -1, "split brain"},
		{"copy down", 0, 1, []checkResult{primaryOn(1), down, standby}, 0, ""},
		{"primary down, copy up", 0, 1, []checkResult{down, primaryOn(1), standby}, -1, "never promoted"},
		{"copy back as a standby", 0, 1, []checkResult{primaryOn(1), standby, standby}, 0, ""},
		// Timeline 1, which no promotion leads to: never promoted,
		// whatever the declared primary shows, and nothing remembered.
		{"primary down at startup, copy on timeline 1", -1, 0, []checkResult{down, primaryOn(1), standby}, -1, "never promoted"},
		{"declared primary in recovery, copy on timeline 1", -1, 0, []checkResult{standby, primaryOn(1), standby}, -1, "never promoted"},
		{"taking the writes on timeline 1, primary down", 1, 0, []checkResult{down, primaryOn(1), standby}, -1, "never promoted"},
		{"promoted with the primary down at startup", -1, 0, []checkResult{down, primaryOn(2), standby}, 1, ""},
		// Once a node shows a later timeline, a promotion happened: the
		// node on timeline 1 is an old primary (or a copy behind it),
		// never one that may be the primary.
		{"after a failover, copy on timeline 1", 2, 0, []checkResult{down, primaryOn(1), primaryOn(2)}, 2, "old primary"},
		{"old primary back, file names the promoted node", 0, 0, []checkResult{primaryOn(2), primaryOn(1), standby}, 0, "old primary"},
		{"old primary back, promoted node down", 0, 0, []checkResult{downOn(2), primaryOn(1), standby}, -1, "old primary"},
		{"old primary back, a standby shows the promotion", -1, 0, []checkResult{down, primaryOn(1), standbyOn(2)}, -1, "old primary"},
		{"taken for a copy, then a standby shows the promotion", -1, 1, []checkResult{down, primaryOn(1), standbyOn(2)}, -1, "old primary"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			top := &topology{}
			for i, res := range c.results {
				n := &node{server: &server{}, name: string(rune('a' + i))}
				if res.err == nil && !res.recovery {
					n.timeline.Store(res.timeline)
				} else if res.err != nil && c.writer >= 0 {
					n.timeline.Store(max(res.timeline, 1)) // last seen out of recovery; at startup, never seen
				}
				top.nodes = append(top.nodes, n)
			}
			top.declared = top.nodes[0]
			top.nodes[1].cloneTLI = c.clone
			if c.writer >= 0 {
				top.writer.Store(top.nodes[c.writer])
			}
			next, why, conflict := writerByTimeline(top, c.results)
			if c.want < 0 && next != nil || c.want >= 0 && next != top.nodes[c.want] {
				t.Fatalf("writer %s (%s), want index %d", nameOf(next), why, c.want)
			}
			if got := why + conflict[top.nodes[0]] + conflict[top.nodes[1]]; !strings.Contains(got, c.why) || c.why == "" && got != "" {
				t.Errorf("reasons %q, want one with %q", got, c.why)
			}
			if strings.Contains(c.why, "old primary") && strings.Contains(why+conflict[top.nodes[1]], "declare it as the primary") {
				t.Errorf("an old primary, to be declared the primary: %q", why+conflict[top.nodes[1]])
			}
			isClone := strings.Contains(c.why, "copy") || strings.Contains(c.why, "never promoted")
			if c.name == "copy down" || c.name == "primary down, copy up" {
				isClone = true
			}
			if got := top.nodes[1].cloneTLI != 0; got != isClone {
				t.Errorf("copy recorded: %v, want %v", got, isClone)
			}
		})
	}
}

// TestCloneWhyFromThisRound: the reason a copy of the cluster takes no
// writes comes from this round's check of the declared primary's server,
// not from what the declared node stored. With the primary listed twice
// (its host written two ways: see twinsOf) and the declared name's check
// failed, the other name answers for the server and takes the writes; the
// declared node's stored state said "down", and the copy's reason said
// nothing took the writes and that the copy may be the primary. A file
// without a declared primary (artifact.Validate refuses one; a unit test
// can build it) has no copies: a node taken for one before made cloneWhy
// read a nil declared node.
func TestCloneWhyFromThisRound(t *testing.T) {
	const id, start = 7, 1700000000000000000
	top := &topology{}
	for _, name := range []string{"primary", "image", "primary-alias"} {
		top.nodes = append(top.nodes, &node{server: &server{}, name: name})
	}
	primary, copied, alias := top.nodes[0], top.nodes[1], top.nodes[2]
	top.declared = primary
	primary.lastGood = checkResult{cluster: id, started: start, timeline: 1}
	results := []checkResult{
		{err: errors.New("i/o timeout")},
		{cluster: id, started: start + 1, timeline: 1},
		{cluster: id, started: start, timeline: 1},
	}
	next, why, conflict := writerByTimeline(top, results)
	if next != alias || why != "" {
		t.Fatalf("writer %s (%q), want %s, the primary's server under its other name", nameOf(next), why, alias.name)
	}
	if got := conflict[copied]; !strings.Contains(got, "copy of the cluster") || !strings.Contains(got, "keeps the writes") || strings.Contains(got, "declare it as the primary") {
		t.Errorf("the copy's reason, with the primary's server taking the writes: %q", got)
	}

	top.declared = nil
	copied.cloneTLI = 1
	next, why, conflict = writerByTimeline(top, results)
	if copied.cloneTLI != 0 || strings.Contains(conflict[copied], "copy") {
		t.Errorf("no declared primary: copy recorded %d, reason %q (writer %s, %q)", copied.cloneTLI, conflict[copied], nameOf(next), why)
	}
}

// TestInheritKeepsACopy: a reload that gives a node new settings at the same
// address keeps what its server was known to be, a copy of the cluster
// included (cloneTLI): with the declared primary down, a copy on a timeline
// after the first is known as one only by what was seen before, and a
// reload lost it, so that the node was named an old primary to fence
// instead of a copy.
func TestInheritKeepsACopy(t *testing.T) {
	var old, now server
	old.cloneTLI = 3
	old.timeline.Store(3)
	now.inherit(&old)
	if now.cloneTLI != 3 || now.timeline.Load() != 3 {
		t.Errorf("after inherit cloneTLI is %d and timeline %d, want 3 and 3", now.cloneTLI, now.timeline.Load())
	}
}

// TestLagTakesTheClocksOffsetsOff: node.lag reads a standby's replay age
// on the primary's clock, from the offsets the checks measured, and only
// where the two clocks differ by more than the checks' round trips leave
// uncertain (see lag). The cases the review of the first version found:
// a standby that replayed nothing since it started has no age to correct
// (it read 60 s), and offsets measured against the monotonic clock make a
// step of the router's wall clock no lag (it read 2.1 s).
func TestLagTakesTheClocksOffsetsOff(t *testing.T) {
	now := time.Now()
	check := func(offset, took time.Duration) checkResult {
		return checkResult{at: now, clockOffset: offset, took: took}
	}
	replayed := func(res checkResult, age time.Duration) checkResult {
		res.replayed, res.replayAge = true, age
		return res
	}
	ms := time.Millisecond
	for _, c := range []struct {
		name             string
		standby, primary checkResult
		want             time.Duration
	}{
		{"clocks agree", replayed(check(0, ms), 4*time.Second), check(0, ms), 4 * time.Second},
		{"standby a minute slow", replayed(check(-time.Minute, ms), -56*time.Second), check(0, ms), 4 * time.Second},
		{"standby a minute fast", replayed(check(time.Minute, ms), 64*time.Second), check(0, ms), 4 * time.Second},
		{"primary a minute slow", replayed(check(0, ms), 64*time.Second), check(-time.Minute, ms), 4 * time.Second},
		{"skew within the round trips read as none", replayed(check(-40*ms, 100*ms), 4*time.Second), check(0, 100*ms), 4 * time.Second},
		{"nothing replayed since the standby started", check(-time.Minute, ms), check(0, ms), 0},
		{"no check of the primary: the router's clock stands for its", replayed(check(-time.Minute, ms), -56*time.Second), checkResult{}, 4 * time.Second},
		{"clocks that agree give no lag below 0", replayed(check(0, ms), -time.Second), check(0, ms), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := &node{server: &server{}}
			c.standby.lsn = 1000
			if _, got := n.lag(c.standby, 2000, c.primary, now); got != c.want {
				t.Errorf("lag %v, want %v", got, c.want)
			}
		})
	}
}
