package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
)

// A server has one synchronous_standby_names and one standby configuration,
// and Terraform replaces the resource that manages them create before
// destroy whenever a create_before_destroy resource depends on it: the new
// object writes the settings, then the old object's Delete runs. When both
// objects have the same values (-replace, taint), the values cannot tell
// Delete that they are no longer its own, and Terraform tells it nothing
// either (a deposed object's Delete looks like any other; each object's
// private state is its own). So Create writes an owner token, a random
// value of its own, to a custom setting beside the settings (ALTER SYSTEM,
// put in effect by the same reload) and keeps it in the object's private
// state; Delete resets only when the server's token is its own, or when
// the server has none (an object imported from a hand-made configuration,
// or created by a role that may not write the token). ALTER SYSTEM is the
// one store that works on a hot standby, which is read-only, and on a
// primary whose commits wait for a missing standby: it writes no WAL.

// The owner tokens' settings. A custom setting that no library defines
// shows nowhere but in postgresql.auto.conf and pg_file_settings (not in
// pg_settings, nor SHOW ALL), and changes nothing in the server.
const (
	syncOwnerSetting    = "pgreplication.synchronous_replication_owner"
	standbyOwnerSetting = "pgreplication.standby_owner"
)

// ownerKey is the private state key under which an object keeps the token
// its Create wrote.
const ownerKey = "owner"

// ownerClaim is the token one Create wrote to its setting, and the setting
// as it was before, which a failed Create writes back. A zero claim wrote
// nothing. An adopted claim wrote nothing either: its token is the one the
// server held, taken as the object's own (claimOwner).
type ownerClaim struct {
	token   string
	prior   systemSetting
	adopted bool
}

// claimOwner writes a new token to the setting name with ALTER SYSTEM, not
// reloaded: the Create's own reload puts it in effect with the settings
// (call it before writing them). A role that may not write it gets a
// warning naming the grant, and the Create goes on: its objects are then
// not told apart, as before there were tokens. If the server holds a token
// already, the claim adopts it (below); if not, the claim is zero. object
// names the resource in messages. False after an error in diags.
func (s *server) claimOwner(ctx context.Context, pool *pgxpool.Pool, name, object string, diags *diag.Diagnostics) (ownerClaim, bool) {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	token := hex.EncodeToString(b)
	was, err := s.serverOwner(ctx, pool, name)
	if err != nil {
		diags.AddError("Cannot Read "+name, fmt.Sprintf("Reading %s on %s, which tells this %s from the one a create_before_destroy replacement "+
			"destroys, failed; nothing was written: %v", name, s.describe(), object, err))
		return ownerClaim{}, false
	}
	prior := resetSetting(name)
	if was != "" {
		prior = setTo(name, was)
	}
	err = s.alterSetting(ctx, pool, setTo(name, token))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" {
		if was == "" {
			diags.AddWarning("Replacement Not Told Apart", fmt.Sprintf("The provider's role may not write %s on %s, the token that tells this %s "+
				"from the one a create_before_destroy replacement destroys after creating this one. The create goes on without it, so "+
				"such a replacement with unchanged settings resets them when it destroys the old object (a plain destroy resets them either "+
				"way). To keep that from happening, grant it before the next create:\n%v", name, s.describe(), object, err))
			return ownerClaim{}, true
		}
		// The server holds a token this role cannot replace: one an object
		// created by a role that could write it left (it may be in no
		// state any more: terraform state rm, a copied postgresql.auto.conf,
		// a release that failed). Left to it, this object's destroy would
		// take it for another object's and reset nothing, leaving commits
		// to wait for standbys that are gone. So the object takes it as its
		// own, as an import does (adoptOwner). That is safe with any other
		// object that holds it, a create_before_destroy replacement's old
		// object included: only one object can have been created last, and
		// this Create is about to write the settings, so they are this
		// object's whatever token they carry; the token's earlier holder,
		// whose settings are overwritten, still resets them when it is
		// destroyed, as it would had this Create written no token (the
		// warning says so), so it loses nothing it had. What the token can
		// no longer do here is tell the two apart, and only the grant
		// gives that back.
		diags.AddWarning("Replacement Not Told Apart", fmt.Sprintf("The provider's role may not write %s on %s, the token that tells this %s "+
			"from the one a create_before_destroy replacement destroys after creating this one. The server holds a token already, "+
			"which an object created by a role that could write it left: this %s takes it as its own, so that its destroy resets the "+
			"settings. Another object that holds the same token is not told apart from this one: a create_before_destroy replacement "+
			"with unchanged settings resets them when it destroys the old object (a plain destroy resets them either way). To keep that "+
			"from happening, grant it before the next create:\n%v", name, s.describe(), object, object, err))
		return ownerClaim{token: was, adopted: true}, true
	}
	if err != nil {
		diags.AddError("Cannot Write "+name, fmt.Sprintf("Writing %s on %s, the token that tells this %s from the one a "+
			"create_before_destroy replacement destroys, failed; nothing was written: %v", name, s.describe(), object, err))
		return ownerClaim{}, false
	}
	return ownerClaim{token: token, prior: prior}, true
}

