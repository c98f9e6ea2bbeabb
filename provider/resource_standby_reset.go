package provider

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

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
// receiver streams from. A standby in recovery that does not stream now
// (its primary frozen past wal_receiver_timeout, crashed or restarting)
// streams again once the primary is back, unless the reset takes
// primary_conninfo away: its primary is asked where primary_conninfo says,
// as the WAL receiver will, each host of a list in turn with its own
// bounds, for the one that is not in recovery (probePrimaries). A standby
// without primary_conninfo, or out of recovery, is cut off from nothing.
//
// A primary that answers refuses the reset with a setting and WAL senders
// (or, over a replication connection, a setting alone) that show the
// standby needed. Terraform's machine often cannot reach the primary the
// way the standby does (a private address, 127.0.0.1 in the standby's
// container, a password in the standby host's passfile, a client
// certificate there), and the reset worked before it was checked: what
// cannot be told for that (no connection from here, a login refused, a
// server that is not the standby's primary, states hidden from the role, a
// setting that alone does not tell) is an unchecked look, which the caller
// warns of. A primary that accepted the connection and then did not answer
// in time (frozen, overloaded) is there and comes back, needing the
// standby or not: that look is silent, and refuses (after the grace, in
// which an answer decides).
func (r *standbyResource) resetBlocksCommits(ctx context.Context, pool *pgxpool.Pool) syncLook {
	const blocks = "Resetting Standby Would Block Commits"
	fix := "Take the standby out of the primary's synchronous_standby_names first (pgreplication_synchronous_replication, or list " +
		"another standby that streams), apply, then destroy; or set reset_on_destroy = false and apply that first, so that the destroy " +
		"only forgets the resource and the standby keeps streaming."
	s, err := r.read(ctx, pool)
	if err != nil {
		return r.resetNotChecked("", fmt.Sprintf("reading the standby settings of %s failed: %v", r.server.describe(), err))
	}
	if !s.InRecovery || s.Conninfo == "" {
		return syncLook{}
	}
	link := resetLink{streams: s.Status != nil && *s.Status == "streaming" && s.SenderHost != nil && s.SenderPort != nil}
	p, err := conninfo.Parse(s.Conninfo)
	switch {
	case link.streams:
		link.primary = fmt.Sprintf("%s:%d", *s.SenderHost, *s.SenderPort)
	case err == nil:
		link.primary = standbyWant{Conninfo: s.Conninfo}.primariesText()
	}
	if err != nil {
		return r.resetNotChecked(link.which(), "its primary_conninfo could not be read as a connection string")
	}
	app := p["application_name"]
	if app == "" {
		_ = pool.QueryRow(ctx, `SELECT current_setting('cluster_name')`).Scan(&app)
	}
	if app == "" {
		app = "walreceiver" // the WAL receiver's fallback_application_name
	}
	var system string
	_ = pool.QueryRow(ctx, `SELECT system_identifier::text FROM pg_control_system()`).Scan(&system)
	if link.streams {
		p["host"], p["port"] = *s.SenderHost, strconv.Itoa(int(*s.SenderPort))
		delete(p, "hostaddr")
	}
	if p["dbname"] == "" {
		p["dbname"] = "postgres"
	}
	ctx = statement.WithSecrets(ctx, p.Secrets()...)
	var hosts []primaryHost
	for _, hp := range primaryHostParams(p) {
		cfg, err := namedHostConfig(hp, publisherProbeTimeout)
		if err != nil {
			return r.resetNotChecked(link.which(), fmt.Sprintf("its primary_conninfo does not say how to connect there from here (%v)", statement.MaskedError(ctx, err)))
		}
		hosts = append(hosts, primaryHost{cfg: cfg, addr: hostAddress(hp)})
	}
	probe, at, err := probePrimaries(ctx, hosts, app, system)
	if len(hosts) > 1 && at != "" && !probe.inRecovery {
		link.answered = at
	}
	if silent := (*primarySilentError)(nil); errors.As(err, &silent) {
		return r.silentLook(ctx, link, silent)
	}
	if err != nil {
		return r.resetNotChecked(link.which(), fmt.Sprintf("connecting there from Terraform's machine with the standby's primary_conninfo, to read "+
			"synchronous_standby_names, failed (the check waits %s at most): %v", publisherProbeTimeout, statement.MaskedError(ctx, err)))
	}
	look := syncLook{seen: true, names: probe.names}
	if system != "" && probe.system != "" && system != probe.system {
		look.commitRisk = r.resetNotChecked(link.which(), fmt.Sprintf("the server that answered there from Terraform's machine is not this "+
			"standby's primary (its system identifier is %s, the standby's %s): the address means another server from here", probe.system, system)).commitRisk
		look.unchecked = true
		return look
	}
	c, found, perr := syncrep.Parse(probe.names)
	if probe.inRecovery || perr != nil || !found || !c.Lists(probe.app) {
		return look
	}
	setting := fmt.Sprintf("synchronous_standby_names = %q", probe.names)
	if probe.replicationOnly != nil {
		// Only the setting: the others' WAL senders cannot be seen.
		others := slices.DeleteFunc(slices.Clone(c.Standbys), func(n string) bool { return syncrep.Matches(n, probe.app) })
		if slices.Contains(others, "*") || len(others) >= c.NumSync {
			if primaryBusy(probe.replicationOnly) {
				// The database connection was refused for now: in a
				// moment the primary shows whether the others stream.
				return r.silentLook(ctx, link, &primarySilentError{probe.replicationOnly})
			}
			return r.resetUncheckedLook(look, link.which(), fmt.Sprintf("the primary's %s lists %q, and whether %d other listed standbys stream, so "+
				"that commits there would not wait for it, cannot be told: the standby's primary_conninfo allows only a replication connection "+
				"there (%v), and pg_stat_replication needs a database connection", setting, probe.app, c.NumSync,
				statement.MaskedError(ctx, probe.replicationOnly)))
		}
		look.commitRisk = commitRisk{blocks, fmt.Sprintf("reset_on_destroy is set, and standby %q on %s %s, whose %s needs it: "+
			"it lists %d other standbys and needs %d. %s\n\nNothing was changed. %s",
			probe.app, r.server.describe(), link.clause(), setting, len(others), c.NumSync, link.effect(), fix)}
		return look
	}
	self := func(w walSenderRow) bool { return syncrep.Matches(probe.senderApp(), w.app) }
	streaming, connected, hidden := probe.othersListed(c, self)
	if streaming >= c.NumSync {
		return look
	}
	if hidden && connected >= c.NumSync {
		return r.resetUncheckedLook(look, link.which(), fmt.Sprintf("the primary's %s lists %q, and whether %d other listed standbys stream, so that "+
			"commits there would not wait for it, cannot be told: pg_stat_replication hides their state from the role of the standby's "+
			"primary_conninfo (granting it pg_read_all_stats on the primary lets the provider tell)", setting, probe.app, c.NumSync))
	}
	look.commitRisk = commitRisk{blocks, fmt.Sprintf("reset_on_destroy is set, and standby %q on %s %s, whose %s needs it: "+
		"%d other listed standbys stream, and it needs %d. %s\n\nNothing was changed. %s",
		probe.app, r.server.describe(), link.clause(), setting, streaming, c.NumSync, link.effect(), fix)}
	return look
}

