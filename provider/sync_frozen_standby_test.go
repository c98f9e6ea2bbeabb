package provider

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/syncrep"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestAccSynchronousReplication_frozenStandby: a standby that stopped
// answering (SIGSTOP) keeps its WAL sender on the primary, which
// pg_stat_replication shows "streaming" until wal_sender_timeout (a
// minute) ends it. Made synchronous, it blocks every commit of the
// application. Apply must refuse it, leave the setting as it was, and
// commits go on; thawed, the same configuration applies.
//   - listed alone: the old code took it for connected and applied the
//     list in about a second, and the next commit on the primary waited
//     for as long as the standby stayed stopped; apply now refuses a
//     standby that does not confirm a commit record it writes first.
//   - method "first" with a healthy standby listed after it: PostgreSQL
//     makes the highest-priority standbys whose senders stream
//     synchronous, so FIRST 1 ("frozen", "healthy") makes the frozen one
//     synchronous however well "healthy" confirms. The old code applied
//     it, and the next commit did not return within 5s
//     (pg_stat_replication: replica-1=sync, replica-2=potential); the
//     check must not count "healthy" while a silent standby outranks it.
//
// The first case waits the real syncConfirmTimeout (and checks that it
// did); the second shortens it (pgreplicationProvider.syncConfirmWait), and
// checks that the refusal came sooner.
func TestAccSynchronousReplication_frozenStandby(t *testing.T) {
	testAccPreCheck(t)
	for _, c := range []struct {
		name string
		body func(frozen, healthy string) string
		wait time.Duration // the provider's confirmation wait; 0 for syncConfirmTimeout
		want string        // the refusal
	}{
		{
			name: "listed_alone",
			body: func(frozen, _ string) string { return fmt.Sprintf("\n  standby_names = [%q]\n", frozen) },
			want: `(?s)Too Few Synchronous Standbys Connected.*Not\s+connected:\s+none.*connected,\s+but\s+silent:\s+"replica-1"\s+streams.*has\s+not\s+confirmed\s+the\s+WAL\s+the\s+primary\s+wrote\s+as\s+this\s+check\s+began\s+within\s+30s`,
		},
		{
			name: "first_in_priority",
			body: func(frozen, healthy string) string {
				return fmt.Sprintf("\n  standby_names = [%q, %q]\n  method        = \"first\"\n  num_sync      = 1\n", frozen, healthy)
			},
			wait: testSyncConfirmWait,
			want: `(?s)Synchronous Standby Not Confirming.*method\s+=\s+"first".*"replica-1"\s+streams.*within\s+5s`,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Server-wide settings that can block commits: not the shared topology.
			topo := routertest.Start(t, routertest.WithStandbys(2))
			frozen, healthy := topo.Standbys[0], topo.Standbys[1]
			if frozen.Name != "replica-1" {
				t.Fatalf("the frozen standby is %q; the refusal's pattern names replica-1", frozen.Name)
			}
			config := syncConfig(topo, c.body(frozen.Name, healthy.Name))
			var frozenAt time.Time
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: syncFactories(c.wait),
				CheckDestroy: func(*terraform.State) error {
					return commitWithin(topo.Primary, 10*time.Second)
				},
				Steps: []resource.TestStep{
					{
						PreConfig: func() {
							if err := frozen.Freeze(); err != nil {
								t.Fatal(err)
							}
							t.Cleanup(func() { _ = frozen.Thaw() })
							frozenAt = time.Now()
							if state := queryValue[string](t, topo.Primary, "postgres", `SELECT state FROM pg_stat_replication WHERE application_name = $1`, frozen.Name); state != "streaming" {
								t.Fatalf("the frozen standby's WAL sender is %q, want streaming (what the test is about)", state)
							}
						},
						Config:      config,
						ExpectError: regexp.MustCompile(c.want),
					},
					{
						PreConfig: func() {
							// Refused after the wait, not before; and a shortened wait is used.
							switch took := time.Since(frozenAt); {
							case c.wait == 0 && took < syncConfirmTimeout:
								t.Fatalf("refused %s after the freeze, before the %s confirmation wait ended", took, syncConfirmTimeout)
							case c.wait != 0 && took >= syncConfirmTimeout:
								t.Fatalf("refused %s after the freeze with the wait set to %s: the setting was not used", took, c.wait)
							}
							// Nothing was applied: commits return while the standby is stopped.
							if got := queryValue[string](t, topo.Primary, "postgres", `SHOW synchronous_standby_names`); got != "" {
								t.Fatalf("synchronous_standby_names = %q after the refused apply, want it unchanged (empty)", got)
							}
							if err := commitWithin(topo.Primary, 5*time.Second); err != nil {
								t.Fatal(err)
							}
							if err := frozen.Thaw(); err != nil {
								t.Fatal(err)
							}
						},
						Config: config,
						ConfigStateChecks: []statecheck.StateCheck{
							statecheck.ExpectKnownValue("pgreplication_synchronous_replication.this", tfjsonpath.New("sync_state").AtMapKey(frozen.Name), knownvalue.StringExact("sync")),
						},
						Check: func(*terraform.State) error {
							return commitWithin(topo.Primary, 10*time.Second)
						},
					},
				},
			})
		})
	}
}

