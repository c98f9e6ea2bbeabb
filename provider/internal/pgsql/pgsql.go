// Package pgsql is the one place where the provider turns names and values into
// SQL text. Every identifier and every literal that reaches a statement goes
// through Ident, QualifiedIdent or Literal, so a publication called
// `sales."eu"/2024 Ü` is as safe as one called `sales`.
package pgsql

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/sqllex"
)

// Ident quotes an identifier for PostgreSQL: it is always double-quoted, with
// embedded double quotes doubled, so its case and any punctuation survive.
func Ident(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// QualifiedIdent quotes schema.name.
func QualifiedIdent(schema, name string) string {
	return Ident(schema) + "." + Ident(name)
}

// QuotedKeyword reports whether word (lower case) is a keyword that
// quote_ident quotes: one that, written bare, is never a column's name.
func QuotedKeyword(word string) bool { return quotedKeywords[word] }

// QuoteIdent writes an identifier as PostgreSQL's quote_ident does: bare
// when it is a lower-case word (a-z, 0-9 and _, not starting with a digit)
// that is not a keyword needing quotes, double-quoted otherwise. It is how a
// person writes a name, for keys and messages that people read and type; SQL
// the provider runs uses Ident, which quotes always.
func QuoteIdent(name string) string {
	if name == "" || quotedKeywords[name] || '0' <= name[0] && name[0] <= '9' {
		return Ident(name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return Ident(name)
		}
	}
	return name
}

// QuoteQualifiedName writes schema.name with QuoteIdent, as
// format('%I.%I', schema, name) would: "public.books", "\"My Schema\".\"Odd.Table\"".
func QuoteQualifiedName(schema, name string) string {
	return QuoteIdent(schema) + "." + QuoteIdent(name)
}

// ParseQualifiedName reads a schema-qualified name written as in SQL
// (schema.name, either part bare or double-quoted) into its two names.
// Like PostgreSQL, it folds a bare part to lower case (ASCII letters only,
// as in a UTF-8 database) and takes a quoted one as written, with "" for a
// quote. It reads the text with the SQL lexer, so a dot or a quote inside a
// quoted part is part of the name.
func ParseQualifiedName(s string) (schema, name string, err error) {
	lx := sqllex.New(s)
	var parts []string
	for t := lx.Next(); t.Kind != sqllex.EOF; t = lx.Next() {
		if len(parts) > 0 {
			if t.Kind != sqllex.Punct || t.Text != "." {
				return "", "", fmt.Errorf("%q after %s is not a dot: a qualified name is schema.name", t.Text, QuoteIdent(parts[len(parts)-1]))
			}
			if t = lx.Next(); t.Kind == sqllex.EOF {
				return "", "", errors.New("it ends with a dot")
			}
		}
		name, ok := TokenName(t)
		switch {
		case ok:
			parts = append(parts, name)
		case t.Kind == sqllex.Quoted:
			return "", "", fmt.Errorf("%s uses Unicode escapes (U&\"…\"): write the name itself between double quotes", t.Text)
		default:
			return "", "", fmt.Errorf("%q is not a name: a part that is not a lower-case word goes between double quotes", t.Text)
		}
	}
	switch {
	case lx.Broken():
		return "", "", errors.New("a double quote in it is not closed")
	case len(parts) == 0:
		return "", "", errors.New("it is empty")
	case len(parts) == 1:
		return "", "", fmt.Errorf("it names no schema, as %s would", QuoteQualifiedName("public", parts[0]))
	case len(parts) > 2:
		return "", "", fmt.Errorf("it has %d parts: a qualified name is schema.name, and a part with a dot in it goes between double quotes", len(parts))
	}
	for _, n := range parts {
		if err := ValidateName(n); err != nil {
			return "", "", fmt.Errorf("%s: %w", Ident(n), err)
		}
	}
	return parts[0], parts[1], nil
}

// TokenName is the name a bare word or a double-quoted identifier means:
// the word folded to lower case as PostgreSQL folds it, the quoted one as
// written. ok is false for any other token, U&"…" included.
func TokenName(t sqllex.Token) (name string, ok bool) {
	switch {
	case t.Kind == sqllex.Word:
		return foldIdent(t.Text), true
	case t.Kind == sqllex.Quoted && t.Text[0] == '"':
		return strings.ReplaceAll(strings.TrimSuffix(t.Text[1:], `"`), `""`, `"`), true
	}
	return "", false
}

// foldIdent lower-cases the ASCII letters of a bare identifier, as
// PostgreSQL does in a database whose encoding is multi-byte.
func foldIdent(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// IdentList quotes each name and joins them with ", ".
func IdentList(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = Ident(n)
	}
	return strings.Join(quoted, ", ")
}

// Literal quotes a string constant. It relies on standard_conforming_strings
// (on by default since PostgreSQL 9.1, and set on by every session the
// provider opens): inside '…' only the quote itself needs doubling. A value
// with a backslash is written as an escape string so it means the same either
// way.
func Literal(value string) string {
	if strings.Contains(value, `\`) {
		return `E'` + strings.ReplaceAll(strings.ReplaceAll(value, `\`, `\\`), `'`, `''`) + `'`
	}
	return `'` + strings.ReplaceAll(value, `'`, `''`) + `'`
}

// ValidateName reports why a name cannot be a PostgreSQL identifier: empty,
// containing a NUL byte, or longer than NAMEDATALEN-1 (63) bytes, which
// PostgreSQL would silently truncate — and then Read would never find the
// object it created.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("the name is empty")
	case strings.ContainsRune(name, 0):
		return fmt.Errorf("the name contains a NUL byte")
	case len(name) > 63:
		return fmt.Errorf("the name is %d bytes long; PostgreSQL truncates identifiers to 63 bytes", len(name))
	}
	return nil
}

// LSN is a WAL location, as PostgreSQL prints it ("16/B374D848").
type LSN uint64

// ParseLSN parses PostgreSQL's textual LSN form.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("invalid LSN %q: want the form XXX/XXX", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid LSN %q: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid LSN %q: %w", s, err)
	}
	return LSN(h<<32 | l), nil
}

// String prints the LSN the way PostgreSQL does.
func (l LSN) String() string {
	return fmt.Sprintf("%X/%X", uint64(l)>>32, uint64(l)&0xFFFFFFFF)
}