// resetLink is the standby's link to the primary that the reset's probe
// asks: the sender host and port it streams from, or, while it does not
// stream, the hosts its primary_conninfo names ("" when it cannot be read).
type resetLink struct {
	streams bool
	primary string
	// answered is the host of a list that answered as the primary.
	answered string
}

// clause is the standby's link for a message, after "the standby on X",
// ending with the primary's address (which the message goes on about).
func (l resetLink) clause() string {
	if l.streams {
		return "streams from " + l.primary
	}
	if l.answered != "" {
		return "does not stream now, and its primary_conninfo names " + l.primary + ", where the primary is " + l.answered
	}
	return "does not stream now, and its primary_conninfo names " + l.primary
}

// which is the link as a relative clause, for resetNotChecked.
func (l resetLink) which() string {
	switch {
	case l.streams:
		return ", which streams from " + l.primary
	case l.primary == "":
		return ", which does not stream now"
	}
	return ", which does not stream now (its primary_conninfo names " + l.primary + ")"
}

// effect is what the reset does to the commits of a primary whose
// synchronous_standby_names needs the standby.
func (l resetLink) effect() string {
	if l.streams {
		return "The reset would take primary_conninfo away and stop its streaming, and every commit on the primary would wait for it " +
			"until synchronous_standby_names changes."
	}
	return "Commits on the primary wait for it until it streams again, which it does once it can connect; the reset would take " +
		"primary_conninfo away, and every commit there would wait for it until synchronous_standby_names changes."
}

