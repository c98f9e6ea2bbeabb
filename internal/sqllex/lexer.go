// Package sqllex is the module's one SQL lexer: routerlib's classifier
// reads its tokens to decide where a statement may run, [Redact] masks
// string constants before a statement is logged, and the provider checks
// that a row filter from a configuration is one expression. It lives at the
// module root so that both may import it (the provider may import nothing
// of routerlib but routerlib/artifact). It follows
// PostgreSQL's scanner with standard_conforming_strings on (the default
// since 9.1, and what pgx requires): a backslash is an ordinary character
// in '…' and U&'…' and an escape only in E'…'; a doubled quote is a quote everywhere;
// dollar quoting ($$…$$, $tag$…$tag$); -- and nested /* */ comments; and
// "quoted identifiers" with "" inside.
package sqllex

// Kind is the kind of a [Token].
type Kind uint8

// The kinds of token.
const (
	EOF     Kind = iota // the end of the input
	Word                // unquoted identifier or keyword
	Quoted              // "quoted identifier" or U&"…": never a keyword
	String              // any string constant, with its prefix (E'…', U&'…', $$…$$)
	Number              // numeric constant or $n parameter
	Punct               // operator or punctuation, one byte
	Comment             // -- or /* */ comment: only from [Lexer.NextWithComments]
)

// A Token is one lexical element of a statement; whitespace and comments
// between tokens are skipped.
type Token struct {
	Kind Kind
	Text string // the token's bytes in the input, quotes and prefix included
	Pos  int    // where Text starts in the input
}

// Is reports whether t is the unquoted word kw, which is lower case.
func (t Token) Is(kw string) bool { return t.Kind == Word && EqualFold(t.Text, kw) }

// A Lexer splits SQL into tokens. It never fails: malformed input (an
// unterminated string, say) ends the token at the end of input and is
// reported by [Lexer.Broken]. It does not allocate.
type Lexer struct {
	src    string
	pos    int
	broken bool // a string, quoted identifier or comment was not terminated
}

// New returns a Lexer at the start of sql.
func New(sql string) Lexer { return Lexer{src: sql} }

// Broken reports whether a string, quoted identifier or comment read so far
// was not terminated: the server will reject the statement.
func (lx *Lexer) Broken() bool { return lx.broken }

// IsIdentStart reports whether c may start an unquoted identifier.
func IsIdentStart(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c >= 0x80
}

// IsIdentChar reports whether c may continue an unquoted identifier.
func IsIdentChar(c byte) bool {
	return IsIdentStart(c) || '0' <= c && c <= '9' || c == '$'
}

// EqualFold compares s with lower, which is lower-case ASCII, ignoring ASCII
// case. It does not allocate.
func EqualFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// Next returns the next token, or one of kind EOF at the end. Comments
// are skipped.
func (lx *Lexer) Next() Token { return lx.next(false) }

// NextWithComments is [Lexer.Next], but it returns each comment as a
// token of kind Comment: a -- comment without the line end, a /* */
// comment to its last */ (or to the end of input if it is not closed).
func (lx *Lexer) NextWithComments() Token { return lx.next(true) }

