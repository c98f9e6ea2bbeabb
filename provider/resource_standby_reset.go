package provider

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/conninfo"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/statement"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/syncrep"
)

// resetBlocksCommits tells whether reset_on_destroy, which takes
// primary_conninfo away and so ends the standby's streaming, would leave the
// commits on its primary waiting for it until someone changes
// synchronous_standby_names: the primary lists the standby's
// application_name and fewer than num_sync other listed standbys stream.
// It is the question a replication slot's drop asks (dropBlocksCommits),
// asked of the primary the standby streams from, which the provider has no
// connection to: it connects the way the standby does, with the standby's
// primary_conninfo (its password included), to the host and port the WAL
// receiver streams from. A role that may only replicate there gets a
// replication connection, where SHOW synchronous_standby_names is all it
// can read: unless the list alone tells (no other name could make up
// num_sync), the reset is refused as one whose effect cannot be told. A
// standby that does not stream now is cut off from nothing.
func (r *standbyResource) resetBlocksCommits(ctx context.Context, pool *pgxpool.Pool) commitRisk {
	const blocks = "Resetting Standby Would Block Commits"
	const unknown = "Cannot Tell Whether Resetting Standby Blocks Commits"
	fix := "Take the standby out of the primary's synchronous_standby_names first (pgreplication_synchronous_replication, or list " +
		"another standby that streams), apply, then destroy; or set reset_on_destroy = false and apply that first, so that the destroy " +
		"only forgets the resource and the standby keeps streaming."
	s, err := r.read(ctx, pool)
	if err != nil {
		return commitRisk{unknown, fmt.Sprintf("reset_on_destroy is set, but reading the standby settings of %s, to tell whether its "+
			"primary's commits would wait for it once it stops streaming, failed: %v\n\nNothing was changed. %s", r.server.describe(), err, fix)}
	}
	if !s.InRecovery || s.Status == nil || *s.Status != "streaming" || s.SenderHost == nil || s.SenderPort == nil {
		return commitRisk{}
	}
	p, err := conninfo.Parse(s.Conninfo)
	if err != nil {
		return commitRisk{}
	}
	app := p["application_name"]
	if app == "" {
		_ = pool.QueryRow(ctx, `SELECT current_setting('cluster_name')`).Scan(&app)
	}
	if app == "" {
		app = "walreceiver" // the WAL receiver's fallback_application_name
	}
	primary := fmt.Sprintf("%s:%d", *s.SenderHost, *s.SenderPort)
	p["host"], p["port"] = *s.SenderHost, strconv.Itoa(int(*s.SenderPort))
	delete(p, "hostaddr")
	if p["dbname"] == "" {
		p["dbname"] = "postgres"
	}
	ctx = statement.WithSecrets(ctx, p.Secrets()...)
	cfg, err := namedHostConfig(p, publisherProbeTimeout)
	if err != nil {
		return commitRisk{}
	}
	probeCtx, cancel := context.WithTimeout(ctx, publisherProbeTimeout)
	defer cancel()
	var snap syncSnapshot
	conn, err := pgx.ConnectConfig(probeCtx, cfg)
	if err == nil {
		snap, err = readSyncSnapshot(probeCtx, conn)
		_ = conn.Close(ctx)
	}
	if err != nil {
		names, replErr := showSyncNames(probeCtx, cfg)
		if replErr != nil {
			return commitRisk{unknown, fmt.Sprintf("reset_on_destroy is set, and standby %q on %s streams from %s. Connecting there with "+
				"the standby's primary_conninfo, to read synchronous_standby_names, failed: %v\n\nNothing was changed. %s",
				app, r.server.describe(), primary, statement.MaskedError(ctx, err), fix)}
		}
		snap = syncSnapshot{names: names}
	}
	c, found, perr := syncrep.Parse(snap.names)
	if snap.inRecovery || perr != nil || !found || !listedStandby(c, app) {
		return commitRisk{}
	}
	self := func(w walSenderRow) bool { return strings.EqualFold(w.app, app) }
	setting := fmt.Sprintf("synchronous_standby_names = %q", snap.names)
	if err != nil {
		// Only the setting: the others' WAL senders cannot be seen.
		others := slices.DeleteFunc(slices.Clone(c.Standbys), func(n string) bool { return strings.EqualFold(n, app) })
		if slices.Contains(others, "*") || len(others) >= c.NumSync {
			return commitRisk{unknown, fmt.Sprintf("reset_on_destroy is set, and standby %q on %s streams from %s, whose %s lists it. "+
				"Whether %d other listed standbys stream, so that commits there would not wait for it once the reset stops its streaming, "+
				"cannot be told: the standby's primary_conninfo allows only a replication connection there (%v), and pg_stat_replication "+
				"needs a database connection.\n\nNothing was changed. %s",
				app, r.server.describe(), primary, setting, c.NumSync, statement.MaskedError(ctx, err), fix)}
		}
		return commitRisk{blocks, fmt.Sprintf("reset_on_destroy is set, and standby %q on %s streams from %s, whose %s needs it: "+
			"it lists %d other standbys and needs %d. The reset would stop its streaming, and commits on the primary would wait for it "+
			"until synchronous_standby_names changes.\n\nNothing was changed. %s",
			app, r.server.describe(), primary, setting, len(others), c.NumSync, fix)}
	}
	streaming, connected, hidden := snap.othersListed(c, self)
	if streaming >= c.NumSync {
		return commitRisk{}
	}
	if hidden && connected >= c.NumSync {
		return commitRisk{unknown, fmt.Sprintf("reset_on_destroy is set, and standby %q on %s streams from %s, whose %s lists it. "+
			"Whether %d other listed standbys stream, so that commits there would not wait for it once the reset stops its streaming, "+
			"cannot be told: pg_stat_replication hides their state from the role of the standby's primary_conninfo (grant it "+
			"pg_read_all_stats on the primary to let it tell).\n\nNothing was changed. %s",
			app, r.server.describe(), primary, setting, c.NumSync, fix)}
	}
	return commitRisk{blocks, fmt.Sprintf("reset_on_destroy is set, and standby %q on %s streams from %s, whose %s needs it: "+
		"%d other listed standbys stream, and it needs %d. The reset would take primary_conninfo away and stop its streaming, and every "+
		"commit on the primary would wait for it until synchronous_standby_names changes.\n\nNothing was changed. %s",
		app, r.server.describe(), primary, setting, streaming, c.NumSync, fix)}
}

