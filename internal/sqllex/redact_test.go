package sqllex

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT set_token('s3cret')":                    "SELECT set_token('?')",
		"SELECT f('it''s s3cret', $1)":                  "SELECT f('?', $1)",
		`SELECT f(E'a\'s3cret')`:                        "SELECT f(E'?')",
		"SELECT f($$s3cret$$)":                          "SELECT f('?')",
		"SELECT f($tag$s3cret $$ still$tag$) FROM t":    "SELECT f('?') FROM t",
		"SELECT $1, $2 FROM t WHERE a = 'x' AND b = $3": "SELECT $1, $2 FROM t WHERE a = '?' AND b = $3",
		"SELECT 'unterminated s3cret":                   "SELECT '?'",
		"SELECT $q$unterminated s3cret":                 "SELECT '?'",
		`SELECT "quoted ident" FROM t`:                  `SELECT "quoted ident" FROM t`,
		// The traps of issue 9: a backslash ends nothing in a standard
		// string, and quotes in comments and identifiers open no string.
		`SELECT f('C:\', 's3cret')`:               `SELECT f('?', '?')`,
		"SELECT 1 -- it's\n, 's3cret'":            "SELECT ? -- ?\n, '?'",
		"SELECT 1 -- it's\r, 's3cret'":            "SELECT ? -- ?\r, '?'",
		"SELECT /* it's /* nested */ */ 's3cret'": "SELECT /* ? */ '?'",
		`SELECT "it's", 's3cret'`:                 `SELECT "it's", '?'`,
		`SELECT "a""it's", 's3cret'`:              `SELECT "a""it's", '?'`,
		`SELECT U&'\0061s3cret', u&"it's"`:        `SELECT U&'?', u&"it's"`,
		`SELECT B'1010', X'ff', N's3cret'`:        `SELECT B'?', X'?', N'?'`,
		`SELECT E'\\', 's3cret'`:                  `SELECT E'?', '?'`,
		// Numeric constants: a PIN, a card number, an account ID written
		// into the text; parameters and names with digits stay.
		"SELECT * FROM t1 WHERE pin = 4711 AND card = 4111111111111111 AND id = $12": "SELECT * FROM t1 WHERE pin = ? AND card = ? AND id = $12",
		"SELECT 3.14, .5, 6.02e23, 1e-9, 0x1F, 0o17, 0b101, 1_000_000":               "SELECT ?, ?, ?, ?-?, ?, ?, ?, ?",
		"SELECT -42::int8, a.b1 FROM s2.t3 LIMIT 10":                                 "SELECT -?::int8, a.b1 FROM s2.t3 LIMIT ?",
		// Comments: a token in one, a line commented out with its literal.
		"SELECT 1 /* token=s3cret */":                         "SELECT ? /* ? */",
		"SELECT f() -- password s3cret":                       "SELECT f() -- ?",
		"SELECT f(/* nested /* s3cret */ still s3cret */ $1)": "SELECT f(/* ? */ $1)",
		"SELECT 1 /* unterminated s3cret":                     "SELECT ? /* ? */",
		"/*s3cret*/SELECT/*s3cret*/1--s3cret\nFROM t":         "/* ? */SELECT/* ? */?-- ?\nFROM t",
		"SELECT a - -1, a-- s3cret\n":                         "SELECT a - -?, a-- ?\n",
		"SELECT a/ *b, 'it''s' /* s3cret */ , $1":             "SELECT a/ *b, '?' /* ? */ , $1",
	} {
		got := Redact(in)
		if got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(got, "s3cret") {
			t.Errorf("Redact(%q) leaks the literal: %q", in, got)
		}
	}
}

// canary is what every generated string constant holds. Its \x01 bytes are
// taken out of everything else FuzzRedact generates, so the canary can only
// reach the redacted text from inside a constant.
const canary = "\x01s3cret\x01"