// silentLook is the refusal of a reset whose primary (link) accepted the
// probe's connection and did not answer in time, or refused it for now.
func (r *standbyResource) silentLook(ctx context.Context, link resetLink, silent *primarySilentError) syncLook {
	return syncLook{silent: true, commitRisk: commitRisk{"Standby's Primary Does Not Answer", fmt.Sprintf(
		"reset_on_destroy is set, and the standby on %s %s, which accepted the connection from Terraform's machine "+
			"(with the standby's primary_conninfo) but %s: %v. A primary that is frozen, overloaded or restarting comes "+
			"back, and if its synchronous_standby_names needs this standby, every commit there would then wait for it until "+
			"synchronous_standby_names changes; whether it does cannot be told while it does not answer.\n\nNothing was changed. "+
			"Wait for the primary to answer and run the destroy again; or take the standby out of the primary's "+
			"synchronous_standby_names first (pgreplication_synchronous_replication, or list another standby that streams), apply, "+
			"then destroy; or set reset_on_destroy = false and apply that first, so that the destroy only forgets the resource and "+
			"the standby keeps streaming.", r.server.describe(), link.clause(), silent.how(), statement.MaskedError(ctx, silent.err))}}
}

// resetNotChecked is the warning of a reset whose effect on the commits of
// the standby's primary could not be checked, and why; which is the
// standby's link (resetLink.which, "" when not known). The destroy goes
// ahead, as it did before the check.
func (r *standbyResource) resetNotChecked(which, why string) syncLook {
	standby := "the standby on " + r.server.describe() + which
	return syncLook{unchecked: true, commitRisk: commitRisk{"Cannot Tell Whether Resetting Standby Blocks Commits", fmt.Sprintf(
		"reset_on_destroy is set for %s, but %s. Whether commits on the primary wait for this standby "+
			"once the reset stops its streaming was not checked, and the destroy is not refused for it.\n\n"+
			"Check on the primary that synchronous_standby_names does not need this standby: it does when it lists the standby's "+
			"application_name (or \"*\") and fewer than num_sync other listed standbys stream there (SELECT application_name, state, "+
			"sync_state FROM pg_stat_replication). If it does, take the standby out of synchronous_standby_names (pgreplication_synchronous_replication, "+
			"or ALTER SYSTEM and a reload) before the destroy; once it has run, commits there wait until you do.",
		standby, why)}}
}

// resetUncheckedLook is resetNotChecked for a look that read the setting.
func (r *standbyResource) resetUncheckedLook(look syncLook, which, why string) syncLook {
	look.commitRisk = r.resetNotChecked(which, why).commitRisk
	look.unchecked = true
	return look
}

// primaryProbe is what the standby's primary says of synchronous
// replication to a connection made with the standby's primary_conninfo.
type primaryProbe struct {
	syncSnapshot
	// app is the standby's application_name as the primary has it
	// (primaryApplicationName).
	app string
	// system is the primary's system identifier, "" when not read.
	system string
	// replicationOnly is why a database connection failed when a
	// replication connection succeeded: then only names and system are
	// known.
	replicationOnly error
}

