package routerlib

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Carrying a read-your-writes Session between requests.
//
// The value is signed with HMAC-SHA256 by hand rather than with
// gorilla/securecookie, whose design it follows (a timestamp inside the
// signed value and a max age, several keys for rotation with the first
// signing, constant-time comparison): what it carries is 16 fixed bytes, so
// securecookie's serializers and optional encryption would add a dependency
// to every application that imports routerlib and nothing it needs; it
// would not refuse short keys (it only recommends 32 bytes), and it binds
// the cookie's name into the signature, where a value here must move
// between a cookie and a header unchanged.

const (
	// SessionCookie is the default name of the cookie that carries the
	// session's LSN ([SessionConfig.CookieName]).
	SessionCookie = "routerlib_lsn"
	// SessionHeader is the default request and response header that
	// carries the session's LSN for APIs ([SessionConfig.Header]).
	SessionHeader = "Routerlib-Lsn"
	// DefaultSessionMaxAge is [SessionConfig.MaxAge] when unset: an LSN
	// matters only until the replicas replay it, which takes far less.
	DefaultSessionMaxAge = 5 * time.Minute
	// MinSessionKeyLen is the shortest key [NewSessionMiddleware] accepts.
	MinSessionKeyLen = 32
)

// SessionConfig configures a [SessionMiddleware].
type SessionConfig struct {
	// Keys sign and verify the carried value: the first signs, every one
	// verifies, so a key is rotated by putting the new one first and
	// dropping the old one after MaxAge. Each must be at least
	// MinSessionKeyLen random bytes, the same on every instance of the
	// application. Required.
	Keys [][]byte
	// MaxAge is how long a signed value is honoured after it was issued.
	// Zero means DefaultSessionMaxAge.
	MaxAge time.Duration
	// CookieName is the cookie [SessionMiddleware.Cookie] uses. Empty means
	// SessionCookie.
	CookieName string
	// SameSite is the cookie's SameSite attribute. Zero means
	// [http.SameSiteLaxMode].
	SameSite http.SameSite
	// Insecure leaves the cookie's Secure attribute off, for plain-HTTP
	// development. The zero value sets Secure, which is right behind a
	// load balancer that terminates TLS too.
	Insecure bool
	// Header is the request and response header
	// [SessionMiddleware.Header] uses. Empty means SessionHeader.
	Header string
}

// A SessionMiddleware carries a read-your-writes [Session] between HTTP
// requests, so that a user who posts a form sees the change on the next
// page even when a replica serves it: in a cookie for browsers
// ([SessionMiddleware.Cookie]), or in a header for APIs and calls between
// services ([SessionMiddleware.Header]). The value is the session's LSN and
// the time it was issued, signed with HMAC-SHA256. A value is ignored, and
// the session starts empty, when its signature is wrong, when it is older
// than MaxAge, or when its LSN is ahead of the primary's current WAL
// position (a forged value, or one from before the primary was rebuilt),
// so that no value can pin a user's reads to the primary.
type SessionMiddleware struct {
	r        *Router // nil only for the deprecated Middleware
	keys     [][]byte
	maxAge   time.Duration
	cookie   string
	sameSite http.SameSite
	secure   bool
	header   string
	// primary is the highest position the middleware has read from the
	// primary, and which primary: an LSN up to it needs no query while
	// that server, on that timeline and since the same start, takes the
	// writes. Another primary (a failover, or a reload to another
	// cluster) may be behind it, and so may the cluster at the same
	// address after a restart (re-initialised, or restored from a backup).
	primary atomic.Pointer[primaryPosition]
}

// A primaryPosition is a WAL position read from the primary srv, writing
// on timeline tli, whose postmaster started at started (as the health
// checks last saw it before the position was read).
type primaryPosition struct {
	srv     *server
	tli     uint32
	started int64
	lsn     LSN
}

// same reports whether p and o were read from the same server, timeline
// and start of it.
func (p *primaryPosition) same(o *primaryPosition) bool {
	return p.srv == o.srv && p.tli == o.tli && p.started == o.started
}

