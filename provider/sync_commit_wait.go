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
		if self(o) || !listedStandby(c, o.app) {
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

// commitRiskAfterGrace is check, looked at again for up to syncRiskGrace
// while it finds a risk (another resource of the same apply may be changing
// synchronous_standby_names meanwhile): a risk that outlasts it is
// returned, saying how long it was watched.
func commitRiskAfterGrace(ctx context.Context, check func(context.Context) commitRisk) commitRisk {
	risk := check(ctx)
	if risk.summary == "" {
		return risk
	}
	start := time.Now()
	_, _ = pollUntil(ctx, syncRiskGrace, func(ctx context.Context) (bool, error) {
		risk = check(ctx)
		return risk.summary == "", nil
	})
	if risk.summary != "" && ctx.Err() == nil {
		risk.detail += fmt.Sprintf("\n\n(Checked again for %s, in case another resource of this apply was changing synchronous_standby_names.)",
			time.Since(start).Round(time.Second))
	}
	return risk
}
