// Package sqllex splits PostgreSQL SQL text into tokens the way the server's
// scanner does: string constants ('…', E'…', $tag$…$tag$), quoted
// identifiers, comments (-- and nested /* */) and single punctuation bytes,
// so that a caller can reason about the structure of SQL that it did not
// write (a row filter from a configuration) without being fooled by a
// parenthesis inside a string or a comment that swallows the rest of a line.
//
// It lives at the module root so that the provider and routerlib can share
// it; it imports nothing but the standard library.
package sqllex

import "fmt"

// Kind is the kind of a token.
type Kind uint8

// The kinds of tokens.
const (
	EOF     Kind = iota
	Word         // unquoted identifier or keyword
	Quoted       // "quoted identifier" (also U&"…"): never a keyword
	String       // string constant of any form
	Number       // numeric constant
	Param        // $1, $2 …
	Comment      // -- to end of line, or /* … */ (nested)
	Punct        // one byte of an operator or punctuation
)

// Token is one token: its kind, its text as written, and its byte offset.
type Token struct {
	Kind Kind
	Text string
	Pos  int
}

// Is reports whether t is the unquoted word kw, ignoring ASCII case; kw is
// lower case.
func (t Token) Is(kw string) bool {
	if t.Kind != Word || len(t.Text) != len(kw) {
		return false
	}
	for i := 0; i < len(kw); i++ {
		c := t.Text[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != kw[i] {
			return false
		}
	}
	return true
}

// Lexer yields the tokens of src, one per Next call.
type Lexer struct {
	src string
	pos int
	err error
}

// New returns a lexer over src.
func New(src string) *Lexer { return &Lexer{src: src} }

// Err is the first malformation met: an unterminated string, quoted
// identifier or block comment. Next returns EOF after it.
func (lx *Lexer) Err() error { return lx.err }

// Tokens returns every token of src, or the malformation that ended it.
func Tokens(src string) ([]Token, error) {
	lx := New(src)
	var out []Token
	for t := lx.Next(); t.Kind != EOF; t = lx.Next() {
		out = append(out, t)
	}
	return out, lx.Err()
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isIdentStart(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c >= 0x80
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || '0' <= c && c <= '9' || c == '$'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// Next returns the next token, or a token of kind EOF at the end of src or
// after a malformation (see Err).
func (lx *Lexer) Next() Token {
	s := lx.src
	for lx.pos < len(s) && isSpace(s[lx.pos]) {
		lx.pos++
	}
	if lx.err != nil || lx.pos >= len(s) {
		return Token{Kind: EOF, Pos: lx.pos}
	}
	start := lx.pos
	tok := func(k Kind) Token { return Token{Kind: k, Text: s[start:lx.pos], Pos: start} }
	c := s[lx.pos]
	at := func(i int) byte {
		if lx.pos+i < len(s) {
			return s[lx.pos+i]
		}
		return 0
	}
	switch {
	case c == '-' && at(1) == '-':
		for lx.pos < len(s) && s[lx.pos] != '\n' && s[lx.pos] != '\r' {
			lx.pos++
		}
		return tok(Comment)
	case c == '/' && at(1) == '*':
		lx.blockComment()
		return tok(Comment)
	case c == '\'':
		lx.quoted('\'', false)
		return tok(String)
	case c == '"':
		lx.quoted('"', false)
		return tok(Quoted)
	case (c == 'e' || c == 'E') && at(1) == '\'':
		lx.pos++
		lx.quoted('\'', true)
		return tok(String)
	case (c == 'b' || c == 'B' || c == 'x' || c == 'X' || c == 'n' || c == 'N') && at(1) == '\'':
		lx.pos++
		lx.quoted('\'', false)
		return tok(String)
	case (c == 'u' || c == 'U') && at(1) == '&' && (at(2) == '\'' || at(2) == '"'):
		q := at(2)
		lx.pos += 2
		lx.quoted(q, false)
		if q == '"' {
			return tok(Quoted)
		}
		return tok(String)
	case c == '$' && isDigit(at(1)):
		lx.pos++
		for lx.pos < len(s) && isDigit(s[lx.pos]) {
			lx.pos++
		}
		return tok(Param)
	case c == '$' && lx.dollarString():
		return tok(String)
	case isIdentStart(c):
		for lx.pos < len(s) && isIdentChar(s[lx.pos]) {
			lx.pos++
		}
		return tok(Word)
	case isDigit(c) || c == '.' && isDigit(at(1)):
		for lx.pos < len(s) && (isIdentChar(s[lx.pos]) || s[lx.pos] == '.') {
			lx.pos++
		}
		return tok(Number)
	default:
		lx.pos++
		return tok(Punct)
	}
}

// blockComment skips a /* */ comment at lx.pos; PostgreSQL's nest.
func (lx *Lexer) blockComment() {
	s, start, depth := lx.src, lx.pos, 0
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
	lx.err = fmt.Errorf("the comment that starts at byte %d is not closed", start+1)
}

// quoted skips a constant or identifier quoted with q at lx.pos; a doubled
// q is part of it, and with backslashes (E'…') so is \q.
func (lx *Lexer) quoted(q byte, backslashes bool) {
	s, start := lx.src, lx.pos
	lx.pos++
	for lx.pos < len(s) {
		switch c := s[lx.pos]; {
		case backslashes && c == '\\':
			lx.pos += 2
		case c == q && lx.pos+1 < len(s) && s[lx.pos+1] == q:
			lx.pos += 2
		case c == q:
			lx.pos++
			return
		default:
			lx.pos++
		}
	}
	lx.pos = len(s)
	what := "string constant"
	if q == '"' {
		what = "quoted identifier"
	}
	lx.err = fmt.Errorf("the %s that starts at byte %d is not closed", what, start+1)
}

// dollarString skips $tag$…$tag$ at lx.pos and reports whether there was
// one (a lone $ is not).
func (lx *Lexer) dollarString() bool {
	s, start := lx.src, lx.pos
	i := lx.pos + 1
	if i < len(s) && s[i] != '$' && (!isIdentStart(s[i])) {
		return false
	}
	for i < len(s) && s[i] != '$' {
		if !isIdentChar(s[i]) {
			return false
		}
		i++
	}
	if i >= len(s) {
		return false
	}
	delim := s[lx.pos : i+1]
	for j := i + 1; j+len(delim) <= len(s); j++ {
		if s[j:j+len(delim)] == delim {
			lx.pos = j + len(delim)
			return true
		}
	}
	lx.pos = len(s)
	lx.err = fmt.Errorf("the dollar-quoted string that starts at byte %d is not closed", start+1)
	return true
}