// NewSessionMiddleware returns a SessionMiddleware for the sessions of r.
// It fails for a nil r, no key, or a key shorter than MinSessionKeyLen.
func NewSessionMiddleware(r *Router, c SessionConfig) (*SessionMiddleware, error) {
	if r == nil {
		return nil, errors.New("routerlib: session middleware: the Router is nil; pass the Router whose sessions it carries")
	}
	m, err := newSessionMiddleware(c)
	if err != nil {
		return nil, err
	}
	m.r = r
	return m, nil
}

func newSessionMiddleware(c SessionConfig) (*SessionMiddleware, error) {
	if len(c.Keys) == 0 {
		return nil, fmt.Errorf("routerlib: session middleware: no key; set SessionConfig.Keys to at least one key of %d or more random bytes", MinSessionKeyLen)
	}
	m := &SessionMiddleware{maxAge: c.MaxAge, cookie: c.CookieName, sameSite: c.SameSite, secure: !c.Insecure, header: c.Header}
	for i, k := range c.Keys {
		if len(k) < MinSessionKeyLen {
			return nil, fmt.Errorf("routerlib: session middleware: key %d is %d bytes; use at least %d random bytes (such as from crypto/rand), or a forged value could pin reads to the primary", i, len(k), MinSessionKeyLen)
		}
		m.keys = append(m.keys, append([]byte(nil), k...))
	}
	if m.maxAge <= 0 {
		m.maxAge = DefaultSessionMaxAge
	}
	if m.cookie == "" {
		m.cookie = SessionCookie
	}
	if m.sameSite == 0 {
		m.sameSite = http.SameSiteLaxMode
	}
	if m.header == "" {
		m.header = SessionHeader
	}
	return m, nil
}

// Middleware carries the session in a cookie.
//
// Deprecated: use [NewSessionMiddleware] and [SessionMiddleware.Cookie],
// which also refuse an LSN ahead of the primary's position. Middleware
// panics if secret is shorter than MinSessionKeyLen bytes; its cookie is
// Secure, expires after DefaultSessionMaxAge, and carries the same signed
// value.
func Middleware(secret []byte) func(http.Handler) http.Handler {
	m, err := newSessionMiddleware(SessionConfig{Keys: [][]byte{secret}})
	if err != nil {
		panic(err)
	}
	return m.Cookie
}

// Cookie returns next wrapped so that each request gets a [Session] in its
// context ([SessionFrom]), started from the request's cookie when that is
// valid, and so that a write through the router sets the cookie to the new
// LSN before the response headers go out. The handler's writer flushes
// ([http.Flusher]) and hands its connection over ([http.Hijacker], for a
// WebSocket upgrade) as the server's does, and unwraps for
// [http.ResponseController].
func (m *SessionMiddleware) Cookie(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var value string
		if c, err := req.Cookie(m.cookie); err == nil {
			value = c.Value
		}
		m.serve(w, req, next, value, func(h http.Header, v string) {
			c := &http.Cookie{
				Name: m.cookie, Value: v, Path: "/", MaxAge: int(m.maxAge / time.Second),
				HttpOnly: true, Secure: m.secure, SameSite: m.sameSite,
			}
			if s := c.String(); s != "" {
				h.Add("Set-Cookie", s)
			}
		})
	})
}

// Header returns next wrapped like [SessionMiddleware.Cookie], but the
// value arrives in the request header (SessionConfig.Header) and a new one
// leaves in the response header of the same name: for JSON APIs and calls
// between services, whose clients keep no cookies. A client sends back the
// last value it received; [SessionMiddleware.Sign] makes one to forward.
func (m *SessionMiddleware) Header(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		m.serve(w, req, next, req.Header.Get(m.header), func(h http.Header, v string) { h.Set(m.header, v) })
	})
}