// TestAccSynchronousReplication_silentStandbyRefusedAtPlan: with the
// primary idle, a stopped standby has confirmed all the WAL there is, so the
// read-only plan's confirmation check passed it and only apply refused it,
// after writing a commit record and waiting 30 s. The plan now sees that it
// has not answered the primary for longer than a running standby goes
// (replyWatch: half of wal_sender_timeout, the default minute here) and
// refuses it by name, while it counts replica-2, which runs with
// wal_receiver_status_interval = 20s and so goes quiet for longer than
// the default 10 s too (watched while the plan watches replica-1, seen
// answering). Thawed, the same plan passes. The old code planned the
// create (the step expecting the refusal fails: no error).
func TestAccSynchronousReplication_silentStandbyRefusedAtPlan(t *testing.T) {
	testAccPreCheck(t)
	// Server-wide settings that can block commits: not the shared topology.
	// Autovacuum off: an idle primary is the case under test.
	topo := routertest.Start(t, routertest.WithStandbys(2), routertest.WithSetting("wal_receiver_status_interval", "20s"),
		routertest.WithSetting("autovacuum", "off"))
	frozen, quiet := topo.Standbys[0], topo.Standbys[1]
	if frozen.Name != "replica-1" || quiet.Name != "replica-2" {
		t.Fatalf("standbys %q and %q; the refusal's pattern names replica-1 and replica-2", frozen.Name, quiet.Name)
	}
	config := syncConfig(topo, fmt.Sprintf("\n  standby_names = [%q, %q]\n  num_sync      = 2\n", frozen.Name, quiet.Name))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					waitIdle(t, topo.Primary)
					if err := frozen.Freeze(); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = frozen.Thaw() })
					// Quiet for longer than a standby with the default interval
					// goes, but less than half of wal_sender_timeout: only the
					// watch can tell it from a standby that runs.
					deadline := time.Now().Add(2 * (standbyStatusInterval + replySlack))
					for {
						age := queryValue[float64](t, topo.Primary, "postgres",
							`SELECT extract(epoch FROM clock_timestamp() - reply_time)::float8 FROM pg_stat_replication WHERE application_name = $1`, frozen.Name)
						if age > (standbyStatusInterval + replySlack + time.Second).Seconds() {
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("replica-1 answered %.1fs ago, after being frozen until %s", age, deadline)
						}
						time.Sleep(200 * time.Millisecond)
					}
					// The primary is idle: the frozen standby has confirmed all
					// its WAL, so the confirmation check alone passes it.
					if ok := queryValue[bool](t, topo.Primary, "postgres",
						`SELECT state = 'streaming' AND flush_lsn >= pg_current_wal_flush_lsn() FROM pg_stat_replication WHERE application_name = $1`, frozen.Name); !ok {
						t.Fatal("the frozen standby's WAL sender does not stream, or it has not confirmed all the primary's WAL: not the case under test")
					}
				},
				Config:   config,
				PlanOnly: true,
				ExpectError: regexp.MustCompile(`(?s)Too Few Synchronous Standbys Connected.*needs\s+2\s+of\s+the\s+listed\s+standbys\s+streaming,\s+but\s+1\s+are.*` +
					`Streaming\s+now\s+\(pg_stat_replication\s+application_name\):\s+"replica-2";\s+connected,\s+but\s+silent:\s+"replica-1"\s+streams.*` +
					`has\s+not\s+answered\s+the\s+primary\s+for\s+\d+s.*half\s+of\s+wal_sender_timeout\s+\(30s\)`),
			},
			{
				PreConfig: func() {
					if err := frozen.Thaw(); err != nil {
						t.Fatal(err)
					}
				},
				Config:             config,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
}

