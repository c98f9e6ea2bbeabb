package routerlib

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// class says where a statement may run.
type class uint8

// The classes are bits: classMulti and classTx qualify the others.
const (
	classRead  class = 1 << iota // safe on a hot standby
	classWrite                   // must run on the primary
	classMulti                   // several statements: cannot be prepared
	classTx                      // a transaction the caller begins (always with classWrite)
	classDML                     // one INSERT, UPDATE, DELETE, MERGE, or writing SELECT or WITH (always with classWrite): it runs the same inside BEGIN … COMMIT

	classUnknown class = 0 // an empty statement
)

// classify reports whether sql may run on a hot standby. It lexes the SQL the
// way PostgreSQL does (comments, nested block comments, standard and E”
// strings, dollar quoting, quoted identifiers) so that words inside strings
// or comments never change the answer. Anything it does not recognise as a
// read is a write: the primary can run every statement, a standby cannot.
func classify(sql string) class {
	lx := lexer{src: sql}
	statements := 0
	result := classRead
	for {
		c, more := classifyStatement(&lx)
		if c != classUnknown {
			statements++
			if c&classWrite != 0 {
				result = c
			}
		}
		if !more {
			break
		}
	}
	switch {
	case lx.broken:
		// Unterminated string, identifier or comment: the server will
		// reject it; the primary can say so as well as any node.
		return classWrite
	case statements == 0:
		// An empty string or only comments: let the primary answer it.
		return classWrite
	case statements > 1:
		return result&^classDML | classMulti
	}
	return result
}

// classifyStatement classifies the statement starting at lx and consumes it
// up to and including its terminating semicolon. It returns classUnknown for
// an empty statement, and more=false at the end of input.
func classifyStatement(lx *lexer) (c class, more bool) {
	first := lx.next()
	// Parenthesised queries such as "(SELECT 1) UNION (SELECT 2)".
	for first.kind == tokPunct && first.text == "(" {
		first = lx.next()
	}
	switch {
	case first.kind == tokEOF:
		return classUnknown, false
	case first.kind == tokPunct && first.text == ";":
		return classUnknown, true
	case first.kind != tokWord:
		return classWrite, skipStatement(lx)
	case first.is("explain"):
		// EXPLAIN without ANALYZE does not execute the statement, but sending
		// EXPLAIN of a write to the primary costs nothing and keeps the rule
		// simple: EXPLAIN goes where the statement it explains would go.
		return scanStatement(lx, true)
	case first.is("select"), first.is("with"):
		c, more := scanStatement(lx, true)
		if c == classWrite {
			c |= classDML
		}
		return c, more
	case first.is("values"), first.is("table"):
		return scanStatement(lx, false)
	case first.is("insert"), first.is("update"), first.is("delete"), first.is("merge"):
		return classWrite | classDML, skipStatement(lx)
	case first.is("show"):
		return classRead, skipStatement(lx)
	default:
		return classWrite, skipStatement(lx)
	}
}

// scanStatement reads the rest of a query and reports a write when it finds
// a data-modifying keyword (a CTE such as "WITH d AS (DELETE …) SELECT"), a
// locking clause (FOR UPDATE/SHARE), SELECT … INTO, or a call to a function
// that writes or cannot run during recovery.
func scanStatement(lx *lexer, intoCreatesTable bool) (class, bool) {
	c := classRead
	var prev token
	for {
		t := lx.next()
		switch t.kind {
		case tokEOF:
			return c, false
		case tokPunct:
			if t.text == ";" {
				return c, true
			}
			if t.text == "(" && prev.kind == tokWord && writingFunction(prev.text) {
				c = classWrite
			}
		case tokWord:
			switch {
			case t.is("insert"), t.is("update"), t.is("delete"), t.is("merge"), t.is("truncate"), t.is("copy"):
				c = classWrite
			case t.is("share") && prev.kind == tokWord && (prev.is("for") || prev.is("key")):
				c = classWrite // FOR SHARE, FOR KEY SHARE (FOR [NO KEY] UPDATE is caught by "update")
			case t.is("into") && intoCreatesTable:
				c = classWrite // SELECT … INTO new_table
			}
		}
		prev = t
	}
}

// skipStatement consumes tokens up to and including the next semicolon.
func skipStatement(lx *lexer) bool {
	for {
		t := lx.next()
		if t.kind == tokEOF {
			return false
		}
		if t.kind == tokPunct && t.text == ";" {
			return true
		}
	}
}

// writingFunctions are functions that write, take locks only the primary can
// grant, or fail during recovery. Names ending in "*" match as prefixes.
var writingFunctions = []string{
	"nextval", "setval",
	"pg_advisory_*", "pg_try_advisory_*",
	"txid_current", "pg_current_xact_id",
	"pg_current_wal_*", "pg_switch_wal", "pg_create_restore_point",
	"pg_logical_emit_message", "pg_notify",
	"lo_*", "dblink_exec",
	"pg_create_logical_replication_slot", "pg_drop_replication_slot",
}

// writingFunction reports whether the function called name is in
// writingFunctions, ignoring ASCII case.
func writingFunction(name string) bool {
	for _, f := range writingFunctions {
		if f[len(f)-1] == '*' {
			p := f[:len(f)-1]
			if len(name) >= len(p) && equalFold(name[:len(p)], p) {
				return true
			}
		} else if equalFold(name, f) {
			return true
		}
	}
	return false
}

