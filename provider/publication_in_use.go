package provider

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/sqllex"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
)

// publicationStreams is what a publisher shows of the subscriptions that
// stream one of its publications now. Dropping or renaming a publication
// under a streaming subscription stops that subscription for good: its WAL
// sender fails on the next change with "publication ... does not exist", and
// the subscriber retries that change for ever (PostgreSQL 15 to 17) or skips
// the publication's changes (18), while the drop itself succeeds.
type publicationStreams struct {
	// streaming names the consumers whose START_REPLICATION command names
	// the publication.
	streaming []string
	// unseen names the consumers of an active pgoutput slot in the
	// publication's database whose command the provider's role may not read
	// (pg_stat_activity shows another role's query only to pg_read_all_stats).
	unseen []string
	// idle names the pgoutput slots in the database that no session streams
	// from now: a disabled subscription's, or one whose apply worker is
	// restarting after an error, which streams this publication again
	// when it comes back, for all the publisher can tell.
	idle []string
}

// publicationStreamsQuery lists the sessions streaming from a logical slot
// of pgoutput (the plugin of PostgreSQL's subscriptions) in one database,
// with what pg_stat_activity shows of each. A subscription's table
// synchronisation workers stream from temporary slots of their own, listed
// the same way.
const publicationStreamsQuery = `SELECT s.slot_name, s.active_pid::bigint, a.backend_type, a.application_name,
       host(a.client_addr), a.client_port, a.query
FROM pg_replication_slots s LEFT JOIN pg_stat_activity a ON a.pid = s.active_pid
WHERE s.slot_type = 'logical' AND s.plugin = 'pgoutput' AND s.database = $1
ORDER BY s.slot_name`

// readPublicationStreams reads which sessions stream publication name of
// database now.
func readPublicationStreams(ctx context.Context, q querier, database, name string) (publicationStreams, error) {
	var streams publicationStreams
	rows, err := q.Query(ctx, publicationStreamsQuery, database)
	if err != nil {
		return streams, err
	}
	defer rows.Close()
	for rows.Next() {
		var slot string
		var pid *int64
		var row consumerRow
		var command *string
		if err := rows.Scan(&slot, &pid, &row.backend, &row.app, &row.addr, &row.port, &command); err != nil {
			return streams, err
		}
		if pid == nil {
			streams.idle = append(streams.idle, fmt.Sprintf("%q", slot))
			continue
		}
		who := fmt.Sprintf("%s on slot %q", describeConsumer(*pid, row), slot)
		names, known := streamedPublications(command)
		switch {
		case !known:
			streams.unseen = append(streams.unseen, who)
		case slices.Contains(names, name):
			streams.streaming = append(streams.streaming, who)
		}
	}
	return streams, rows.Err()
}

// streamedPublications reads the publication names from a WAL sender's
// command as pg_stat_activity shows it:
//
//	START_REPLICATION SLOT "sub" LOGICAL 0/0 (proto_version '4', publication_names '"a","B"')
//
// The option's value is a string literal holding a list of identifiers, as
// the subscriber's apply worker writes it. known is false when the command
// is not shown, is not such a command, or was cut by
// track_activity_query_size.
func streamedPublications(command *string) (names []string, known bool) {
	if command == nil {
		return nil, false
	}
	lx := sqllex.New(*command)
	for t := lx.Next(); t.Kind != sqllex.EOF; t = lx.Next() {
		if !t.Is("publication_names") {
			continue
		}
		value := lx.Next()
		if value.Kind != sqllex.String || !strings.HasPrefix(value.Text, "'") || lx.Broken() {
			return nil, false // E'…' (a name with a backslash) or a cut command
		}
		list := strings.ReplaceAll(strings.TrimSuffix(value.Text[1:], "'"), "''", "'")
		return identifierList(list)
	}
	return nil, false
}

// identifierList splits a comma-separated list of identifiers, quoted or
// bare, into the names they mean.
func identifierList(list string) ([]string, bool) {
	var names []string
	lx := sqllex.New(list)
	for {
		name, ok := pgsql.TokenName(lx.Next())
		if !ok {
			return nil, false
		}
		names = append(names, name)
		switch sep := lx.Next(); {
		case sep.Kind == sqllex.EOF && !lx.Broken():
			return names, true
		case sep.Kind != sqllex.Punct || sep.Text != ",":
			return nil, false
		}
	}
}