// waitIdle waits until primary has written no WAL for longer than the
// 15 s after which its background writer logs the running transactions
// for the standbys once more (LOG_SNAPSHOT_INTERVAL_MS) when anything else
// was written: from then on it writes nothing until something happens.
func waitIdle(t *testing.T, primary *routertest.Node) {
	t.Helper()
	const quiet = 16 * time.Second
	deadline := time.Now().Add(4 * quiet)
	last, since := "", time.Now()
	for time.Since(since) < quiet {
		if time.Now().After(deadline) {
			t.Fatalf("%s kept writing WAL for %s", primary.Name, 4*quiet)
		}
		if lsn := queryValue[string](t, primary, "postgres", `SELECT pg_current_wal_insert_lsn()::text`); lsn != last {
			last, since = lsn, time.Now()
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestReplyWatch: which quiet standbys the plan shows silent.
func TestReplyWatch(t *testing.T) {
	const minute = time.Minute
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var nilWatch *replyWatch
	if got := nilWatch.judge(1, "r", time.Hour, false, minute, t0); got != replyAnswering {
		t.Errorf("apply (no watch) judged %d, want answering", got)
	}
	type poll struct {
		after time.Duration // since t0
		reply string
		age   time.Duration
		want  replyVerdict
	}
	for _, c := range []struct {
		name    string
		skewed  bool
		timeout time.Duration
		polls   []poll
	}{
		{"answered lately", false, minute, []poll{{0, "a", 10 * time.Second, replyAnswering}}},
		{"never without wal_sender_timeout", false, 0, []poll{{0, "a", time.Hour, replyAnswering}, {time.Minute, "a", time.Hour, replyAnswering}}},
		{"reply_time before the connection", true, minute, []poll{{0, "a", time.Hour, replyAnswering}, {time.Minute, "a", time.Hour, replyAnswering}}},
		{"stopped: silent past half the timeout, once watched", false, minute, []poll{
			{0, "a", 20 * time.Second, replyQuiet},
			{14 * time.Second, "a", 34 * time.Second, replyQuiet},
			{16 * time.Second, "a", 36 * time.Second, replySilent},
		}},
		{"stopped long ago: still watched before silent", false, minute, []poll{
			{0, "a", 50 * time.Second, replyQuiet},
			{14 * time.Second, "a", 64 * time.Second, replyQuiet},
			{15 * time.Second, "a", 65 * time.Second, replySilent},
		}},
		{"a longer status interval: answers when asked", false, minute, []poll{
			{0, "a", 16 * time.Second, replyQuiet},
			{14 * time.Second, "a", 30 * time.Second, replyQuiet},
			{15 * time.Second, "b", 0, replyAnswering},
		}},
		{"a clock 40 s behind: answers every 10 s", false, minute, []poll{
			{0, "a", 45 * time.Second, replyQuiet},
			{5 * time.Second, "b", 40 * time.Second, replyAnswering},
			{6 * time.Second, "b", 41 * time.Second, replyQuiet},
			{15 * time.Second, "c", 40 * time.Second, replyAnswering},
			{16 * time.Second, "c", 41 * time.Second, replyQuiet},
			{25 * time.Second, "c", 50 * time.Second, replyQuiet},
		}},
	} {
		w := &replyWatch{}
		for i, p := range c.polls {
			if got := w.judge(1, p.reply, p.age, c.skewed, c.timeout, t0.Add(p.after)); got != p.want {
				t.Errorf("%s, poll %d: judged %d, want %d", c.name, i, got, p.want)
			}
		}
	}
}

// TestAccSynchronousReplication_remoteApplyWithReplayPaused: raising
// synchronous_commit to remote_apply makes every commit wait until the
// synchronous standby has replayed it; with the standby's replay paused
// (pg_wal_replay_pause: it still receives and flushes WAL, so it streams
// and confirms the flush) no commit would return. The old code checked the
// standbys only when the list changed and applied it. Now the plan refuses
// it; once replay resumes, it applies and commits return.
func TestAccSynchronousReplication_remoteApplyWithReplayPaused(t *testing.T) {
	testAccPreCheck(t)
	// Server-wide settings that can block commits: not the shared topology.
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	config := func(commit string) string {
		return syncConfig(topo, fmt.Sprintf(`
  standby_names      = [%q]
  synchronous_commit = %q
`, standby.Name, commit))
	}
	ctx := context.Background()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: syncFactories(testSyncConfirmWait),
		CheckDestroy: func(*terraform.State) error {
			return commitWithin(topo.Primary, 10*time.Second)
		},
		Steps: []resource.TestStep{
			{Config: config("on")},
			{
				PreConfig: func() {
					if err := standby.PauseReplay(ctx); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = standby.ResumeReplay(context.Background()) })
					// Flushed by the standby (synchronous_commit on), not replayed.
					if err := commitWithin(topo.Primary, 10*time.Second); err != nil {
						t.Fatal(err)
					}
				},
				Config:      config("remote_apply"),
				ExpectError: regexp.MustCompile(`(?s)Too Few Synchronous Standbys Connected.*connected,\s+but\s+silent:.*has\s+not\s+confirmed.*within\s+5s`),
			},
			{
				PreConfig: func() {
					if got := queryValue[string](t, topo.Primary, "postgres", `SHOW synchronous_commit`); got != "on" {
						t.Fatalf("synchronous_commit = %q after the refused plan, want on", got)
					}
					if err := commitWithin(topo.Primary, 5*time.Second); err != nil {
						t.Fatal(err)
					}
					if err := standby.ResumeReplay(ctx); err != nil {
						t.Fatal(err)
					}
				},
				Config: config("remote_apply"),
				Check: func(*terraform.State) error {
					return commitWithin(topo.Primary, 10*time.Second)
				},
			},
		},
	})
}