// ownerSettleTimeout bounds how long Create waits for its token to be in
// effect (settle).
const ownerSettleTimeout = 30 * time.Second

// settle waits until the token c wrote is in effect, after the Create's
// reload. The Create's own wait for its settings does not cover it: a
// replacement with unchanged values finds them in effect at once, before
// the server has taken the reload, and the old object's Delete, which
// follows, then read the old token and reset the settings (PostgreSQL 15,
// TestRed4CreateBeforeDestroySingletons).
func (s *server) settle(ctx context.Context, pool *pgxpool.Pool, c ownerClaim) error {
	if c.token == "" || c.adopted { // an adopted token was in effect already
		return nil
	}
	var now string
	in, err := pollUntil(ctx, ownerSettleTimeout, func(ctx context.Context) (bool, error) {
		var err error
		now, err = s.serverOwner(ctx, pool, c.prior.Name)
		return err == nil && now == c.token, err
	})
	if err != nil {
		// The settings are in effect (the Create waited for them), and
		// the token written: the Create keeps the object, tainted
		// (keepTainted), and says so. No final period: the Create's
		// message ends the sentence.
		return settingsLeftError{fmt.Errorf("%w\n\nThe settings this create wrote are in effect on the server, and its token is written "+
			"there, though it could not be read back. Once the server answers, apply again: the object is kept in the state, tainted, "+
			"and the apply replaces it. To undo them without Terraform instead, a superuser runs ALTER SYSTEM RESET for them and "+
			"SELECT pg_reload_conf() there, and terraform state rm removes the object", err)}
	}
	if !in {
		return fmt.Errorf("after %s, %s still holds %q, not the token this create wrote: the server did not take the reload "+
			"(it ignores one while a configuration file has an error; its log says which). The settings themselves had the "+
			"planned values already, so they are as planned; fix the cause and apply again", ownerSettleTimeout, c.prior.Name, now)
	}
	return nil
}