func (m *SessionMiddleware) serve(w http.ResponseWriter, req *http.Request, next http.Handler, value string, set func(http.Header, string)) {
	var start LSN // 0, an empty session, unless the value is honoured
	if value != "" {
		start, _ = m.Verify(req.Context(), value)
	}
	s := NewSession(start)
	sw := &sessionWriter{ResponseWriter: w, m: m, ctx: req.Context(), session: s, start: start, set: set}
	next.ServeHTTP(sw, req.WithContext(WithSession(req.Context(), s)))
	sw.setValue() // the handler wrote nothing: headers are not sent yet
}

// signedPrefix is signed before the payload, so that no other HMAC made
// with the same key can pass for a session value.
const signedPrefix = "routerlib session lsn v1\x00"

// Sign returns the signed value that carries lsn, issued now.
func (m *SessionMiddleware) Sign(lsn LSN) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMilli()))
	binary.BigEndian.PutUint64(b[8:], uint64(lsn))
	enc := base64.RawURLEncoding
	return enc.EncodeToString(b[:]) + "." + enc.EncodeToString(mac(m.keys[0], b[:]))
}

func mac(key, payload []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(signedPrefix))
	h.Write(payload)
	return h.Sum(nil)
}

// Verify returns the LSN that value carries, and true, if one of the keys
// signed it, it is younger than MaxAge, and its LSN is not ahead of the
// primary's current WAL position; else 0 and false. That last check asks
// the primary only for an LSN beyond the highest position seen on it (by
// the health checks, or by an earlier Verify): a position seen on another
// primary, before a failover or a reload, or before the server at the
// primary's address last started (a cluster re-initialised or restored
// there), does not count once a health check has seen the change, since
// the primary now may be behind it. Sign raises nothing: it signs what
// the session recorded.
func (m *SessionMiddleware) Verify(ctx context.Context, value string) (LSN, bool) {
	payload, sig, ok := strings.Cut(value, ".")
	if !ok {
		return 0, false
	}
	enc := base64.RawURLEncoding
	b, err1 := enc.DecodeString(payload)
	got, err2 := enc.DecodeString(sig)
	if err1 != nil || err2 != nil || len(b) != 16 {
		return 0, false
	}
	signed := false
	for _, k := range m.keys {
		if hmac.Equal(got, mac(k, b)) {
			signed = true
			break
		}
	}
	if !signed {
		return 0, false
	}
	issued := time.UnixMilli(int64(binary.BigEndian.Uint64(b[:8])))
	if age := time.Since(issued); age > m.maxAge || age < -time.Minute {
		return 0, false // expired, or issued in the future beyond clock skew
	}
	lsn := LSN(binary.BigEndian.Uint64(b[8:]))
	// Compared as the end of a record, as the primary's position is read
	// (see recordEnd): a value an application signed from
	// pg_current_wal_insert_lsn() just past a page header is that page's
	// boundary, not ahead of it.
	if !m.atPrimary(ctx, recordEnd(lsn)) {
		return 0, false
	}
	return lsn, true
}

// atPrimary reports whether the primary has reached lsn: the primary
// taking writes now, as its last health check or a query of the
// middleware's own saw it, or as it answers now (waiting, as a write does,
// for a primary restarted fast: see awaitWriter). A position seen on
// another primary, or on the same one before it last started, does not
// count: after a failover that lost WAL, a reload to another cluster, or a
// cluster rebuilt at the same address (timeline 1 again), the primary may
// be behind it, and a value ahead of the primary would pin the session's
// reads to it.
func (m *SessionMiddleware) atPrimary(ctx context.Context, lsn LSN) bool {
	if m.r == nil {
		return true
	}
	t, err := m.r.enter()
	if err != nil {
		return false
	}
	defer func() { t.leave() }() // awaitWriter may move the call to a new topology
	if w := t.writer.Load(); w != nil {
		if lsn <= LSN(w.replayLSN.Load()) { // its current position at the last check
			return true
		}
		if p := m.primary.Load(); p != nil && p.srv == w.server && p.tli == w.timeline.Load() && p.started == w.started.Load() && lsn <= p.lsn {
			return true
		}
	}
	pos, err := m.r.primaryPosition(ctx, t)
	if err != nil {
		err = m.r.awaitWriter(ctx, &t, err, func() (err error) {
			pos, err = m.r.primaryPosition(ctx, t)
			return err
		})
	}
	if err != nil {
		// Unknown: do not let the value send reads to the primary.
		m.r.opts.logger.Warn("routerlib: a session's LSN is ahead of every primary position seen, and the primary could not be asked; the session starts empty", "err", err)
		return false
	}
	for {
		old := m.primary.Load()
		if old != nil && old.same(&pos) && old.lsn >= pos.lsn {
			break // as high already, for that primary
		}
		if m.primary.CompareAndSwap(old, &pos) {
			break
		}
	}
	return lsn <= pos.lsn
}

