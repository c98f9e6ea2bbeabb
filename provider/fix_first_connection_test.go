package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A pool reads its role's connection limits on its own first connection
// (newPool), over every way the provider reaches a server: TLS negotiated
// after a plain attempt (sslmode=prefer), TLS required, no TLS, and a Unix
// socket. The limit (3) is below max_connections (4), so the pool is made
// again, smaller, once that first session has ended: each time the role has
// one session after the pool is made, the pool's queries run on it, and a
// cancel request for it reaches the server. On the code before 028d689 the
// limits were read on a connection of their own, so the
// replication-password test's proxy saw two connections where it allows
// one.
func TestAccProvider_poolKeepsItsFirstConnection(t *testing.T) {
	testAccPreCheck(t)
	sockets := serverDir(t)
	cert, key := selfSignedCertificate(t, serverDir(t))
	topo := routertest.Start(t, routertest.WithStandbys(0), routertest.WithSetting("ssl", "on"),
		routertest.WithSetting("ssl_cert_file", cert), routertest.WithSetting("ssl_key_file", key),
		routertest.WithSetting("unix_socket_directories", sockets))
	trustHBA(t, topo.Primary, "local all all trust")
	for _, tc := range []struct {
		name, host, sslmode string
		tls                 bool
	}{
		{"prefer", "127.0.0.1", "prefer", true},
		{"require", "127.0.0.1", "require", true},
		{"disable", "127.0.0.1", "disable", false},
		{"socket", sockets, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			role := "tfacc_first_" + tc.name
			execSQL(t, topo.Primary, "postgres", `CREATE ROLE `+role+` LOGIN CONNECTION LIMIT 3`)
			s := newServer(connSettings{Host: tc.host, Port: int64(topo.Primary.Port), Database: "postgres", Username: role,
				SSLMode: tc.sslmode, MaxConnections: 4})
			p, err := s.Pool(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { closeTestPool(p) })
			sessions := func() int64 {
				return queryValue[int64](t, topo.Primary, "postgres", `SELECT count(*) FROM pg_stat_activity WHERE usename = $1`, role)
			}
			if n := sessions(); n != 1 {
				t.Errorf("the role has %d sessions once its pool is made, want 1 (the pool's first connection)", n)
			}
			if got := p.Config().MaxConns; got != 3 {
				t.Errorf("the pool holds up to %d connections, want 3 (the role's CONNECTION LIMIT)", got)
			}
			c, err := p.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Release()
			var tls bool
			if err := c.QueryRow(ctx, `SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)`).Scan(&tls); err != nil {
				t.Fatal(err)
			}
			if tls != tc.tls {
				t.Errorf("the pool's connection uses TLS: %v, want %v", tls, tc.tls)
			}
			if n := sessions(); n != 1 {
				t.Errorf("the role has %d sessions after a query, want 1: the pool did not use its first connection", n)
			}
			start := time.Now()
			err = cancelledSleep(t, c)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
				t.Errorf("a cancelled statement on the first connection ended after %s with %v, want SQLSTATE 57014 (query_canceled)", time.Since(start).Round(time.Millisecond), err)
			}
		})
	}
}

// trustHBA adds rule, which trusts some connections, to n's pg_hba.conf:
// routertest's trusts TCP connections from 127.0.0.1 only.
func trustHBA(t *testing.T, n *routertest.Node, rule string) {
	t.Helper()
	hba, err := os.OpenFile(filepath.Join(n.DataDir, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hba.WriteString(rule + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := hba.Close(); err != nil {
		t.Fatal(err)
	}
	execSQL(t, n, "postgres", `SELECT pg_reload_conf()`)
	// The postmaster rereads pg_hba.conf when it handles the signal.
	time.Sleep(time.Second)
}

// serverDir is a new directory with a short path (a Unix socket's is at
// most 107 bytes), owned by the user the servers run as: routertest runs
// them as postgres when the tests run as root.
func serverDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	serverOwned(t, dir)
	return dir
}

// serverOwned gives path to the postgres user when the tests run as root.
func serverOwned(t *testing.T, path string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
}

// selfSignedCertificate writes a server certificate and its key (mode 0600,
// as PostgreSQL requires) in dir and returns their paths.
func selfSignedCertificate(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	serverOwned(t, cert)
	serverOwned(t, key)
	return cert, key
}