// showSyncNames reads synchronous_standby_names over a physical replication
// connection of cfg, where SHOW is the one SQL a WAL sender runs: what a
// role that may only replicate can read.
func showSyncNames(ctx context.Context, cfg *pgx.ConnConfig) (string, error) {
	c := cfg.Config.Copy()
	c.RuntimeParams["replication"] = "true"
	conn, err := pgconn.ConnectConfig(ctx, c)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	results, err := conn.Exec(ctx, `SHOW synchronous_standby_names`).ReadAll()
	if err != nil {
		return "", err
	}
	if len(results) != 1 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) != 1 {
		return "", fmt.Errorf("SHOW synchronous_standby_names returned no value")
	}
	return string(results[0].Rows[0][0]), nil
}

// warnDestroy warns, at the plan of a destroy, of a reset_on_destroy that
// would leave the primary's commits waiting (resetBlocksCommits), which
// apply refuses unless synchronous_standby_names changes meanwhile (another
// resource of the same apply, see commitRiskAfterGrace).
func (r *standbyResource) warnDestroy(ctx context.Context, state tfsdk.State, diags *diag.Diagnostics) {
	var m standbyResourceModel
	if d := state.Get(ctx, &m); d.HasError() || !m.ResetOnDestroy.ValueBool() || r.server == nil || r.server.unknown {
		return
	}
	pool, err := r.server.Pool(ctx, "")
	if err != nil {
		return
	}
	if risk := r.resetBlocksCommits(ctx, pool); risk.summary != "" {
		diags.AddWarning(risk.summary, risk.detail+"\n\nApply refuses the destroy unless synchronous_standby_names changes first "+
			"(within "+syncRiskGrace.String()+", in case another resource of this apply changes it).")
	}
}

// notOwnConninfo names the attributes whose value on the server differs
// from state's, the destroyed object's: "" when the server still has what
// state says (or cannot be read: the reset then reports that). Delete of a
// create_before_destroy replacement's old object comes after the new
// object wrote its settings, and must not reset those.
func (r *standbyResource) notOwnConninfo(ctx context.Context, pool *pgxpool.Pool, state *standbyResourceModel) string {
	cur, err := r.read(ctx, pool)
	if err != nil {
		return ""
	}
	if cur.Conninfo == "" {
		return "primary_conninfo (empty)"
	}
	fresh := *state
	if cur.fill(ctx, &fresh) != nil {
		return ""
	}
	var changed []string
	for _, a := range []struct {
		name    string
		was, is attr.Value
	}{
		{"primary_host", state.PrimaryHost, fresh.PrimaryHost},
		{"primary_port", state.PrimaryPort, fresh.PrimaryPort},
		{"primary_user", state.PrimaryUser, fresh.PrimaryUser},
		{"application_name", state.ApplicationName, fresh.ApplicationName},
		{"primary_slot_name", state.PrimarySlotName, fresh.PrimarySlotName},
	} {
		if !a.was.Equal(a.is) {
			changed = append(changed, a.name)
		}
	}
	return andList(changed)
}