// testSyncConfirmWait is the confirmation wait of the tests that need not
// prove the real one (syncConfirmTimeout): long enough for a standby that
// answers to confirm on a loaded machine, short enough that a refusal of
// one that does not is quick.
const testSyncConfirmWait = 5 * time.Second

// syncFactories serves the provider with its confirmation wait set to wait
// (syncConfirmTimeout when 0).
func syncFactories(wait time.Duration) map[string]func() (tfprotov6.ProviderServer, error) {
	return map[string]func() (tfprotov6.ProviderServer, error){
		"pgreplication": providerserver.NewProtocol6WithError(&pgreplicationProvider{version: "test", syncConfirmWait: wait}),
	}
}

// TestOutranking: which silent standbys method first would make
// synchronous ahead of the confirming ones.
func TestOutranking(t *testing.T) {
	for _, c := range []struct {
		cfg                syncrep.Config
		confirming, silent []string
		want               []string
	}{
		{syncrep.Config{Method: syncrep.First, NumSync: 1, Standbys: []string{"a", "b"}}, []string{"b"}, []string{"a"}, []string{"a"}},
		{syncrep.Config{Method: syncrep.First, NumSync: 1, Standbys: []string{"A", "b"}}, []string{"b"}, []string{"a"}, []string{"a"}}, // names match case-insensitively
		{syncrep.Config{Method: syncrep.First, NumSync: 1, Standbys: []string{"a", "b"}}, []string{"a"}, []string{"b"}, nil},           // ranked after: never taken
		{syncrep.Config{Method: syncrep.First, NumSync: 2, Standbys: []string{"a", "b", "c"}}, []string{"a", "c"}, []string{"b"}, []string{"b"}},
		{syncrep.Config{Method: syncrep.Any, NumSync: 1, Standbys: []string{"a", "b"}}, []string{"b"}, []string{"a"}, nil},        // quorum
		{syncrep.Config{Method: syncrep.First, NumSync: 1, Standbys: []string{"*"}}, []string{"b"}, []string{"a"}, []string{"a"}}, // a tie
		{syncrep.Config{Method: syncrep.First, NumSync: 1, Standbys: []string{"a", "b"}}, nil, []string{"a"}, nil},                // too few confirm: another refusal
		{syncrep.Config{Method: syncrep.First, NumSync: 1, Standbys: []string{"b"}}, []string{"b"}, []string{"a"}, nil},           // not listed
	} {
		if got := outranking(c.cfg, c.confirming, c.silent); !slices.Equal(got, c.want) {
			t.Errorf("outranking(%s, confirming %q, silent %q) = %q, want %q", c.cfg, c.confirming, c.silent, got, c.want)
		}
	}
}
