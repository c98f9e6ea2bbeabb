package sqllex_test

import (
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/sqllex"
)

func TestTokens(t *testing.T) {
	type tok struct {
		kind sqllex.Kind
		text string
	}
	for _, tc := range []struct {
		src  string
		want []tok
	}{
		{"a>1", []tok{{sqllex.Word, "a"}, {sqllex.Punct, ">"}, {sqllex.Number, "1"}}},
		{`"x"")" = ')'`, []tok{{sqllex.Quoted, `"x"")"`}, {sqllex.Punct, "="}, {sqllex.String, "')'"}}},
		{`E'\')' U&"d\0061" U&'x' X'1F' $1`, []tok{{sqllex.String, `E'\')'`}, {sqllex.Quoted, `U&"d\0061"`}, {sqllex.String, "U&'x'"}, {sqllex.String, "X'1F'"}, {sqllex.Param, "$1"}}},
		{"$$ ) $$ $t$ $$ $t$", []tok{{sqllex.String, "$$ ) $$"}, {sqllex.String, "$t$ $$ $t$"}}},
		{"a -- ) b\n/* x /* y */ ) */c", []tok{{sqllex.Word, "a"}, {sqllex.Comment, "-- ) b"}, {sqllex.Comment, "/* x /* y */ ) */"}, {sqllex.Word, "c"}}},
		{"x$y .5 1.5e3", []tok{{sqllex.Word, "x$y"}, {sqllex.Number, ".5"}, {sqllex.Number, "1.5e3"}}},
	} {
		got, err := sqllex.Tokens(tc.src)
		if err != nil {
			t.Errorf("Tokens(%q): %v", tc.src, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("Tokens(%q) = %v, want %v", tc.src, got, tc.want)
			continue
		}
		for i, g := range got {
			if g.Kind != tc.want[i].kind || g.Text != tc.want[i].text {
				t.Errorf("Tokens(%q)[%d] = %v %q, want %v %q", tc.src, i, g.Kind, g.Text, tc.want[i].kind, tc.want[i].text)
			}
		}
	}
	for _, bad := range []string{"'open", `"open`, "/* open", "$t$ open", `E'\'`} {
		if _, err := sqllex.Tokens(bad); err == nil {
			t.Errorf("Tokens(%q) = nil error, want one: it is not closed", bad)
		}
	}
	if tk := (sqllex.Token{Kind: sqllex.Word, Text: "SeLeCt"}); !tk.Is("select") {
		t.Error(`Is("select") is false for SeLeCt`)
	}
	if tk := (sqllex.Token{Kind: sqllex.Quoted, Text: `"select"`}); tk.Is("select") {
		t.Error(`a quoted identifier is a keyword`)
	}
}

// FuzzTokens: the lexer never panics, and the tokens and the spaces
// between them are the whole input.
func FuzzTokens(f *testing.F) {
	for _, s := range []string{"a > 1", "'x''y'", "$a$ $a$", "/* /* */ */", "E'\\''", `U&"x"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		toks, err := sqllex.Tokens(src)
		if err != nil {
			return
		}
		end := 0
		for _, tk := range toks {
			if tk.Pos < end || src[tk.Pos:tk.Pos+len(tk.Text)] != tk.Text {
				t.Fatalf("token %q at %d does not follow the previous one (ends at %d)", tk.Text, tk.Pos, end)
			}
			end = tk.Pos + len(tk.Text)
		}
	})
}