// publicationInUse is the detail of the refusal to drop or rename
// publication name while a subscription streams it, and of the plan's
// warning that the apply will refuse. doing is "Dropping" or "Renaming".
func (r *publicationResource) publicationInUse(doing, name, database string, streaming []string) string {
	return fmt.Sprintf("%s publication %q in database %q on %s would stop the subscription that streams it: %s. "+
		"Its WAL sender would fail on the next change with \"publication %s does not exist\", and the subscriber would "+
		"retry that change for ever without another row arriving. First drop that subscription, disable it "+
		"(ALTER SUBSCRIPTION ... DISABLE), or take this publication out of it (ALTER SUBSCRIPTION ... SET PUBLICATION ...), "+
		"then apply again.",
		doing, name, database, r.server.describe(), strings.Join(streaming, "; "), pgsql.Ident(name))
}

// warnInUse warns at plan that dropping or renaming publication name (doing:
// "Dropping" or "Renaming") will be refused while a subscription streams it,
// and which active subscriptions' publications the role may not see.
func (r *publicationResource) warnInUse(ctx context.Context, doing, name, database string, diags *diag.Diagnostics) {
	if r.server == nil || r.server.unknown {
		return
	}
	pool, err := r.server.Pool(ctx, database)
	if err != nil {
		return
	}
	streams, err := readPublicationStreams(ctx, pool, database, name)
	if err != nil {
		return
	}
	if len(streams.streaming) > 0 {
		diags.AddWarning("Publication In Use",
			r.publicationInUse(doing, name, database, streams.streaming)+" The apply will refuse it while that subscription streams.")
	}
	if len(streams.unseen) > 0 {
		diags.AddWarning("Publication Subscribers Not Checked",
			fmt.Sprintf("%s publication %q in database %q on %s stops any subscription that streams it, and the provider's role "+
				"may not see which publications these sessions stream: %s. Grant the role pg_read_all_stats so that plan and apply "+
				"can tell, or check the subscriptions that use this publisher before you apply.",
				doing, name, database, r.server.describe(), strings.Join(streams.unseen, "; ")))
	}
	if len(streams.idle) > 0 {
		diags.AddWarning("Publication Subscribers Not Streaming",
			fmt.Sprintf("%s publication %q in database %q on %s goes ahead while no subscription streams it, but these pgoutput slots "+
				"in that database are not streaming now: %s. A subscription that is disabled, or restarting after an error, and "+
				"lists this publication will fail for good when it streams again. Check the subscriptions that use these slots "+
				"(ALTER SUBSCRIPTION ... SET PUBLICATION without it, or drop them) before you apply.",
				doing, name, database, r.server.describe(), strings.Join(streams.idle, ", ")))
	}
}

// refuseInUse adds the refusal to drop or rename publication name while a
// subscription streams it, and reports whether it did. A failure to read
// the sessions refuses nothing: the plan has warned of what it could see.
//
// A subscription found streaming is looked at again for up to syncRiskGrace
// (as a slot's drop that would block commits): one that names this
// publication by literal has no dependency on it, so terraform destroy
// drops the two in parallel, and the same destroy was refused or not by
// Terraform's choice of order.
func (r *publicationResource) refuseInUse(ctx context.Context, q querier, doing, name, database string, diags *diag.Diagnostics) bool {
	streams, err := readPublicationStreams(ctx, q, database, name)
	if err != nil || len(streams.streaming) == 0 {
		return false
	}
	streams, waited := lookAgain(ctx, streams, func(ctx context.Context) (publicationStreams, bool) {
		again, err := readPublicationStreams(ctx, q, database, name)
		return again, err == nil
	}, func(s publicationStreams) bool { return len(s.streaming) == 0 })
	if len(streams.streaming) == 0 {
		return false
	}
	checked := fmt.Sprintf("(Checked again for %s, in case another resource of this run was changing that subscription.) ", waited.Round(time.Second))
	advice := "If a pgreplication_subscription of this configuration names this publication by literal, nothing orders the two: reference " +
		"its name attribute instead (publications = [pgreplication_publication.<name>.name]), so that Terraform changes the subscription " +
		"first for good. If this run also dropped or changed that subscription, running the same command again works."
	if doing == "Renaming" {
		// Terraform updates a resource in place before those that
		// reference it, so no reference orders the subscription's change
		// first, and a literal runs the two at once, each refusing while
		// the other has not happened.
		advice = "A rename cannot be ordered after the subscription's change: Terraform changes a publication in place before the " +
			"subscriptions that reference its name attribute, and one that names it by literal is changed at the same time, so each " +
			"is refused while the other has not happened, and running the same command again is refused again. Rename it in two applies: " +
			"first add a pgreplication_publication under the new name beside this one (same tables) and point the subscription at it, " +
			"and apply; then remove this publication from the configuration and apply again. Or re-point the subscription first " +
			"(ALTER SUBSCRIPTION ... SET PUBLICATION without this publication), then apply the rename."
	}
	diags.AddError("Publication In Use", r.publicationInUse(doing, name, database, streams.streaming)+" The publication is unchanged.\n\n"+checked+advice)
	return true
}