// release writes back the token c replaced, for a Create that failed after
// claiming and left none of its settings written (a failure before it
// wrote them, or one whose settings were written back): the object it was
// for is not kept in the state, so the token must not stay (an object that
// held the settings before would take it for another's). It says what is
// left when it fails, for the Create's error.
func (s *server) release(ctx context.Context, pool *pgxpool.Pool, c ownerClaim) string {
	if c.token == "" || c.adopted {
		return ""
	}
	err := s.alterSetting(ctx, pool, c.prior)
	if err == nil {
		// Reload always: any reload since the claim put the token in
		// effect (the write-back of a failed apply's settings reloads,
		// as may another resource of the run or a user), and this
		// session cannot tell: a backend takes a reload some time after
		// the postmaster, so the token not yet in effect here proved
		// nothing, and the postmaster kept it, for every new session
		// (TestAccSynchronousReplication_ownerTokenLimitedRole failed so
		// in CI at 053a914). It applies nothing a successful Create's
		// reload would not have.
		err = s.reloadConf(ctx, pool)
	}
	if err != nil {
		undo := "ALTER SYSTEM RESET " + pgsql.Ident(c.prior.Name)
		if c.prior.Value != nil {
			undo = "ALTER SYSTEM SET " + pgsql.Ident(c.prior.Name) + " = " + pgsql.Literal(*c.prior.Value)
		}
		return fmt.Sprintf("\n\n%s, the token written by this create, could not be written back (%v); none of its settings is left, so "+
			"the object is not kept in the state. The token harms no later create, which writes its own; but an object that holds the "+
			"settings from before this create (the old object of a create_before_destroy replacement, which Terraform keeps when the "+
			"new one fails) takes them for another's while it is there, and its destroy would reset nothing. A superuser puts it back "+
			"with %s and SELECT pg_reload_conf() on %s.", c.prior.Name, err, undo, s.describe())
	}
	return ""
}

// halfCreatedText says, for a resource's description, what keepTainted
// does; more names the resource's own such failures, destroyed what the
// object's destroy does then.
func halfCreatedText(more, destroyed string) string {
	return "A create that fails after writing the settings (a server that stops answering while create waits for them or for its " +
		"token, a failed write-back of what it wrote" + more + ") keeps the object in the state, tainted, with its token, as Terraform " +
		"keeps any half-created object: the next apply replaces it and `terraform destroy` destroys it, " + destroyed + ", in effect or " +
		"still waiting in `postgresql.auto.conf` for a reload the server has not taken (a configuration file with an error): the destroy " +
		"finds its token there as a superuser or a role granted `EXECUTE` on `pg_read_file(text)` (`SELECT` on `pg_file_settings` serves " +
		"while no configuration file has an error). A create " +
		"that fails before writing the settings, or that writes back what it wrote, keeps nothing."
}

// keepTainted keeps in state, for a Create that failed after writing its
// settings (they stay on the server: settingsLeft, or a settle that
// failed), the object planned, with the token c wrote in private: a Create
// that returns an object with its error has Terraform save it tainted, as
// any half-created object, so the next apply replaces it and terraform
// destroy destroys it, and the token tells its Delete that the settings
// are its own. Releasing the token instead and keeping nothing, as before,
// left the settings in effect with no object to undo them. plan is the
// Create's model, its id set; what it could not read back (unknown) is
// kept null, since a state holds no unknown, and the next refresh reads
// it. undo says, for the warning, what the object's destroy does.
func keepTainted(ctx context.Context, state *tfsdk.State, private privateState, plan any, c ownerClaim, s *server, object, undo string, diags *diag.Diagnostics) {
	diags.Append(state.Set(ctx, plan)...)
	known, err := tftypes.Transform(state.Raw, func(_ *tftypes.AttributePath, v tftypes.Value) (tftypes.Value, error) {
		if !v.IsKnown() {
			return tftypes.NewValue(v.Type(), nil), nil
		}
		return v, nil
	})
	if err != nil {
		diags.AddError("Cannot Keep "+object, "The create failed after writing its settings on "+s.describe()+
			", and the object could not be kept in the state: "+err.Error())
		return
	}
	state.Raw = known
	diags.Append(c.keep(ctx, private)...)
	diags.AddWarning("Half-Created "+object+" Kept, Tainted", fmt.Sprintf("The create of this %s failed after writing its settings on %s, "+
		"which stay written there. So the object is kept in the state, tainted, as Terraform keeps any half-created object: the next "+
		"apply replaces it, and terraform destroy destroys it; %s.", object, s.describe(), undo))
}

