package routerlib_test

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestSessionMiddlewarePassesHijack: an application wraps its whole mux
// in the session middleware, WebSocket endpoints included. Handlers that
// take the connection over assert http.Hijacker on their writer, as
// golang.org/x/net/websocket (which panics without it) and many upgraders
// do; the middleware's writer did not have it, so every upgrade failed
// (here: 500 "no hijacker") behind either of its wrappers. It passes the
// call to the server's writer, and one that cannot (HTTP/2) returns
// http.ErrNotSupported, as http.ResponseController does.
func TestSessionMiddlewarePassesHijack(t *testing.T) {
	r := newRouter(t, routertest.Shared(t).Artifact())
	m := sessionMiddleware(t, r, routerlib.SessionConfig{Keys: [][]byte{key1}, Insecure: true})
	upgrade := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "no hijacker", http.StatusInternalServerError)
			return
		}
		conn, rw, err := hj.Hijack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		line, _ := rw.ReadString('\n')
		rw.WriteString("echo " + line)
		rw.Flush()
	})
	for name, wrap := range map[string]func(http.Handler) http.Handler{"Cookie": m.Cookie, "Header": m.Header} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(wrap(upgrade))
			defer srv.Close()
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("upgrade through the middleware: %s", resp.Status)
			}
			conn.Write([]byte("ping\n"))
			if got, _ := br.ReadString('\n'); got != "echo ping\n" {
				t.Errorf("after the upgrade: %q, want %q", got, "echo ping\n")
			}
		})
	}
}
