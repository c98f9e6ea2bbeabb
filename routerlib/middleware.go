package routerlib

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strings"
)

// SessionCookie is the cookie [Middleware] keeps the session's LSN in.
const SessionCookie = "routerlib_lsn"

// Middleware carries a read-your-writes [Session] between HTTP requests: a
// user who posts a form sees the change on the next page, even when that
// page is served by a replica.
//
// Each request gets a Session in its context ([SessionFrom]), started from
// the request's [SessionCookie] when its HMAC-SHA256 signature under secret
// is valid (a tampered or foreign cookie is ignored: the session starts
// empty). When the handler writes through the router, the new LSN is set in
// the cookie before the response headers go out. secret should be at least
// 32 random bytes, shared by every instance of the application.
func Middleware(secret []byte) func(http.Handler) http.Handler {
	key := append([]byte(nil), secret...)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			var start LSN
			if c, err := req.Cookie(SessionCookie); err == nil {
				start, _ = verifyLSN(key, c.Value)
			}
			s := NewSession(start)
			sw := &sessionWriter{ResponseWriter: w, key: key, session: s, start: start, secure: req.TLS != nil}
			next.ServeHTTP(sw, req.WithContext(WithSession(req.Context(), s)))
			sw.setCookie() // the handler wrote nothing: headers are not sent yet
		})
	}
}

// signLSN encodes lsn with its signature as "payload.mac", both base64url.
func signLSN(key []byte, lsn LSN) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(lsn))
	mac := hmac.New(sha256.New, key)
	mac.Write(b[:])
	enc := base64.RawURLEncoding
	return enc.EncodeToString(b[:]) + "." + enc.EncodeToString(mac.Sum(nil))
}

// verifyLSN returns the LSN in a cookie value made by signLSN with key.
func verifyLSN(key []byte, value string) (LSN, bool) {
	payload, sig, ok := strings.Cut(value, ".")
	if !ok {
		return 0, false
	}
	enc := base64.RawURLEncoding
	b, err1 := enc.DecodeString(payload)
	got, err2 := enc.DecodeString(sig)
	if err1 != nil || err2 != nil || len(b) != 8 {
		return 0, false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(b)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return 0, false
	}
	return LSN(binary.BigEndian.Uint64(b)), true
}

// sessionWriter sets the cookie just before the headers are written.
type sessionWriter struct {
	http.ResponseWriter
	key     []byte
	session *Session
	start   LSN
	secure  bool
	sent    bool
}

func (w *sessionWriter) setCookie() {
	if w.sent {
		return
	}
	w.sent = true
	lsn := w.session.LSN()
	if lsn == w.start {
		return
	}
	http.SetCookie(w.ResponseWriter, &http.Cookie{
		Name:     SessionCookie,
		Value:    signLSN(w.key, lsn),
		Path:     "/",
		HttpOnly: true,
		Secure:   w.secure,
		SameSite: http.SameSiteLaxMode,
	})
}

func (w *sessionWriter) WriteHeader(code int) {
	w.setCookie()
	w.ResponseWriter.WriteHeader(code)
}

func (w *sessionWriter) Write(b []byte) (int, error) {
	w.setCookie()
	return w.ResponseWriter.Write(b)
}

// Unwrap lets [http.ResponseController] reach the underlying writer.
func (w *sessionWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
