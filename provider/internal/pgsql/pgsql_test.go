package pgsql

import (
	"strings"
	"testing"
)

func TestIdent(t *testing.T) {
	for in, want := range map[string]string{
		"sales":           `"sales"`,
		"Sales":           `"Sales"`,
		`a"b`:             `"a""b"`,
		"with space.dot/": `"with space.dot/"`,
		"Überblick":       `"Überblick"`,
	} {
		if got := Ident(in); got != want {
			t.Errorf("Ident(%q) = %s, want %s", in, got, want)
		}
	}
	if got := QualifiedIdent("my schema", `t"1`); got != `"my schema"."t""1"` {
		t.Errorf("QualifiedIdent = %s", got)
	}
	if got := IdentList([]string{"a", "B"}); got != `"a", "B"` {
		t.Errorf("IdentList = %s", got)
	}
}

func TestLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"plain":      `'plain'`,
		"it's":       `'it''s'`,
		`back\slash`: `E'back\\slash'`,
		`a\'b`:       `E'a\\''b'`,
	} {
		if got := Literal(in); got != want {
			t.Errorf("Literal(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestValidateName(t *testing.T) {
	if err := ValidateName("ok name"); err != nil {
		t.Errorf("unexpected error: %v", err)
	}
	for _, bad := range []string{"", "a\x00b", string(make([]byte, 64))} {
		if ValidateName(bad) == nil {
			t.Errorf("ValidateName(%q) accepted a bad name", bad)
		}
	}
}

func TestLSN(t *testing.T) {
	l, err := ParseLSN("16/B374D848")
	if err != nil {
		t.Fatal(err)
	}
	if uint64(l) != 0x16B374D848 {
		t.Errorf("ParseLSN = %x", uint64(l))
	}
	if l.String() != "16/B374D848" {
		t.Errorf("String = %s", l)
	}
	for _, bad := range []string{"", "16", "x/1", "1/zz"} {
		if _, err := ParseLSN(bad); err == nil {
			t.Errorf("ParseLSN(%q) accepted", bad)
		}
	}
}

func TestQuoteIdent(t *testing.T) {
	for in, want := range map[string]string{
		"books":      `books`,
		"_t1":        `_t1`,
		"Books":      `"Books"`,
		"1t":         `"1t"`,
		"a$b":        `"a$b"`,
		"odd.table":  `"odd.table"`,
		`a"b`:        `"a""b"`,
		"überblick":  `"überblick"`,
		"order":      `"order"`,
		"json_table": `"json_table"`,
		"name":       `name`, // an unreserved keyword
		"":           `""`,
	} {
		if got := QuoteIdent(in); got != want {
			t.Errorf("QuoteIdent(%q) = %s, want %s", in, got, want)
		}
	}
}

// A name written by QuoteQualifiedName parses back to itself, whatever it
// holds; and the ways SQL allows of writing a name parse to the same one.
func TestParseQualifiedName(t *testing.T) {
	for _, n := range [][2]string{
		{"public", "books"},
		{"My Schema", "Odd.Table"},
		{`Sales.EU "x"/ß`, `Order Lines/"Ö"`},
		{"public", "order"},
		{"s", `"`},
		{"s", "a.b.c"},
	} {
		key := QuoteQualifiedName(n[0], n[1])
		schema, name, err := ParseQualifiedName(key)
		if err != nil || schema != n[0] || name != n[1] {
			t.Errorf("ParseQualifiedName(%s) = %q, %q, %v; want %q, %q", key, schema, name, err, n[0], n[1])
		}
	}
	for in, want := range map[string][2]string{
		`Public.Books`:       {"public", "books"},
		`public . "Books"`:   {"public", "Books"},
		`"public"."books"`:   {"public", "books"},
		`PUBLIC."Ü".x`:       {},
		`Überblick.t`:        {"Überblick", "t"},
		`s."a""b"`:           {"s", `a"b`},
		`s.$x`:               {},
		`books`:              {},
		`public.`:            {},
		`.books`:             {},
		`public."books`:      {},
		`public.U&"b\0061"`:  {},
		`public.books; drop`: {},
		`public.""`:          {},
		``:                   {},
	} {
		schema, name, err := ParseQualifiedName(in)
		if want == ([2]string{}) {
			if err == nil {
				t.Errorf("ParseQualifiedName(%s) = %q, %q; want an error", in, schema, name)
			}
			continue
		}
		if err != nil || schema != want[0] || name != want[1] {
			t.Errorf("ParseQualifiedName(%s) = %q, %q, %v; want %q, %q", in, schema, name, err, want[0], want[1])
		}
	}
	if _, _, err := ParseQualifiedName("books"); err == nil || !strings.Contains(err.Error(), "as public.books would") {
		t.Errorf("an unqualified name: %v, want an error that shows public.books", err)
	}
}