// keep records c's token in the object's private state.
func (c ownerClaim) keep(ctx context.Context, private privateState) diag.Diagnostics {
	if c.token == "" {
		return nil
	}
	return setOwnToken(ctx, private, c.token)
}

func setOwnToken(ctx context.Context, private privateState, token string) diag.Diagnostics {
	b, _ := json.Marshal(token)
	return private.SetKey(ctx, ownerKey, b)
}

// ownToken is the token the object's Create wrote (or its import found):
// "" for none.
func ownToken(ctx context.Context, private privateState) string {
	if private == nil {
		return ""
	}
	b, d := private.GetKey(ctx, ownerKey)
	var token string
	if d.HasError() || len(b) == 0 || json.Unmarshal(b, &token) != nil {
		return ""
	}
	return token
}

// serverOwner is the token in effect on the server: "" for none.
func (s *server) serverOwner(ctx context.Context, pool *pgxpool.Pool, name string) (string, error) {
	const sql = `SELECT coalesce(current_setting($1, true), '')`
	var token string
	if err := pool.QueryRow(ctx, sql, name).Scan(&token); err != nil {
		return "", s.queryError(ctx, sql, err)
	}
	return token, nil
}

// ownership is what a Delete learns of the owner token on the server.
type ownership struct {
	// token is the token that the reset resets with the settings: the
	// server's, "" for none.
	token string
	// elsewhere: the token is another object's, and the settings that
	// object's, not to be reset.
	elsewhere bool
	// written: the token in effect is not the object's, but
	// postgresql.auto.conf holds the object's own. Its Create wrote the
	// settings and the token there, and the server has not taken them (it
	// ignored the reload, a configuration file having an error, or has not
	// had one since): the half-created object kept tainted (keepTainted).
	// The settings are its own, and wait there for the next reload,
	// whatever the values in effect, which are another's or none.
	written bool
}

// ownedElsewhere tells, for Delete, whose the settings of name's token are
// (ownership). The token in effect is the server's answer; when it is not
// the object's, postgresql.auto.conf is read too (fileOwner), since a
// Create that failed before its token took effect kept its object, and
// its Delete must reset what it wrote. A server that cannot be asked is
// not another's: the reset that follows reports the failure.
func (s *server) ownedElsewhere(ctx context.Context, pool *pgxpool.Pool, name string, private privateState) ownership {
	token, err := s.serverOwner(ctx, pool, name)
	if err != nil {
		return ownership{}
	}
	own := ownToken(ctx, private)
	if own == "" || token == own {
		return ownership{token: token, elsewhere: token != "" && token != own}
	}
	if file, ok := s.fileOwner(ctx, pool, name); ok && file == own {
		return ownership{token: own, written: true}
	}
	return ownership{token: token, elsewhere: token != ""}
}

// fileOwner is the token postgresql.auto.conf holds for name ("" for
// none), and whether it could be read: the file itself (pg_read_file, a
// superuser's or a role granted it), which a configuration file with an
// error does not hide, else pg_file_settings when no file has one (a role
// granted it: readFileSettingsPrivilege). A role with neither reads only
// the token in effect (serverOwner). The grants are asked first, so that
// the server logs no refusal.
func (s *server) fileOwner(ctx context.Context, pool *pgxpool.Pool, name string) (string, bool) {
	const grantsSQL = `SELECT has_function_privilege('pg_catalog.pg_read_file(text)', 'EXECUTE'),
  has_table_privilege('pg_catalog.pg_file_settings', 'SELECT')`
	var readFile, fileSettings bool
	if err := pool.QueryRow(ctx, grantsSQL).Scan(&readFile, &fileSettings); err != nil {
		return "", false
	}
	if readFile {
		var text string
		if err := pool.QueryRow(ctx, `SELECT pg_read_file('postgresql.auto.conf')`).Scan(&text); err == nil {
			return autoConfValue(text, name), true
		}
	}
	if !fileSettings {
		return "", false
	}
	const sql = `SELECT coalesce((SELECT setting FROM pg_file_settings WHERE name = $1 AND sourcefile LIKE '%/postgresql.auto.conf'
  ORDER BY seqno DESC LIMIT 1), ''), NOT EXISTS (SELECT FROM pg_file_settings WHERE error IS NOT NULL)`
	var token string
	var whole bool
	if err := pool.QueryRow(ctx, sql, name).Scan(&token, &whole); err != nil || !whole {
		return "", false
	}
	return token, true
}

