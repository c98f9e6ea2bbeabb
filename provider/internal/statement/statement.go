// Package statement is the one place where the provider's SQL statements meet
// a log or an error message. Every connection the provider opens traces its
// statements through [Tracer], which logs each one at debug level (tflog) with
// the object it belongs to; every error that quotes a failed statement is
// built by [Error] (never by formatting the driver's error, which leaves out
// the server's detail and hint and masks nothing), and [MaskedError] is the
// same text without a statement, for a failure that is not one statement's
// (a connection, a read whose message names what was read). All of them mask
// secrets the same way: the values a handler declared with [WithSecrets], in
// every spelling a statement can carry them (raw, quoted in a connection
// string, quoted again in an SQL literal), and, as a safety net, whatever
// follows a secret keyword ("password=", "scram_client_key=", …).
package statement

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-log/tflog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/conninfo"
)

// mask is what stands in a message for a secret.
const mask = "REDACTED"

// objectField is the tflog field that names the object a statement belongs to.
const objectField = "pgreplication_object"

// passwordKeyword finds a secret in connection-string form (password=…,
// sslpassword=…, scram_client_key=…: every conninfo.SecretKeywords) that
// nobody declared; maskPasswordValues masks its value. It also catches the
// earlier values of a secret keyword given twice, which libpq ignores and
// conninfo.Params.Secrets does not return (it keeps the last, as libpq).
var passwordKeyword = regexp.MustCompile(`(?i)(?:` + strings.Join(conninfo.SecretKeywords, "|") + `)\s*=\s*`)

// uriPassword finds the password of a connection URI
// (postgresql://user:password@host…), which a URI writes percent-encoded, so
// that no declared spelling of the secret matches it; maskPasswordValues
// masks it. As libpq reads it, a URI has credentials when an "@" comes
// before any "/", and the password ends at that "@".
var uriPassword = regexp.MustCompile(`(postgres(?:ql)?://[^@/:\s]*:)[^@/\s]*@`)

type scopeKey struct{}

// scope is what WithSecrets puts in a context.
type scope struct {
	secrets []string // every spelling of every declared secret, longest first
}

func scopeOf(ctx context.Context) scope {
	s, _ := ctx.Value(scopeKey{}).(scope)
	return s
}

// WithObject names the object that the statements run with ctx belong to,
// such as `publication "books" in database "app"`: each statement's log line
// carries it in the field pgreplication_object.
func WithObject(ctx context.Context, object string) context.Context {
	return tflog.SetField(ctx, objectField, object)
}

// WithSecrets declares values that must never be shown: statements run with
// the returned context, and errors built by Error from it, carry them masked,
// and tflog masks them in every message and field logged with it. Empty
// values are ignored.
func WithSecrets(ctx context.Context, secrets ...string) context.Context {
	var forms []string
	for _, secret := range secrets {
		forms = append(forms, spellings(secret)...)
	}
	if len(forms) == 0 {
		return ctx
	}
	s := scopeOf(ctx)
	s.secrets = append(append([]string(nil), s.secrets...), forms...)
	// Longer spellings first, so a form that contains another is masked whole.
	slices.SortStableFunc(s.secrets, func(a, b string) int { return len(b) - len(a) })
	ctx = context.WithValue(ctx, scopeKey{}, s)
	ctx = tflog.MaskMessageStrings(ctx, forms...)
	ctx = tflog.MaskAllFieldValuesStrings(ctx, forms...)
	return ctx
}