// equalFold compares s with lower, which is lower-case ASCII, ignoring ASCII
// case. It does not allocate.
func equalFold(s, lower string) bool {
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

type tokKind uint8

const (
	tokEOF    tokKind = iota
	tokWord           // unquoted identifier or keyword
	tokQuoted         // "quoted identifier": never a keyword
	tokString         // any string constant
	tokNumber         // numeric constant or $n parameter
	tokPunct          // operator or punctuation, one byte
)

type token struct {
	kind tokKind
	text string
}

// is reports whether t is the unquoted word kw (lower case).
func (t token) is(kw string) bool { return t.kind == tokWord && equalFold(t.text, kw) }

// lexer splits SQL into tokens. It never fails: malformed input (an
// unterminated string, say) ends the token at the end of input.
type lexer struct {
	src    string
	pos    int
	broken bool // a string, quoted identifier or comment was not terminated
}

func isIdentStart(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c >= 0x80
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || '0' <= c && c <= '9' || c == '$'
}

func (lx *lexer) next() token {
	s := lx.src
	for lx.pos < len(s) {
		c := s[lx.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			lx.pos++
		case c == '-' && lx.pos+1 < len(s) && s[lx.pos+1] == '-':
			for lx.pos < len(s) && s[lx.pos] != '\n' {
				lx.pos++
			}
		case c == '/' && lx.pos+1 < len(s) && s[lx.pos+1] == '*':
			lx.skipBlockComment()
		case c == '\'':
			start := lx.pos
			lx.skipString(false)
			return token{tokString, s[start:lx.pos]}
		case c == '"':
			start := lx.pos
			lx.skipQuoted('"')
			return token{tokQuoted, s[start:lx.pos]}
		case c == '$':
			start := lx.pos
			if lx.pos+1 < len(s) && '0' <= s[lx.pos+1] && s[lx.pos+1] <= '9' {
				lx.pos++
				for lx.pos < len(s) && '0' <= s[lx.pos] && s[lx.pos] <= '9' {
					lx.pos++
				}
				return token{tokNumber, s[start:lx.pos]}
			}
			if lx.skipDollarString() {
				return token{tokString, s[start:lx.pos]}
			}
			lx.pos++
			return token{tokPunct, s[start:lx.pos]}
		case isIdentStart(c):
			start := lx.pos
			// E'…' and e'…' are strings with backslash escapes; other
			// prefixes (B, X, N, U&) use standard quoting rules.
			if (c == 'e' || c == 'E') && lx.pos+1 < len(s) && s[lx.pos+1] == '\'' {
				lx.pos++
				lx.skipString(true)
				return token{tokString, s[start:lx.pos]}
			}
			for lx.pos < len(s) && isIdentChar(s[lx.pos]) {
				lx.pos++
			}
			return token{tokWord, s[start:lx.pos]}
		case '0' <= c && c <= '9' || c == '.' && lx.pos+1 < len(s) && '0' <= s[lx.pos+1] && s[lx.pos+1] <= '9':
			start := lx.pos
			for lx.pos < len(s) && (isIdentChar(s[lx.pos]) || s[lx.pos] == '.') {
				lx.pos++
			}
			return token{tokNumber, s[start:lx.pos]}
		default:
			lx.pos++
			return token{tokPunct, s[lx.pos-1 : lx.pos]}
		}
	}
	return token{kind: tokEOF}
}

// skipBlockComment skips a /* */ comment; PostgreSQL's nest.
func (lx *lexer) skipBlockComment() {
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

// skipString skips a '…' constant at lx.pos (” is a quote; with
// backslashes, \' is too).
func (lx *lexer) skipString(backslashes bool) {
	s := lx.src
	lx.pos++ // opening quote
	for lx.pos < len(s) {
		c := s[lx.pos]
		switch {
		case backslashes && c == '\\':
			lx.pos += 2
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
func (lx *lexer) skipQuoted(q byte) {
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
func (lx *lexer) skipDollarString() bool {
	s := lx.src
	i := lx.pos + 1
	for i < len(s) && s[i] != '$' {
		if !isIdentChar(s[i]) || s[i] == '$' {
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

// classCache remembers the class of each SQL string. It is sharded, and
// each shard is an immutable map behind an atomic pointer: lookups take no
// lock and do not allocate; an insert (once per new SQL string) copies its
// shard. It is bounded: a full shard forgets an arbitrary entry, so an
// application that builds SQL strings dynamically cannot grow it without
// limit.
type classCache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

const (
	cacheShards   = 64
	cacheShardCap = 128 // 8,192 statements in all
)

type cacheShard struct {
	m  atomic.Pointer[map[string]class] // never modified once stored
	mu sync.Mutex                       // serialises writers of m
}

func newClassCache() *classCache {
	c := &classCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		m := map[string]class{}
		c.shards[i].m.Store(&m)
	}
	return c
}

func (c *classCache) shard(sql string) *cacheShard {
	return &c.shards[maphash.String(c.seed, sql)%cacheShards]
}

// get returns the class of sql, classifying it on first sight.
func (c *classCache) get(sql string) class {
	if cl, ok := (*c.shard(sql).m.Load())[sql]; ok {
		return cl
	}
	cl := classify(sql)
	c.set(sql, cl)
	return cl
}

// set records the class of sql, for example a "read" that a standby rejected
// as a write.
func (c *classCache) set(sql string, cl class) {
	sh := c.shard(sql)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old := *sh.m.Load()
	m := make(map[string]class, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	if _, ok := m[sql]; !ok && len(m) >= cacheShardCap {
		for k := range m {
			delete(m, k)
			break
		}
	}
	m[sql] = cl
	sh.m.Store(&m)
}
