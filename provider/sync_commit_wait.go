package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/syncrep"
)

// The primary's side of "would commits wait for good": what a replication
// slot's drop (dropBlocksCommits) and a standby's reset (resetBlocksCommits)
// both ask before they cut a standby off.

// commitRisk is why cutting a standby off (dropping the slot it streams
// through, resetting its primary_conninfo) would leave the commits on its
// primary waiting for it until someone changes synchronous_standby_names,
// or why the provider cannot tell: summary and detail of the diagnostic,
// both empty when it is safe.
type commitRisk struct{ summary, detail string }

// walSenderRow is one row of pg_stat_replication. state is NULL for another
// role's WAL sender when the provider's role lacks pg_read_all_stats, while
// application_name (from pg_stat_activity) is shown to every role.
type walSenderRow struct {
	pid   int64
	app   string
	state *string
}

// syncRiskSQL reads what syncSnapshot holds in one statement, so the
// settings and the WAL senders are one moment's.
const syncRiskSQL = `SELECT pg_is_in_recovery(), current_setting('synchronous_standby_names'), current_setting('synchronous_commit'),
  coalesce(array_agg(pid::bigint) FILTER (WHERE pid IS NOT NULL), '{}'),
  coalesce(array_agg(coalesce(application_name, '')) FILTER (WHERE pid IS NOT NULL), '{}'),
  coalesce(array_agg(state) FILTER (WHERE pid IS NOT NULL), '{}')
FROM (SELECT 1) one LEFT JOIN pg_stat_replication ON true`

// syncSnapshot is one moment of a server's synchronous replication: its
// synchronous_standby_names, the provider session's synchronous_commit,
// and its WAL senders.
type syncSnapshot struct {
	inRecovery    bool
	names, commit string
	senders       []walSenderRow
}

// rowQuerier is what readSyncSnapshot reads through: a pool or one connection.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// readSyncSnapshot runs syncRiskSQL.
func readSyncSnapshot(ctx context.Context, q rowQuerier) (syncSnapshot, error) {
	var s syncSnapshot
	var pids []int64
	var apps []string
	var states []*string
	if err := q.QueryRow(ctx, syncRiskSQL).Scan(&s.inRecovery, &s.names, &s.commit, &pids, &apps, &states); err != nil {
		return s, err
	}
	for i := range pids {
		s.senders = append(s.senders, walSenderRow{pid: pids[i], app: apps[i], state: states[i]})
	}
	return s, nil
}

// apps are the application names of the WAL senders.
func (s syncSnapshot) apps() []string {
	apps := make([]string, len(s.senders))
	for i, w := range s.senders {
		apps[i] = w.app
	}
	return apps
}

// othersListed counts the WAL senders that c lists, leaving out those that
// self matches (the standby about to be cut off): how many are connected,
// how many stream, and whether the state of any of them is hidden from the
// provider's role (then it may stream or not).
func (s syncSnapshot) othersListed(c syncrep.Config, self func(walSenderRow) bool) (streaming, connected int, hidden bool) {
	for _, o := range s.senders {
		if self(o) || !c.Lists(o.app) {
			continue
		}
		connected++
		switch {
		case o.state == nil:
			hidden = true
		case *o.state == "streaming":
			streaming++
		}
	}
	return streaming, connected, hidden
}

// lookAgain is the grace of a refusal that another resource of the same
// run may be making needless (syncRiskGrace says why): look is run again
// until settled says its verdict ends the wait, or syncRiskGrace has passed.
// A look that fails (ok false) says nothing: the last verdict of a look that
// succeeded stands, so a server that stops answering during the grace
// neither ends the refusal nor turns it into another. The grace as a whole,
// looks included, ends within syncRiskGrace (a look whose server does not
// answer is cut at its end). It returns the last verdict and how long it
// waited.
func lookAgain[V any](ctx context.Context, verdict V, look func(context.Context) (V, bool), settled func(V) bool) (V, time.Duration) {
	start := time.Now()
	graceCtx, cancel := context.WithTimeout(ctx, syncRiskGrace)
	defer cancel()
	_, _ = pollUntil(graceCtx, syncRiskGrace, func(ctx context.Context) (bool, error) {
		again, ok := look(ctx)
		if !ok {
			return false, nil
		}
		verdict = again
		return settled(verdict), nil
	})
	return verdict, time.Since(start)
}

// syncLook is one look at whether cutting a standby off blocks commits:
// the verdict, and the synchronous_standby_names it was judged by.
type syncLook struct {
	commitRisk
	// seen: names was read (it may be ""); a look that could not read it
	// says nothing of the setting.
	seen  bool
	names string
	// gone: the question went away whatever the setting (the slot was
	// dropped meanwhile, or can no longer be streamed through).
	gone bool
	// unchecked: the server that knows could not be asked, or did not say
	// enough, and the check warns of that instead of refusing: the
	// standby's reset, whose primary the provider reaches, if at all, only
	// over the standby's primary_conninfo, worked before it was checked.
	unchecked bool
	// silent: the server accepted the connection and did not answer in
	// time, so the setting was not read; it refuses (it may need the
	// standby, and comes back), and a look that reads the setting decides.
	silent bool
}

// refuses reports whether the look stops the cut.
func (l syncLook) refuses() bool { return l.summary != "" && !l.unchecked }

// commitRiskAfterGrace is first, the verdict of a first look, and while it
// refuses the looks of again (lookAgain): another resource of the same
// apply may be changing synchronous_standby_names meanwhile. Only a change
// of the setting since the first look (the case the grace is for) ends it
// early, and then the verdict of that look decides. A standby's link that
// flaps during the grace ends its WAL sender or connects an absent standby
// for a moment; neither makes the cut safe, so under the same
// synchronous_standby_names the first verdict stands, and so does a look
// that could not read the setting. When the first look could not read it
// there is nothing to compare with, and any look that reads it decides. A
// refusal that outlasts the grace is returned, saying how long it was
// watched; so is the last verdict that ended it, a warning (unchecked) or
// nothing.
func commitRiskAfterGrace(ctx context.Context, first syncLook, again func(context.Context) syncLook) syncLook {
	if !first.refuses() {
		return first
	}
	last, waited := lookAgain(ctx, first, func(ctx context.Context) (syncLook, bool) {
		l := again(ctx)
		switch {
		case l.gone:
			return l, true
		case !l.seen, first.seen && l.names == first.names:
			return l, false
		}
		return l, true
	}, func(l syncLook) bool { return l.gone || !l.refuses() })
	switch {
	case !last.refuses() || ctx.Err() != nil:
	case last.silent:
		last.detail += fmt.Sprintf("\n\n(Asked again for %s, and it did not answer then either.)", waited.Round(time.Second))
	default:
		last.detail += fmt.Sprintf("\n\n(Checked again for %s, in case another resource of this apply was changing synchronous_standby_names.)",
			waited.Round(time.Second))
	}
	return last
}