// senderApp is app as pg_stat_replication shows it: cut to NAMEDATALEN-1
// bytes (app is ASCII, so a byte is a character).
func (p primaryProbe) senderApp() string { return p.app[:min(len(p.app), 63)] }

// primarySilentError is a probe of the standby's primary that timed out
// after the primary accepted the TCP connection: the server is there and
// did not answer in time (SIGSTOPped, overloaded), unlike one that cannot
// be reached from Terraform's machine at all (refused, no route, a name
// that does not resolve, a connect that times out), which fails in the
// dial. A server that refuses the connection for a while (primaryBusy:
// too many connections, starting up) is there too. pgconn cannot tell the
// timeouts apart by itself: under the probe's deadline it reports a
// timed-out dial and a timed-out read alike, as a timeout, so the probe
// marks the dials that succeed.
type primarySilentError struct{ err error }

func (e *primarySilentError) Error() string { return e.err.Error() }
func (e *primarySilentError) Unwrap() error { return e.err }

// how says what the primary did, for the refusal.
func (e *primarySilentError) how() string {
	if primaryBusy(e.err) {
		return "refused it for now"
	}
	return fmt.Sprintf("did not answer within %s", publisherProbeTimeout)
}

// probePrimary asks the server cfg reaches for its synchronous replication
// and system identifier, over a database connection, or over a replication
// connection where a role that may only replicate can read
// synchronous_standby_names (SHOW, the one SQL a WAL sender runs) and
// IDENTIFY_SYSTEM; each connection has publisherProbeTimeout of its own.
// app is the standby's application_name. A timeout after a TCP connection
// succeeded, or the server's refusal for now (primaryBusy) of either
// connection, is a *primarySilentError.
func probePrimary(ctx context.Context, cfg *pgx.ConnConfig, app string) (primaryProbe, error) {
	probe := primaryProbe{app: app}
	var accepted atomic.Bool
	cfg = cfg.Copy()
	dial := cfg.DialFunc
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err == nil {
			accepted.Store(true)
		}
		return c, err
	}
	probe, err := probePrimaryOnce(ctx, cfg, probe)
	if err != nil && accepted.Load() && (pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) || primaryBusy(err)) {
		err = &primarySilentError{err}
	}
	return probe, err
}

// primaryHost is one host of the standby's primary_conninfo, as the probe
// connects to it: cfg, and addr, its host:port for messages.
type primaryHost struct {
	cfg  *pgx.ConnConfig
	addr string
}

// primaryHostParams splits p, primary_conninfo's parameters, into one set
// per host of its host list, as libpq pairs host, hostaddr and port (one
// port for every host, or one each; an empty one is the default), so that
// the probe asks each host in turn with bounds of its own.
func primaryHostParams(p conninfo.Params) []conninfo.Params {
	hosts, addrs, ports := splitList(p["host"]), splitList(p["hostaddr"]), splitList(p["port"])
	n := max(len(hosts), len(addrs), 1)
	out := make([]conninfo.Params, n)
	for i := range out {
		one := maps.Clone(p)
		one["host"], one["hostaddr"] = listItem(hosts, i), listItem(addrs, i)
		one["port"] = listItem(ports, i)
		if len(ports) == 1 {
			one["port"] = ports[0]
		}
		out[i] = one
	}
	return out
}

// splitList splits a libpq list parameter at its commas: none for "".
func splitList(v string) []string {
	if v == "" {
		return nil
	}
	items := strings.Split(v, ",")
	for i := range items {
		items[i] = strings.TrimSpace(items[i])
	}
	return items
}

func listItem(items []string, i int) string {
	if i < len(items) {
		return items[i]
	}
	return ""
}

// hostAddress is the host:port of p, one host's parameters, for a message:
// its host name, else its hostaddr.
func hostAddress(p conninfo.Params) string {
	port, err := strconv.Atoi(p["port"])
	if err != nil {
		port = defaultPrimaryPort
	}
	return hostPort{cmp.Or(p["host"], p["hostaddr"]), int64(port)}.String()
}

