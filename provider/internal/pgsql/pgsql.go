// Package pgsql is the one place where the provider turns names and values into
// SQL text. Every identifier and every literal that reaches a statement goes
// through Ident, QualifiedIdent or Literal, so a publication called
// `sales."eu"/2024 Ü` is as safe as one called `sales`.
package pgsql

import (
	"fmt"
	"strconv"
	"strings"
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

// IdentList quotes each name and joins them with ", ".
func IdentList(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = Ident(n)
	}
	return strings.Join(quoted, ", ")
}

// Literal quotes a string constant. It relies on standard_conforming_strings
// (on by default since PostgreSQL 9.1, and checked by CheckStandardStrings):
// inside '…' only the quote itself needs doubling. A value with a backslash is
// written as an escape string so it means the same either way.
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
