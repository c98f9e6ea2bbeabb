// Package syncrep reads and writes synchronous_standby_names, so that the
// provider can render the setting from method, num_sync and standby names,
// and read a hand-edited value back into the same three fields.
package syncrep

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
)

// The two ways PostgreSQL chooses synchronous standbys.
const (
	First = "first" // priority: the first num_sync connected standbys of the list
	Any   = "any"   // quorum: any num_sync of the listed standbys
)

// Methods are the valid values of Config.Method.
var Methods = []string{First, Any}

// Config is a parsed synchronous_standby_names.
type Config struct {
	Method   string   // First or Any
	NumSync  int      // how many standbys must confirm each commit
	Standbys []string // application names; "*" matches every standby
}

// String renders the setting: `FIRST 1 ("a", "b")`. Every name is
// double-quoted, so case, spaces, dashes and quotes survive.
func (c Config) String() string {
	return fmt.Sprintf("%s %d (%s)", strings.ToUpper(c.Method), c.NumSync, pgsql.IdentList(c.Standbys))
}

// Parse reads synchronous_standby_names in every form the server accepts:
//
//	FIRST num_sync (name, …)   priority
//	ANY num_sync (name, …)     quorum
//	num_sync (name, …)         priority (before PostgreSQL 10's keywords)
//	name, …                    priority, one synchronous standby
//
// Names are quoted "…" (with "" for a quote) or bare; keywords are
// case-insensitive. An empty value is a zero Config with ok false:
// synchronous replication is off.
func Parse(s string) (c Config, ok bool, err error) {
	toks, err := scan(s)
	if err != nil {
		return Config{}, false, fmt.Errorf("synchronous_standby_names %q: %w", s, err)
	}
	if len(toks) == 0 {
		return Config{}, false, nil
	}
	p := parser{toks: toks}
	c, err = p.config()
	if err != nil {
		return Config{}, false, fmt.Errorf("synchronous_standby_names %q: %w", s, err)
	}
	return c, true, nil
}

type tokenKind int

const (
	tName tokenKind = iota
	tNum
	tAny
	tFirst
	tOpen
	tClose
	tComma
)

type token struct {
	kind tokenKind
	text string
}

// scan follows the server's syncrep_scanner.l.
func scan(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '(':
			toks = append(toks, token{tOpen, "("})
			i++
		case c == ')':
			toks = append(toks, token{tClose, ")"})
			i++
		case c == ',':
			toks = append(toks, token{tComma, ","})
			i++
		case c == '*':
			toks = append(toks, token{tName, "*"})
			i++
		case c == '"':
			var b strings.Builder
			i++
			closed := false
			for i < len(s) {
				if s[i] == '"' {
					if i+1 < len(s) && s[i+1] == '"' {
						b.WriteByte('"')
						i += 2
						continue
					}
					i++
					closed = true
					break
				}
				b.WriteByte(s[i])
				i++
			}
			if !closed {
				return nil, fmt.Errorf("unterminated quoted name")
			}
			toks = append(toks, token{tName, b.String()})
		case c >= '0' && c <= '9':
			j := i
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			toks = append(toks, token{tNum, s[i:j]})
			i = j
		case isIdentStart(c):
			j := i
			for j < len(s) && (isIdentStart(s[j]) || (s[j] >= '0' && s[j] <= '9') || s[j] == '$') {
				j++
			}
			word := s[i:j]
			switch strings.ToLower(word) {
			case "any":
				toks = append(toks, token{tAny, word})
			case "first":
				toks = append(toks, token{tFirst, word})
			default:
				toks = append(toks, token{tName, word})
			}
			i = j
		default:
			return nil, fmt.Errorf("unexpected character %q", c)
		}
	}
	return toks, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek(k int) (token, bool) {
	if p.pos+k < len(p.toks) {
		return p.toks[p.pos+k], true
	}
	return token{}, false
}

func (p *parser) config() (Config, error) {
	t, _ := p.peek(0)
	method := First
	switch t.kind {
	case tAny, tFirst:
		if t.kind == tAny {
			method = Any
		}
		p.pos++
		if n, ok := p.peek(0); !ok || n.kind != tNum {
			return Config{}, fmt.Errorf("%s must be followed by the number of synchronous standbys", strings.ToUpper(method))
		}
		return p.counted(method)
	case tNum:
		if n, ok := p.peek(1); ok && n.kind == tOpen {
			return p.counted(method)
		}
	}
	names, err := p.names()
	if err != nil {
		return Config{}, err
	}
	return Config{Method: First, NumSync: 1, Standbys: names}, p.end()
}

// counted reads `num_sync (name, …)`.
func (p *parser) counted(method string) (Config, error) {
	t := p.toks[p.pos]
	p.pos++
	n, err := strconv.Atoi(t.text)
	if err != nil || n < 1 {
		return Config{}, fmt.Errorf("the number of synchronous standbys must be a positive integer, not %s", t.text)
	}
	if o, ok := p.peek(0); !ok || o.kind != tOpen {
		return Config{}, fmt.Errorf("expected \"(\" after %d", n)
	}
	p.pos++
	names, err := p.names()
	if err != nil {
		return Config{}, err
	}
	if c, ok := p.peek(0); !ok || c.kind != tClose {
		return Config{}, fmt.Errorf("expected \")\" after the standby names")
	}
	p.pos++
	return Config{Method: method, NumSync: n, Standbys: names}, p.end()
}

// names reads `name, …`; a number is a name too, as in the server.
func (p *parser) names() ([]string, error) {
	var names []string
	for {
		t, ok := p.peek(0)
		if !ok || (t.kind != tName && t.kind != tNum) {
			return nil, fmt.Errorf("expected a standby name")
		}
		names = append(names, t.text)
		p.pos++
		if c, ok := p.peek(0); !ok || c.kind != tComma {
			return names, nil
		}
		p.pos++
	}
}

func (p *parser) end() error {
	if t, ok := p.peek(0); ok {
		return fmt.Errorf("unexpected %q after the standby names", t.text)
	}
	return nil
}

// Matches reports whether name, one of Config.Standbys, matches the
// application_name of a WAL sender, as the server decides it
// (SyncRepGetStandbyPriority in syncrep.c): "*" matches every standby, and
// any other name, quoted in the setting or not, matches by pg_strcasecmp,
// which folds ASCII letters only. ("Ä" does not match "ä", nor the Kelvin
// sign "k", as Unicode case folding would have it; and the server has
// replaced the non-ASCII bytes of an application_name anyway.)
func Matches(name, applicationName string) bool {
	if name == "*" {
		return true
	}
	if len(name) != len(applicationName) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if lowerASCII(name[i]) != lowerASCII(applicationName[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Lists reports whether c names a standby of that application_name
// (Matches), "*" included.
func (c Config) Lists(applicationName string) bool {
	for _, name := range c.Standbys {
		if Matches(name, applicationName) {
			return true
		}
	}
	return false
}

// Fold is name as the primary compares it with a standby's
// application_name: SyncRepGetStandbyPriority compares them with
// pg_strcasecmp, which folds A to Z to lower case and nothing else, for a
// name written in double quotes as for a bare one (the quotes keep case,
// spaces and commas in the setting, not in the comparison). Two names with
// the same Fold name the same standbys.
func Fold(name string) string {
	b := []byte(name)
	for i, c := range b {
		b[i] = lowerASCII(c)
	}
	return string(b)
}
