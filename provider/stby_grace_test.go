package provider

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A look whose server stops answering (a primary frozen during the grace)
// is cut at the grace's end: the whole grace ends within syncRiskGrace, and
// the verdict of the last look that answered stands. pollUntil alone let a
// look that began at the end run on for pollGrace, and each standby probe
// waits up to publisherProbeTimeout.
func TestLookAgainBoundedWhenLooksHang(t *testing.T) {
	t.Parallel()
	start := time.Now()
	verdict, waited := lookAgain(context.Background(), "refused", func(ctx context.Context) (string, bool) {
		<-ctx.Done() // never answers
		return "", false
	}, func(v string) bool { return v == "" })
	took := time.Since(start)
	if verdict != "refused" {
		t.Errorf("after looks that failed the verdict is %q, want the first one's", verdict)
	}
	if took > syncRiskGrace+time.Second || waited > syncRiskGrace+time.Second {
		t.Errorf("the grace took %s (said %s) with hanging looks; want at most syncRiskGrace (%s)", took.Round(time.Millisecond), waited.Round(time.Millisecond), syncRiskGrace)
	}
}

// The grace of a commit risk (slot drop, standby reset) ends early only on
// a look that read another synchronous_standby_names: under the same
// setting the first verdict stands (a flapping standby's look proves
// nothing), a look that could not read it keeps the last verdict, and a
// changed setting decides, a warning (unchecked) included.
func TestCommitRiskAfterGraceEndsOnlyOnChangedSetting(t *testing.T) {
	t.Parallel()
	blocks := syncLook{commitRisk: commitRisk{"Blocks", "needed"}, seen: true, names: `"a"`}
	for _, tc := range []struct {
		name    string
		later   []syncLook // looks after the first; the last one repeats
		refuses bool
		summary string
		quick   bool // ends before the grace
	}{
		{"same setting, no risk for a moment", []syncLook{{seen: true, names: `"a"`}}, true, "Blocks", false},
		{"setting not read", []syncLook{{}}, true, "Blocks", false},
		{"setting changed", []syncLook{{}, {seen: true, names: ""}}, false, "", true},
		{"setting changed, cannot tell", []syncLook{{seen: true, names: `"a", "b"`, unchecked: true,
			commitRisk: commitRisk{"Cannot Tell", "?"}}}, false, "Cannot Tell", true},
		{"slot gone", []syncLook{{gone: true}}, false, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			looks := 0
			start := time.Now()
			got := commitRiskAfterGrace(context.Background(), blocks, func(context.Context) syncLook {
				looks++
				return tc.later[min(looks-1, len(tc.later)-1)]
			})
			took := time.Since(start)
			if got.refuses() != tc.refuses || got.summary != tc.summary {
				t.Errorf("verdict %q (refuses %v), want %q (refuses %v)", got.summary, got.refuses(), tc.summary, tc.refuses)
			}
			if quick := took < syncRiskGrace/2; quick != tc.quick {
				t.Errorf("the grace took %s; want it to end early: %v", took.Round(time.Millisecond), tc.quick)
			}
		})
	}
}

// A first look at a primary that accepted the connection and did not
// answer (silent: frozen, overloaded) refuses after the grace unless a look
// in it reads the setting: then that look decides. A look that cannot reach
// the primary at all (unchecked, nothing read) keeps the silent verdict, so
// a primary that is away during the grace does not turn the refusal into a
// warning.
func TestCommitRiskAfterGraceSilentPrimary(t *testing.T) {
	t.Parallel()
	silent := syncLook{silent: true, commitRisk: commitRisk{"Silent", "no answer"}}
	for _, tc := range []struct {
		name    string
		later   syncLook
		refuses bool
		summary string
		note    string
		quick   bool
	}{
		{"still silent", silent, true, "Silent", "did not answer then either", false},
		{"unreachable now", syncLook{unchecked: true, commitRisk: commitRisk{"Cannot Tell", "refused"}}, true, "Silent", "did not answer then either", false},
		{"answers, not needed", syncLook{seen: true, names: ""}, false, "", "", true},
		{"answers, needed", syncLook{seen: true, names: `"a"`, commitRisk: commitRisk{"Blocks", "needed"}}, true, "Blocks", "Checked again", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			got := commitRiskAfterGrace(context.Background(), silent, func(context.Context) syncLook { return tc.later })
			took := time.Since(start)
			if got.refuses() != tc.refuses || got.summary != tc.summary || !strings.Contains(got.detail, tc.note) {
				t.Errorf("verdict %q (refuses %v, %q), want %q (refuses %v, saying %q)", got.summary, got.refuses(), got.detail, tc.summary, tc.refuses, tc.note)
			}
			if quick := took < syncRiskGrace/2; quick != tc.quick {
				t.Errorf("the grace took %s; want it to end early: %v", took.Round(time.Millisecond), tc.quick)
			}
		})
	}
}
