package pgsql

import "testing"

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