// settleSession is Router.settle on the topology in force, which waits,
// as a write does, for a primary restarted fast (awaitWriter).
func (r *Router) settleSession(ctx context.Context, s *Session, lost uint64) error {
	t, err := r.enter()
	if err != nil {
		return err
	}
	defer func() { t.leave() }() // awaitWriter may move the call to a new topology
	if err = r.settle(ctx, t, s, lost, true); err != nil {
		err = r.awaitWriter(ctx, &t, err, func() error { return r.settle(ctx, t, s, lost, true) })
	}
	return err
}

// primaryPosition asks the node taking writes for its WAL insert position.
func (r *Router) primaryPosition(ctx context.Context, t *topology) (primaryPosition, error) {
	tg, err := r.choosePrimary(ctx, t, OpVerifySession)
	if err != nil {
		return primaryPosition{}, err
	}
	tli, started := tg.n.timeline.Load(), tg.n.started.Load()
	c, err := acquireConn(ctx, tg.pool)
	if err == nil {
		defer c.Release()
		var lsn LSN
		if lsn, err = readPosition(ctx, c.Conn().PgConn()); err == nil {
			return primaryPosition{srv: tg.n.server, tli: tli, started: started, lsn: lsn}, nil
		}
	}
	return primaryPosition{}, fmt.Errorf("routerlib: reading primary %q's WAL position: %w", tg.n.name, err)
}

// sessionWriter sets the value just before the headers are written.
type sessionWriter struct {
	http.ResponseWriter
	m       *SessionMiddleware
	ctx     context.Context // the request's
	session *Session
	start   LSN
	set     func(http.Header, string)
	sent    bool
}

func (w *sessionWriter) setValue() {
	if w.sent {
		return
	}
	w.sent = true
	if lost := w.session.unsettled(); lost != 0 && w.m.r != nil {
		// Work whose position Release could not read: the primary's
		// position now is past it, and the next request must wait for it.
		if err := w.m.r.settleSession(w.ctx, w.session, lost); err != nil {
			w.m.r.opts.logger.Warn("routerlib: a session's position is unknown and the primary could not tell its own; the value sent carries the last one known, and the next request's reads may miss the work", "err", err)
		}
	}
	if lsn := w.session.LSN(); lsn != w.start {
		w.set(w.Header(), w.m.Sign(lsn))
	}
}

func (w *sessionWriter) WriteHeader(code int) {
	w.setValue()
	w.ResponseWriter.WriteHeader(code)
}

func (w *sessionWriter) Write(b []byte) (int, error) {
	w.setValue()
	return w.ResponseWriter.Write(b)
}

// Flush sends the session value with the headers, then flushes: a handler
// that streams (server-sent events) asserts [http.Flusher], and
// [http.ResponseController] calls Flush before it unwraps.
func (w *sessionWriter) Flush() {
	w.setValue()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack hands the connection to a handler that takes it over (a
// WebSocket upgrade): such handlers assert [http.Hijacker] on their
// writer, as golang.org/x/net/websocket does. A server's writer that
// cannot (HTTP/2) returns [http.ErrNotSupported], as
// [http.ResponseController] does. The session's value, sent in the
// response headers, does not go out on a connection taken over.
func (w *sessionWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap lets [http.ResponseController] reach the underlying writer.
func (w *sessionWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
