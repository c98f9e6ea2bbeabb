package sqllex

import "strings"

// Redact returns a statement as routerlib logs it: every string constant
// ('…', E'…', U&'…', B'…', $tag$…$tag$) replaced by '?' after its prefix,
// so that a literal written into the SQL text (a token, a password passed to
// a function) never reaches a log. Parameters ($1) are never logged at all.
// It reads the statement with the classifier's [Lexer], so that comments and
// quoted identifiers (a "it's" or -- it's before a literal) cannot make it
// see a constant where the server sees none, or the reverse.
func Redact(sql string) string {
	var b strings.Builder
	b.Grow(len(sql))
	lx := New(sql)
	copied := 0 // sql[:copied] is in b
	for {
		t := lx.Next()
		if t.Kind == EOF {
			break
		}
		if t.Kind != String {
			continue
		}
		b.WriteString(sql[copied:t.Pos])
		if t.Text[0] != '$' {
			b.WriteString(t.Text[:strings.IndexByte(t.Text, '\'')]) // E, U& or nothing
		}
		b.WriteString("'?'")
		copied = t.Pos + len(t.Text)
	}
	b.WriteString(sql[copied:])
	return b.String()
}
