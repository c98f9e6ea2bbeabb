package routerlib

import "strings"

// redactSQL is a statement as routerlib logs it: every string constant
// ('…', E'…', $tag$…$tag$) replaced by '?', so that a literal written into
// the SQL text (a token, a password passed to a function) never reaches a
// log. Parameters ($1) are never logged at all.
func redactSQL(sql string) string {
	var b strings.Builder
	b.Grow(len(sql))
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '\'':
			// Skip to the closing quote; '' is an escaped quote, and a
			// backslash escapes the next byte in E'' strings (harmless to
			// honour in standard strings too: it only ends the literal later).
			j := i + 1
			for j < len(sql) {
				if sql[j] == '\\' {
					j += 2
					continue
				}
				if sql[j] == '\'' {
					if j+1 < len(sql) && sql[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			b.WriteString("'?'")
			i = j + 1
		case c == '$':
			tag, ok := dollarTag(sql[i:])
			if !ok {
				b.WriteByte(c)
				i++
				continue
			}
			end := strings.Index(sql[i+len(tag):], tag)
			b.WriteString("'?'")
			if end < 0 {
				return b.String()
			}
			i += len(tag) + end + len(tag)
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// dollarTag returns the $tag$ that opens a dollar-quoted string at the start
// of s ($$ or $name$), or false for a parameter ($1) or anything else.
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		c := s[j]
		switch {
		case c == '$':
			return s[:j+1], true
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80 || (j > 1 && c >= '0' && c <= '9'):
		default:
			return "", false
		}
	}
	return "", false
}