// autoConfValue is name's value in text, a postgresql.auto.conf as ALTER
// SYSTEM writes it (name = 'value', one a line; the last line of a name
// wins, as in the server): "" for none. ALTER SYSTEM doubles a quote or a
// backslash inside the quotes; they are undone, so that a value reads as
// pg_file_settings reads it.
func autoConfValue(text, name string) string {
	value := ""
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != name {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = strings.NewReplacer(`''`, `'`, `\\`, `\`).Replace(v[1 : len(v)-1])
		}
		value = v
	}
	return value
}

// resetOwned is the reset of a Delete (ALTER SYSTEM RESET): the settings
// names, then, once they all are, the owner token setting owner when the
// server holds a token (token, the object's own; "" for none), and one
// reload puts both in effect. The settings are
// independent, so one that fails does not keep the others from being
// reset, and the error reports every failure, one per line (errors.Join);
// the token is then left, as the object stays in the state. The token is
// cleanup: the settings, which hold commits or streaming, are reset
// already, and a token left behind does no harm, since the next Create
// there takes it as its own when it cannot write its own (claimOwner). So
// a failure to reset it, a role without the grant on the token above all,
// is a warning that says how to remove it, not an error that would keep
// the object in the state and fail every later destroy. object and
// settings name the resource and its settings in the warning.
func (s *server) resetOwned(ctx context.Context, pool *pgxpool.Pool, names []string, owner, token, object, settings string, diags *diag.Diagnostics) error {
	var errs []error
	reset := 0
	for _, name := range names {
		if err := s.alterSetting(ctx, pool, resetSetting(name)); err != nil {
			errs = append(errs, err)
		} else {
			reset++
		}
	}
	var tokenErr error
	if len(errs) == 0 && token != "" {
		if tokenErr = s.alterSetting(ctx, pool, resetSetting(owner)); tokenErr == nil {
			reset++
		}
	}
	if reset > 0 {
		if err := s.reloadConf(ctx, pool); err != nil {
			return errors.Join(append(errs, err)...)
		}
	}
	if tokenErr != nil {
		diags.AddWarning("Owner Token Left in Place", fmt.Sprintf("The destroy of this %s reset %s on %s, but not %s, the token it "+
			"held: %v\n\nThe token does no harm: the next %s created there takes it as its own, or writes its own. To remove it, "+
			"a superuser runs ALTER SYSTEM RESET %s and SELECT pg_reload_conf() on %s.", object, settings, s.describe(), owner, tokenErr, object, owner, s.describe()))
	}
	return errors.Join(errs...)
}

// adoptOwner keeps, for an import, the token the server has: the imported
// object is the one that wrote it (its state was removed), and its destroy
// resets the settings. An import that could not ask fails: an object
// imported without the server's token would take it for another object's
// and its destroy would reset nothing. object names the resource.
func (s *server) adoptOwner(ctx context.Context, pool *pgxpool.Pool, name, object string, private privateState) diag.Diagnostics {
	token, err := s.serverOwner(ctx, pool, name)
	if err != nil {
		var diags diag.Diagnostics
		diags.AddError("Cannot Read "+name, fmt.Sprintf("Reading %s on %s, the token the imported %s takes as its own so that its "+
			"destroy resets the settings, failed; nothing was imported. Import again once the server answers: %v", name, s.describe(), object, err))
		return diags
	}
	if token == "" {
		return nil
	}
	return setOwnToken(ctx, private, token)
}