func (lx *Lexer) next(comments bool) Token {
	s := lx.src
	for lx.pos < len(s) {
		c := s[lx.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			lx.pos++
		case c == '-' && lx.pos+1 < len(s) && s[lx.pos+1] == '-':
			start := lx.pos
			for lx.pos < len(s) && s[lx.pos] != '\n' && s[lx.pos] != '\r' { // PostgreSQL ends it at either
				lx.pos++
			}
			if comments {
				return Token{Comment, s[start:lx.pos], start}
			}
		case c == '/' && lx.pos+1 < len(s) && s[lx.pos+1] == '*':
			start := lx.pos
			lx.skipBlockComment()
			if comments {
				return Token{Comment, s[start:lx.pos], start}
			}
		case c == '\'':
			start := lx.pos
			lx.skipString(false)
			return Token{String, s[start:lx.pos], start}
		case c == '"':
			start := lx.pos
			lx.skipQuoted('"')
			return Token{Quoted, s[start:lx.pos], start}
		case c == '$':
			start := lx.pos
			if lx.pos+1 < len(s) && '0' <= s[lx.pos+1] && s[lx.pos+1] <= '9' {
				lx.pos++
				for lx.pos < len(s) && '0' <= s[lx.pos] && s[lx.pos] <= '9' {
					lx.pos++
				}
				return Token{Number, s[start:lx.pos], start}
			}
			if lx.skipDollarString() {
				return Token{String, s[start:lx.pos], start}
			}
			lx.pos++
			return Token{Punct, s[start:lx.pos], start}
		case IsIdentStart(c):
			start := lx.pos
			// E'…' and e'…' are strings with backslash escapes; other
			// prefixes (B, X, N, U&) use standard quoting rules.
			if (c == 'e' || c == 'E') && lx.pos+1 < len(s) && s[lx.pos+1] == '\'' {
				lx.pos++
				lx.skipString(true)
				return Token{String, s[start:lx.pos], start}
			}
			// U&'…' and U&"…": Unicode escapes, standard quoting.
			if (c == 'u' || c == 'U') && lx.pos+2 < len(s) && s[lx.pos+1] == '&' && (s[lx.pos+2] == '\'' || s[lx.pos+2] == '"') {
				lx.pos += 2
				if s[lx.pos] == '"' {
					lx.skipQuoted('"')
					return Token{Quoted, s[start:lx.pos], start}
				}
				lx.skipString(false)
				return Token{String, s[start:lx.pos], start}
			}
			for lx.pos < len(s) && IsIdentChar(s[lx.pos]) {
				lx.pos++
			}
			return Token{Word, s[start:lx.pos], start}
		case '0' <= c && c <= '9' || c == '.' && lx.pos+1 < len(s) && '0' <= s[lx.pos+1] && s[lx.pos+1] <= '9':
			start := lx.pos
			for lx.pos < len(s) && (IsIdentChar(s[lx.pos]) || s[lx.pos] == '.') {
				lx.pos++
			}
			return Token{Number, s[start:lx.pos], start}
		default:
			lx.pos++
			return Token{Punct, s[lx.pos-1 : lx.pos], lx.pos - 1}
		}
	}
	return Token{Kind: EOF, Pos: lx.pos}
}

// skipBlockComment skips a /* */ comment; PostgreSQL's nest.
func (lx *Lexer) skipBlockComment() {
	s := lx.src
	depth := 0
	for lx.pos < len(s) {
		switch {
		case s[lx.pos] == '/' && lx.pos+1 < len(s) && s[lx.pos+1] == '*':
			depth++
			lx.pos += 2
		case s[lx.pos] == '*' && lx.pos+1 < len(s) && s[lx.pos+1] == '/':
			depth--
			lx.pos += 2
			if depth == 0 {
				return
			}
		default:
			lx.pos++
		}
	}
	lx.broken = true
}

// skipString skips a '…' constant at lx.pos: a doubled quote is a quote; with
// backslashes (E'…'), a backslash escapes the next byte, so \' is too.
func (lx *Lexer) skipString(backslashes bool) {
	s := lx.src
	lx.pos++ // opening quote
	for lx.pos < len(s) {
		c := s[lx.pos]
		switch {
		case backslashes && c == '\\':
			lx.pos = min(lx.pos+2, len(s))
		case c == '\'':
			if lx.pos+1 < len(s) && s[lx.pos+1] == '\'' {
				lx.pos += 2
				continue
			}
			lx.pos++
			return
		default:
			lx.pos++
		}
	}
	lx.pos = len(s)
	lx.broken = true
}

// skipQuoted skips a quoted identifier; a doubled quote is part of it.
func (lx *Lexer) skipQuoted(q byte) {
	s := lx.src
	lx.pos++
	for lx.pos < len(s) {
		if s[lx.pos] == q {
			if lx.pos+1 < len(s) && s[lx.pos+1] == q {
				lx.pos += 2
				continue
			}
			lx.pos++
			return
		}
		lx.pos++
	}
	lx.broken = true
}

// skipDollarString skips $tag$…$tag$ at lx.pos and reports whether there was
// one.
func (lx *Lexer) skipDollarString() bool {
	s := lx.src
	i := lx.pos + 1
	for i < len(s) && s[i] != '$' {
		if !IsIdentChar(s[i]) || s[i] == '$' {
			return false
		}
		i++
	}
	if i >= len(s) {
		return false
	}
	delim := s[lx.pos : i+1]
	body := i + 1
	for j := body; j+len(delim) <= len(s); j++ {
		if s[j] == '$' && s[j:j+len(delim)] == delim {
			lx.pos = j + len(delim)
			return true
		}
	}
	lx.pos = len(s)
	lx.broken = true
	return true
}