// probePrimaries asks the hosts of the standby's primary_conninfo, in
// order, for the primary (probePrimary, each host with its own bounds): the
// first that answers and is not in recovery, and is the standby's primary
// (system, its system identifier, "" when not known), with its address.
// Only a primary's synchronous_standby_names holds commits: a host of the
// list that is a standby (a cascading upstream, or a former primary
// rejoined as one) is not taken for it, whatever target_session_attrs
// says, and one that does not answer (frozen) keeps the probe from the
// next host for its own bounds only. When none answers as the primary, a
// host that accepted and did not answer, or refused for now, makes the
// error silent (it may be the primary, and comes back); else the first
// other failure is the error; else the probe of a server that is not the
// standby's primary, or of a standby (inRecovery), is returned.
func probePrimaries(ctx context.Context, hosts []primaryHost, app, system string) (primaryProbe, string, error) {
	var silent, failed error
	var other, standby *primaryProbe
	var otherAt, standbyAt string
	for _, h := range hosts {
		probe, err := probePrimary(ctx, h.cfg, app)
		var s *primarySilentError
		switch {
		case err == nil && probe.inRecovery:
			if standby == nil {
				standby, standbyAt = &probe, h.addr
			}
		case err == nil && system != "" && probe.system != "" && probe.system != system:
			if other == nil {
				other, otherAt = &probe, h.addr
			}
		case err == nil:
			return probe, h.addr, nil
		case errors.As(err, &s):
			silent = cmp.Or(silent, err)
		default:
			failed = cmp.Or(failed, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	switch {
	case silent != nil:
		return primaryProbe{app: app}, "", silent
	case failed != nil:
		return primaryProbe{app: app}, "", failed
	case other != nil:
		return *other, otherAt, nil
	case standby != nil:
		return *standby, standbyAt, nil
	}
	return primaryProbe{app: app}, "", ctx.Err()
}

// primaryBusy tells whether err is the server's own refusal of a
// connection for a while (too many connections or another lack of
// resources, class 53; starting up, shutting down or in recovery, 57P03):
// the primary is there, and it comes back with its
// synchronous_standby_names, as a silent one does.
func primaryBusy(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "53") || pgErr.Code == "57P03")
}

// probePrimaryOnce is probePrimary's connections and questions, each
// connection within publisherProbeTimeout of its own (and within parent):
// a server that answers a failed login slowly on purpose (auth_delay)
// spends the database connection's time on its refusal, and the
// replication connection's refusal would not come in what is left. A
// database connection that timed out is not followed by the other: the
// primary did not answer, and a frozen one costs one timeout, not two.
func probePrimaryOnce(parent context.Context, cfg *pgx.ConnConfig, probe primaryProbe) (primaryProbe, error) {
	app := probe.app
	ctx, cancel := context.WithTimeout(parent, publisherProbeTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil && (pgconn.Timeout(err) || ctx.Err() != nil) {
		return probe, err
	}
	if err == nil {
		defer conn.Close(context.WithoutCancel(ctx))
		probe.syncSnapshot, err = readSyncSnapshot(ctx, conn)
		if err == nil {
			probe.app = primaryApplicationName(app, conn.PgConn().ParameterStatus("server_version"))
			_ = conn.QueryRow(ctx, `SELECT system_identifier::text FROM pg_control_system()`).Scan(&probe.system)
			return probe, nil
		}
		if pgconn.Timeout(err) || ctx.Err() != nil {
			return probe, err // the questions timed out: the primary stopped answering
		}
	}
	ctx, cancel = context.WithTimeout(parent, publisherProbeTimeout)
	defer cancel()
	c := cfg.Config.Copy()
	c.RuntimeParams["replication"] = "true"
	repl, replErr := pgconn.ConnectConfig(ctx, c)
	if replErr != nil {
		if pgconn.Timeout(replErr) || primaryBusy(replErr) {
			// The primary stopped answering between the two, or refuses
			// the replication connection for now (every WAL sender slot
			// taken): either way it is there, and the database
			// connection's refusal does not tell what it would say.
			return probe, replErr
		}
		return probe, err
	}
	defer repl.Close(context.WithoutCancel(ctx))
	if probe.names, replErr = showValue(ctx, repl, `SHOW synchronous_standby_names`); replErr != nil {
		if pgconn.Timeout(replErr) || ctx.Err() != nil {
			return probe, replErr
		}
		return probe, err
	}
	probe.app = primaryApplicationName(app, repl.ParameterStatus("server_version"))
	// A replication connection runs no pg_is_in_recovery(); PostgreSQL 14
	// and later report it at every connection's start.
	probe.inRecovery = repl.ParameterStatus("in_hot_standby") == "on"
	probe.system, _ = showValue(ctx, repl, `IDENTIFY_SYSTEM`)
	probe.replicationOnly = err
	return probe, nil
}

// primaryApplicationName is app as a server of version (its server_version)
// holds it, and so compares it with synchronous_standby_names: its check of
// application_name (pg_clean_ascii) replaces every byte that is not
// printable ASCII with \xNN since PostgreSQL 16, with '?' before.
func primaryApplicationName(app, version string) string {
	if i := strings.IndexFunc(version, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		version = version[:i] // "17.2", "18beta1", "15.4 (Debian 15.4-1)"
	}
	major, _ := strconv.Atoi(version)
	var b strings.Builder
	for i := 0; i < len(app); i++ {
		switch c := app[i]; {
		case c >= 32 && c <= 126:
			b.WriteByte(c)
		case major >= 16:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

// showValue runs sql on a replication connection and returns the first
// column of its one row.
func showValue(ctx context.Context, conn *pgconn.PgConn, sql string) (string, error) {
	results, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return "", err
	}
	if len(results) != 1 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) == 0 {
		return "", fmt.Errorf("%s returned no value", sql)
	}
	return string(results[0].Rows[0][0]), nil
}

// warnDestroy warns, at the plan of a destroy, of a reset_on_destroy that
// would leave the primary's commits waiting (resetBlocksCommits), which
// apply refuses unless synchronous_standby_names changes meanwhile (another
// resource of the same apply, see commitRiskAfterGrace), of a primary that
// does not answer, which apply refuses unless it answers within the grace,
// and of one whose effect could not be checked, which apply does not refuse.
func (r *standbyResource) warnDestroy(ctx context.Context, state tfsdk.State, diags *diag.Diagnostics) {
	var m standbyResourceModel
	if d := state.Get(ctx, &m); d.HasError() || !m.ResetOnDestroy.ValueBool() || r.server == nil || r.server.unknown {
		return
	}
	pool, err := r.server.Pool(ctx, "")
	if err != nil {
		return
	}
	look := r.resetBlocksCommits(ctx, pool)
	switch {
	case look.silent:
		diags.AddWarning(look.summary, look.detail+"\n\nApply asks again (for "+syncRiskGrace.String()+") and refuses the destroy "+
			"unless the primary answers by then and its synchronous_standby_names does not need the standby.")
	case look.refuses():
		diags.AddWarning(look.summary, look.detail+"\n\nApply refuses the destroy unless synchronous_standby_names changes first "+
			"(within "+syncRiskGrace.String()+", in case another resource of this apply changes it).")
	case look.summary != "":
		diags.AddWarning(look.summary, look.detail)
	}
}

// refuseReset adds the refusal of a reset_on_destroy that would leave the
// primary's commits waiting, or whose primary accepted the connection and
// did not answer, after the grace (commitRiskAfterGrace), and reports
// whether it did; a reset whose effect could not be checked gets a warning
// and goes ahead.
func (r *standbyResource) refuseReset(ctx context.Context, pool *pgxpool.Pool, diags *diag.Diagnostics) bool {
	check := func(ctx context.Context) syncLook { return r.resetBlocksCommits(ctx, pool) }
	look := commitRiskAfterGrace(ctx, check(ctx), check)
	switch {
	case look.refuses():
		diags.AddError(look.summary, look.detail)
		return true
	case look.summary != "":
		diags.AddWarning(look.summary, look.detail)
	}
	return false
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