// FuzzRedact builds SQL from the fuzzer's input, piece by piece, each piece
// lexed by PostgreSQL as the generator says (identifiers, quoted
// identifiers, operators, parameters, numbers, and comments and string
// constants of every kind holding the canary), and checks that Redact
// masks exactly the constants, numbers and comments: the canary never
// survives, and nothing else changes.
func FuzzRedact(f *testing.F) {
	f.Add([]byte{0, 4, 2, 4}, `C:\ it's`)
	f.Add([]byte{1, 4, 3, 5, 6, 7}, `it's "x" $$ \' /*`)
	f.Add([]byte{12, 14, 16, 22, 26}, "a$b$c\r\n'")
	f.Fuzz(func(t *testing.T, plan []byte, text string) {
		sql, want := generateSQL(plan, text)
		got := Redact(sql)
		if strings.Contains(got, canary) {
			t.Fatalf("Redact(%q) leaks the canary: %q", sql, got)
		}
		if got != want {
			t.Fatalf("Redact(%q)\n got %q\nwant %q", sql, got, want)
		}
		// The classifier's view of the same text, and Redact's: tokens in
		// order, each where it says it is, and the same but for comments.
		var plain []Token
		for _, comments := range []bool{false, true} {
			lx, end, i := New(sql), 0, 0
			for {
				var tok Token
				if comments {
					tok = lx.NextWithComments()
				} else {
					tok = lx.Next()
				}
				if tok.Pos < end || tok.Pos+len(tok.Text) > len(sql) || sql[tok.Pos:tok.Pos+len(tok.Text)] != tok.Text {
					t.Fatalf("token %+v of %q is out of place (previous ended at %d)", tok, sql, end)
				}
				if !comments {
					plain = append(plain, tok)
				} else if tok.Kind != Comment {
					if i >= len(plain) || plain[i] != tok {
						t.Fatalf("with comments, token %d of %q is %+v, without %+v", i, sql, tok, plain[min(i, len(plain)-1)])
					}
					i++
				}
				if tok.Kind == EOF {
					break
				}
				end = tok.Pos + len(tok.Text)
			}
		}
	})
}

// generateSQL returns SQL made of the pieces plan chooses (each byte: the
// kind of piece, and how many bytes of text it takes) and the text
// redactSQL must turn it into.
func generateSQL(plan []byte, text string) (sql, want string) {
	text = strings.ReplaceAll(text, "\x01", "")
	at := 0
	next := func(n int) string { // the next n bytes of text, wrapping around
		if text == "" {
			return ""
		}
		var b strings.Builder
		for range n {
			b.WriteByte(text[at%len(text)])
			at++
		}
		return b.String()
	}
	without := func(s, cut string) string {
		return strings.Map(func(r rune) rune {
			if strings.ContainsRune(cut, r) {
				return -1
			}
			return r
		}, s)
	}
	var sb, wb strings.Builder
	piece := func(s, redacted string) {
		sb.WriteString(s)
		sb.WriteByte(' ')
		wb.WriteString(redacted)
		wb.WriteByte(' ')
	}
	same := func(s string) { piece(s, s) }
	for _, p := range plan {
		chunk := next(int(p / 12))
		secret := chunk + canary + next(int(p/24))
		switch p % 12 {
		case 0:
			same("w" + strings.Map(func(r rune) rune {
				if r < 0x80 && !IsIdentChar(byte(r)) || r == '$' {
					return -1
				}
				return r
			}, chunk))
		case 1:
			same(`"` + strings.ReplaceAll(chunk, `"`, `""`) + `"`)
		case 2:
			end := "\n"
			if p%24 == 2 {
				end = "\r" // PostgreSQL ends a -- comment at either
			}
			piece("--"+without(secret, "\n\r")+end, "-- ?"+end)
		case 3:
			c := without(secret, "/*")
			piece("/*"+c+"/*"+c+"*/"+c+"*/", "/* ? */")
		case 4:
			piece("'"+strings.ReplaceAll(secret, "'", "''")+"'", "'?'")
		case 5:
			q := `\'`
			if p%24 == 5 {
				q = "''"
			}
			e := strings.ReplaceAll(secret, `\`, `\\`)
			piece("E'"+strings.ReplaceAll(e, "'", q)+"'", "E'?'")
		case 6:
			tag := strings.TrimLeft(strings.Map(func(r rune) rune {
				if r == '$' || r < 0x80 && !IsIdentChar(byte(r)) {
					return -1
				}
				return r
			}, chunk), "0123456789")
			delim := "$" + tag + "$"
			body := secret
			for {
				// The body must not close early, not even with the
				// delimiter's first bytes.
				i := strings.Index(body+delim, delim)
				if i == len(body) {
					break
				}
				body = body[:i] + body[i+1:]
			}
			piece(delim+body+delim, "'?'")
		case 7:
			piece("U&'"+strings.ReplaceAll(secret, "'", "''")+"'", "U&'?'")
		case 8:
			same(`U&"` + strings.ReplaceAll(chunk, `"`, `""`) + `"`)
		case 9:
			switch k := int(p/12) % 10; k {
			case 1, 2:
				piece([]string{"", "42", "3.5e7"}[k], "?")
			default:
				same([]string{"$1", "", "", "(", ")", ",", ";", "::", "+", "||"}[k])
			}
		case 10:
			piece("B'"+strings.ReplaceAll(secret, "'", "''")+"'", "B'?'")
		case 11:
			same([]string{"SELECT", "FROM", "e", "E", "U", "u&", "x", "$", "$a", "a$b"}[int(p/12)%10])
		}
	}
	return sb.String(), wb.String()
}