// spellings are the ways secret can appear in text the provider writes or
// the server echoes: as is, escaped for a quoted connection-string value,
// each of those escaped for an SQL literal, and each line of a secret that
// has several (a server message may quote one line).
func spellings(secret string) []string {
	if secret == "" {
		return nil
	}
	conn := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(secret)
	sql := strings.NewReplacer(`\`, `\\`, `'`, `''`)
	forms := []string{secret, conn, sql.Replace(secret), sql.Replace(conn)}
	if strings.ContainsAny(secret, "\r\n") {
		for _, line := range strings.FieldsFunc(secret, func(r rune) bool { return r == '\n' || r == '\r' }) {
			if len(strings.TrimSpace(line)) >= 4 {
				forms = append(forms, line)
			}
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, f := range forms {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// masked is text with every secret declared in ctx, and every password=
// value, replaced by mask.
func masked(ctx context.Context, text string) string {
	for _, secret := range scopeOf(ctx).secrets {
		text = strings.ReplaceAll(text, secret, mask)
	}
	return maskPasswordValues(text)
}

// maskPasswordValues masks the value after each password= keyword: a
// connection string's value, quoted ('…') or not, also when the string is
// itself inside an SQL literal (”…”). A value whose end it cannot find is
// masked to the end of the line: better too much than a secret. It masks
// the password of a URI too (uriPassword).
func maskPasswordValues(text string) string {
	text = uriPassword.ReplaceAllString(text, "${1}"+mask+"@")
	var b strings.Builder
	last := 0
	for _, m := range passwordKeyword.FindAllStringIndex(text, -1) {
		if m[0] < last {
			continue
		}
		start := m[1]
		end := valueEnd(text, start)
		if strings.Trim(text[start:end], "'") == mask {
			continue
		}
		b.WriteString(text[last:start])
		b.WriteString(mask)
		last = end
	}
	b.WriteString(text[last:])
	return b.String()
}

// valueEnd is where the connection-string value starting at text[start] ends.
func valueEnd(text string, start int) int {
	rest := text[start:]
	quote := ""
	switch {
	case strings.HasPrefix(rest, "''"):
		quote = "''"
	case strings.HasPrefix(rest, "'"):
		quote = "'"
	default:
		if i := strings.IndexAny(rest, " \t\r\n'"); i >= 0 {
			return start + i
		}
		return len(text)
	}
	for i := len(quote); i+len(quote) <= len(rest); i++ {
		switch {
		case rest[i] == '\\':
			i++ // an escaped character, whatever it is
		case rest[i] == '\n':
			return start + i
		case strings.HasPrefix(rest[i:], quote):
			after := i + len(quote)
			if quote == "'" || after == len(rest) || strings.ContainsRune(" \t\r\n')", rune(rest[after])) {
				return start + after
			}
			i += len(quote) - 1 // a doubled quote inside the value
		}
	}
	if i := strings.IndexByte(rest, '\n'); i >= 0 {
		return start + i
	}
	return len(text)
}

// Error is the error to report when sql failed with err: the statement and
// the server's message, detail and hint, secrets masked. It wraps err, so
// callers still test the SQLSTATE with errors.As; its text is the only one
// to show.
func Error(ctx context.Context, sql string, err error) error {
	return &statementError{text: masked(ctx, oneLine(sql)+": "+errorText(err)), err: err}
}

// errorText is err's message with the server's detail and hint, which
// PgError.Error leaves out. It masks nothing: pass it through masked, or
// use Error.
func errorText(err error) string {
	text := err.Error()
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if pgErr.Detail != "" {
			text += "\nDETAIL: " + pgErr.Detail
		}
		if pgErr.Hint != "" {
			text += "\nHINT: " + pgErr.Hint
		}
	}
	return text
}

// MaskedError is err's text (with the server's detail and hint) with the
// secrets of ctx masked, for a failure that is not one statement's (a
// connection that could not be made).
func MaskedError(ctx context.Context, err error) string {
	return masked(ctx, errorText(err))
}

// Masked is MaskedError's text as an error that wraps err, so that callers
// still find its cause with errors.As.
func Masked(ctx context.Context, err error) error {
	return &statementError{text: MaskedError(ctx, err), err: err}
}

type statementError struct {
	text string
	err  error
}

func (e *statementError) Error() string { return e.text }
func (e *statementError) Unwrap() error { return e.err }

// oneLine folds a multi-line statement onto one line for a message.
func oneLine(sql string) string {
	return strings.Join(strings.Fields(sql), " ")
}

// Tracer is the pgx query tracer of every connection the provider opens: it
// logs each statement at debug level before it runs, and its error after,
// secrets masked. Arguments are logged too ($1, $2, …): the provider passes
// names there, never secrets.
//
// It also bounds each statement on the client side: a server's own
// statement_timeout cannot fire when the server has stopped answering
// altogether (a frozen host, a dead network path), and nothing else would
// end the wait.
type Tracer struct {
	// Bound is how long one statement may take before the provider gives up
	// on the server and closes the connection; 0 means no bound.
	Bound time.Duration
}

var _ pgx.QueryTracer = Tracer{}

type cancelKey struct{}

func (t Tracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	fields := map[string]any{
		"sql":    masked(ctx, oneLine(data.SQL)),
		"server": server(conn),
	}
	if len(data.Args) > 0 {
		fields["args"] = masked(ctx, fmt.Sprintf("%v", data.Args))
	}
	tflog.Debug(ctx, "pgreplication: running SQL", fields)
	if t.Bound <= 0 {
		return ctx
	}
	// pgx hands TraceQueryEnd the context returned here, which releases it.
	ctx, cancel := context.WithTimeout(ctx, t.Bound)
	return context.WithValue(ctx, cancelKey{}, cancel)
}

func (Tracer) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	if data.Err != nil {
		tflog.Debug(ctx, "pgreplication: SQL failed", map[string]any{
			"server": server(conn),
			"error":  MaskedError(ctx, data.Err),
		})
	}
	if cancel, ok := ctx.Value(cancelKey{}).(context.CancelFunc); ok {
		cancel()
	}
}

// server names a connection's server and database: host, port, database,
// never credentials.
func server(conn *pgx.Conn) string {
	if conn == nil {
		return ""
	}
	c := conn.Config()
	return fmt.Sprintf("%s:%d/%s", c.Host, c.Port, c.Database)
}
