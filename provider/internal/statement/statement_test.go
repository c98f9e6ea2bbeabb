package statement

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-log/tflog"
	"github.com/hashicorp/terraform-plugin-log/tflogtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/conninfo"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
)

// canaries are passwords with every character that changes how a secret is
// spelled in a connection string or an SQL literal.
var canaries = []string{"canary-s3cret", `can'ary\s3"cret`, "canary-line1\ncanary-line2", "can ary s3cret"}

func TestErrorMasksDeclaredSecretsInEverySpelling(t *testing.T) {
	for _, pw := range canaries {
		ctx := WithSecrets(context.Background(), pw)
		conn := conninfo.Params{"host": "db1", "user": "rep", "password": pw}.String()
		sql := "ALTER SYSTEM SET " + pgsql.Ident("primary_conninfo") + " = " + pgsql.Literal(conn)
		serverErr := &pgconn.PgError{Code: "42501", Message: "permission denied for " + conn, Detail: "value " + pw, Hint: "try " + pgsql.Literal(pw)}
		err := Error(ctx, sql, serverErr)
		text := err.Error()
		for _, leak := range append([]string{pw}, strings.Split(pw, "\n")...) {
			if strings.Contains(text, leak) {
				t.Errorf("password %q: error text leaks %q:\n%s", pw, leak, text)
			}
		}
		if !strings.Contains(text, `ALTER SYSTEM SET "primary_conninfo"`) || !strings.Contains(text, "host='db1'") || !strings.Contains(text, "42501") {
			t.Errorf("password %q: error text lost the statement or the server's error:\n%s", pw, text)
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("Error does not wrap the server's error: %v", err)
		}
	}
}

func TestMaskedCatchesUndeclaredPasswordKeywords(t *testing.T) {
	ctx := context.Background()
	for in, leak := range map[string]string{
		"CREATE SUBSCRIPTION s CONNECTION 'host=h password=s3cret dbname=d'":    "s3cret",
		"CREATE SUBSCRIPTION s CONNECTION 'host=h password=''s3 cret'' port=1'": "s3 cret",
		"sslpassword = 's3cret'": "s3cret",
		// A secret keyword given twice: libpq uses the last value, and
		// conninfo's Secrets returns only that one; the first is still a
		// secret (found by sending one to PostgreSQL 17, whose libpq
		// refuses the keyword: the error quoted the first value).
		"CONNECTION 'host=h scram_client_key=s3cret scram_client_key=REDACTED'": "s3cret",
		"oauth_client_secret=s3cret": "s3cret",
		"SCRAM_SERVER_KEY='s3cret'":  "s3cret",
		// A URI's password, percent-encoded: no declared spelling has it.
		"CREATE SUBSCRIPTION s CONNECTION 'postgresql://rep:s3c%40ret@h:5/d?sslmode=disable'": "s3c%40ret",
		"CONNECTION 'postgres://rep:s3c''ret@h/d'":                                            "s3c''ret",
	} {
		got := masked(ctx, in)
		if strings.Contains(got, leak) || !strings.Contains(got, mask) {
			t.Errorf("masked(%q) = %q", in, got)
		}
	}
	for _, keep := range []string{"SELECT 'no secret here'", "CONNECTION 'postgresql://rep@h:5/d'", "CONNECTION 'postgresql://h:5/d?user=a@b'"} {
		if got := masked(ctx, keep); got != keep {
			t.Errorf("Masked changed a statement without secrets: %q", got)
		}
	}
}

func TestTracerLogsStatementWithObjectAndMasksSecrets(t *testing.T) {
	var out bytes.Buffer
	ctx := tflogtest.RootLogger(context.Background(), &out)
	ctx = WithObject(ctx, `standby "standby"`)
	ctx = WithSecrets(ctx, "canary-s3cret")
	sql := "ALTER SYSTEM SET primary_conninfo = " + pgsql.Literal(conninfo.Params{"host": "h", "password": "canary-s3cret"}.String())
	Tracer{}.TraceQueryStart(ctx, nil, pgx.TraceQueryStartData{SQL: sql, Args: []any{"slot_a"}})
	Tracer{}.TraceQueryEnd(ctx, nil, pgx.TraceQueryEndData{Err: errors.New("server said canary-s3cret")})
	// A message logged by any other code with the same context is masked too.
	tflog.Debug(ctx, "the password is canary-s3cret")
	logged := out.String()
	if strings.Contains(logged, "canary") {
		t.Fatalf("the log leaks the secret:\n%s", logged)
	}
	for _, want := range []string{`"pgreplication_object":"standby \"standby\""`, "ALTER SYSTEM SET primary_conninfo", "slot_a", "SQL failed"} {
		if !strings.Contains(logged, want) {
			t.Errorf("the log lacks %s:\n%s", want, logged)
		}
	}
}
