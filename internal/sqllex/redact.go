package sqllex

import "strings"

// Redact returns a statement as routerlib logs it, with every literal a
// secret could be written into masked: each string constant ('…', E'…',
// U&'…', B'…', $tag$…$tag$) becomes '?' after its prefix, each numeric
// constant ?, and each comment /* ? */ or -- ? (a comment can carry a
// token, or a line an application commented out with its literal). So a
// literal written into the SQL text never reaches a log. Parameters ($1)
// are kept: their values are not part of the text. It reads the statement
// with the classifier's [Lexer], so that comments and quoted identifiers
// (a "it's" or -- it's before a literal) cannot make it see a constant
// where the server sees none, or the reverse.
func Redact(sql string) string {
	var b strings.Builder
	b.Grow(len(sql))
	lx := New(sql)
	copied := 0 // sql[:copied] is in b
	for {
		t := lx.NextWithComments()
		var mask string
		switch t.Kind {
		case EOF:
			b.WriteString(sql[copied:])
			return b.String()
		case String:
			b.WriteString(sql[copied:t.Pos])
			if t.Text[0] != '$' {
				b.WriteString(t.Text[:strings.IndexByte(t.Text, '\'')]) // E, U& or nothing
			}
			mask = "'?'"
		case Number:
			if t.Text[0] == '$' {
				continue // a parameter
			}
			b.WriteString(sql[copied:t.Pos])
			mask = "?"
		case Comment:
			b.WriteString(sql[copied:t.Pos])
			mask = "/* ? */"
			if t.Text[0] == '-' {
				mask = "-- ?" // the line end after it stays
			}
		default:
			continue
		}
		b.WriteString(mask)
		copied = t.Pos + len(t.Text)
	}
}
