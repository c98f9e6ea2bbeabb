package routerlib

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/sqllex"
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

// classify reports whether sql may run on a hot standby. It reads the SQL
// with routerlib's one lexer (internal/sqllex), which scans the way
// PostgreSQL does, so that words inside strings or comments never change
// the answer. Anything it does not recognise as a
// read is a write: the primary can run every statement, a standby cannot.
func classify(sql string) class {
	lx := sqllex.New(sql)
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
	case lx.Broken():
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
func classifyStatement(lx *sqllex.Lexer) (c class, more bool) {
	first := lx.Next()
	// Parenthesised queries such as "(SELECT 1) UNION (SELECT 2)".
	for first.Kind == sqllex.Punct && first.Text == "(" {
		first = lx.Next()
	}
	switch {
	case first.Kind == sqllex.EOF:
		return classUnknown, false
	case first.Kind == sqllex.Punct && first.Text == ";":
		return classUnknown, true
	case first.Kind != sqllex.Word:
		return classWrite, skipStatement(lx)
	case first.Is("explain"):
		// EXPLAIN without ANALYZE does not execute the statement, but sending
		// EXPLAIN of a write to the primary costs nothing and keeps the rule
		// simple: EXPLAIN goes where the statement it explains would go.
		return scanStatement(lx, true)
	case first.Is("select"), first.Is("with"):
		c, more := scanStatement(lx, true)
		if c == classWrite {
			c |= classDML
		}
		return c, more
	case first.Is("values"), first.Is("table"):
		return scanStatement(lx, false)
	case first.Is("insert"), first.Is("update"), first.Is("delete"), first.Is("merge"):
		return classWrite | classDML, skipStatement(lx)
	case first.Is("show"):
		return classRead, skipStatement(lx)
	default:
		return classWrite, skipStatement(lx)
	}
}

// scanStatement reads the rest of a query and reports a write when it finds
// a data-modifying keyword (a CTE such as "WITH d AS (DELETE …) SELECT"), a
// locking clause (FOR UPDATE/SHARE), SELECT … INTO, or a call to a
// primary-only function (functions.go).
func scanStatement(lx *sqllex.Lexer, intoCreatesTable bool) (class, bool) {
	c := classRead
	var prev sqllex.Token
	for {
		t := lx.Next()
		switch t.Kind {
		case sqllex.EOF:
			return c, false
		case sqllex.Punct:
			if t.Text == ";" {
				return c, true
			}
			if t.Text == "(" && (prev.Kind == sqllex.Word || prev.Kind == sqllex.Quoted) && primaryFunction(prev) {
				c = classWrite
			}
		case sqllex.Word:
			switch {
			case t.Is("insert"), t.Is("update"), t.Is("delete"), t.Is("merge"), t.Is("truncate"), t.Is("copy"):
				c = classWrite
			case t.Is("share") && prev.Kind == sqllex.Word && (prev.Is("for") || prev.Is("key")):
				c = classWrite // FOR SHARE, FOR KEY SHARE (FOR [NO KEY] UPDATE is caught by "update")
			case t.Is("into") && intoCreatesTable:
				c = classWrite // SELECT … INTO new_table
			}
		}
		prev = t
	}
}

// skipStatement consumes tokens up to and including the next semicolon.
func skipStatement(lx *sqllex.Lexer) bool {
	for {
		t := lx.Next()
		if t.Kind == sqllex.EOF {
			return false
		}
		if t.Kind == sqllex.Punct && t.Text == ";" {
			return true
		}
	}
}

// classCache remembers the class of each SQL string. It is sharded, and
// each shard is an immutable map behind an atomic pointer: lookups take no
// lock and do not allocate; an insert (once per new SQL string) copies its
// shard. It is bounded: a full shard forgets an arbitrary entry, so an
// application that builds SQL strings dynamically cannot grow it without
// limit.
//
// The maps are keyed by the SQL's hash (sqlHash), computed once per call:
// it picks the shard, finds the entry, and is passed on to the capture
// path, whose prepared statements are keyed by it too (captureConn.write),
// so that a captured write hashes its SQL once, not once per map. Two
// strings of one hash share an entry: each lookup compares the SQL.
type classCache struct {
	shards [cacheShards]cacheShard
}

const (
	cacheShards   = 64
	cacheShardCap = 128 // 8,192 statements in all
)

type cacheShard struct {
	m  atomic.Pointer[map[uint64]classEntry] // never modified once stored
	mu sync.Mutex                            // serialises writers of m
}

// A classEntry is the class of sql.
type classEntry struct {
	sql string
	cl  class
}

func newClassCache() *classCache {
	c := &classCache{}
	for i := range c.shards {
		m := map[uint64]classEntry{}
		c.shards[i].m.Store(&m)
	}
	return c
}

// sqlSeed seeds sqlHash, the one hash of a SQL string that routerlib
// computes per call.
var sqlSeed = maphash.MakeSeed()

// sqlHash is the key of sql in the class cache and in the capture path's
// prepared statements.
func sqlHash(sql string) uint64 { return maphash.String(sqlSeed, sql) }

func (c *classCache) shard(h uint64) *cacheShard {
	return &c.shards[h%cacheShards]
}

// get returns the class of sql, classifying it on first sight.
func (c *classCache) get(sql string) class {
	cl, _ := c.lookup(sql)
	return cl
}

// lookup returns the class of sql, classifying it on first sight, and
// sql's hash (sqlHash).
func (c *classCache) lookup(sql string) (class, uint64) {
	h := sqlHash(sql)
	if e, ok := (*c.shard(h).m.Load())[h]; ok && e.sql == sql {
		return e.cl, h
	}
	cl := classify(sql)
	c.set(sql, h, cl)
	return cl, h
}

// markWrite records that a standby rejected sql as a write (SQLSTATE
// 25006): from now on it goes to the primary, and stays several statements
// if it was (the capture path must not prepare it). It returns the new class.
func (c *classCache) markWrite(sql string) class {
	cl, h := c.lookup(sql)
	cl = asWrite(cl)
	if sql != "" {
		c.set(sql, h, cl)
	}
	return cl
}

// asWrite is cl for a statement found to write.
func asWrite(cl class) class { return cl&classMulti | classWrite }

// set records the class of sql, of hash h, for example a "read" that a
// standby rejected as a write.
func (c *classCache) set(sql string, h uint64, cl class) {
	sh := c.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old := *sh.m.Load()
	m := make(map[uint64]classEntry, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	if _, ok := m[h]; !ok && len(m) >= cacheShardCap {
		for k := range m {
			delete(m, k)
			break
		}
	}
	m[h] = classEntry{sql: sql, cl: cl}
	sh.m.Store(&m)
}
