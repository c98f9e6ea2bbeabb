package routertest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNoPgBouncer reports that [WithPgBouncer] was asked for and no pgbouncer
// binary was found. [Start] skips the test for it, as for [ErrNoBinaries],
// unless $CI is "true".
var ErrNoPgBouncer = fmt.Errorf("%w: pgbouncer not found", ErrNoBinaries)

// WithPgBouncer puts a PgBouncer in front of every node, in transaction
// pooling mode, as large deployments run one; each node's BouncerPort is
// where it listens, and [Topology.Artifact] points the router file there.
// The binary is $ROUTERTEST_PGBOUNCER, else /usr/sbin/pgbouncer (Debian's
// package; tools/pgbouncer/install.sh installs it), else pgbouncer on the
// PATH. A bouncer keeps running when its node stops, as in production: its
// clients then get PgBouncer's errors, not a refused connection. A bouncer
// that exits by itself (not killed by a signal) is started again on its
// port, as a service manager would, and the test's log says so with
// PgBouncer's last line: 1.18.0 (Debian 12's) exits when the clients of a
// cancel request hang up before the server has answered it
// (pgbouncer#801, fixed in 1.19.0). Bouncers belong to the process that
// started them: a topology kept with [WithDir] and attached with [Open]
// has none.
func WithPgBouncer() Option {
	return func(c *config) { c.pgbouncer = true }
}

// WithPgBouncerTLS is [WithPgBouncer] with its clients reached over TLS
// only (client_tls_sslmode = require), as a PgBouncer across a network
// runs: each bouncer gets a self-signed certificate made for it, and
// [Node.BouncerDSN] and [Topology.Artifact] ask for sslmode=require, which
// does not verify it. What the bouncer sends a client (its refusals
// included) is then encrypted on the socket. The bouncers reach the
// servers without TLS.
func WithPgBouncerTLS() Option {
	return func(c *config) { c.pgbouncer, c.bouncerTLS = true, true }
}

// PgBouncerHealthDatabase is a database each bouncer declares for the
// router's health checks: the server's postgres database, in a PgBouncer
// pool of its own (two server connections), which the application's
// transactions cannot fill (see routerlib.WithMonitorConfig).
const PgBouncerHealthDatabase = "routertest_health"

// PgBouncerSettings are the pgbouncer.ini settings routertest runs each
// bouncer with, besides its addresses and files: transaction pooling, and
// the startup parameter pgx sends for routerlib's replica pools accepted
// (PgBouncer refuses a connection with a parameter it does not know). The
// waits are short so that a node that is down fails queries in a test's
// time, not PgBouncer's default two minutes.
var PgBouncerSettings = []string{
	"pool_mode = transaction",
	"ignore_startup_parameters = default_transaction_read_only,extra_float_digits",
	"max_client_conn = 1000",
	"default_pool_size = 20",
	"server_login_retry = 1",
	"server_connect_timeout = 2",
	"query_wait_timeout = 5",
	"server_check_delay = 0",
}

func findPgBouncer() (string, error) {
	if p := os.Getenv("ROUTERTEST_PGBOUNCER"); p != "" {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/pgbouncer"); err == nil {
		return "/usr/sbin/pgbouncer", nil
	}
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: set $ROUTERTEST_PGBOUNCER or run tools/pgbouncer/install.sh", ErrNoPgBouncer)
}

// A bouncer is one node's PgBouncer. When it exits without being stopped
// it is started again on its port, as a service manager restarts a
// crashed daemon (see supervise).
type bouncer struct {
	dir  string
	ini  string // its pgbouncer.ini
	tls  bool   // it takes clients over TLS only (WithPgBouncerTLS)
	bin  string // the pgbouncer binary
	user *serverUser
	logf func(format string, args ...any)
	name string // the node's
	port int

	mu sync.Mutex
	// The running process and a channel closed when it has exited, which
	// a restart replaces; guarded by mu, as stopping is.
	cmd  *exec.Cmd
	done chan struct{}
	// stopping says stop was called: the exit that follows is no crash.
	stopping bool
	// supervised is closed when supervise returns; nil until it runs.
	supervised chan struct{}
	// crashes counts the exits without stop (see Node.BouncerCrashes).
	crashes atomic.Int32
}

// maxBouncerRestarts bounds how often one bouncer is started again: one
// that keeps exiting (its port taken meanwhile) is left down, with its
// log in the test's.
const maxBouncerRestarts = 10

// startBouncer starts a PgBouncer for n on a free port and waits until it
// serves a query. The port was free when picked, but the bouncers of a
// topology start at once and other tests run beside them, so another process
// may bind it first: then this bouncer exits, and it tries another port, as
// startNewNode does for the servers.
func (t *Topology) startBouncer(ctx context.Context, n *Node) error {
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			return err
		}
		err = t.startBouncerOn(ctx, n, ports[0])
		if !errors.Is(err, errBouncerExited) || attempt == 3 {
			return err
		}
		t.logf("routertest: %s: pgbouncer could not serve on port %d, trying another: %v", n.Name, ports[0], err)
	}
}

// errBouncerExited marks a bouncer that exited while starting (most often:
// its port was taken).
var errBouncerExited = errors.New("pgbouncer exited")

func (t *Topology) startBouncerOn(ctx context.Context, n *Node, port int) error {
	ports := []int{port}
	dir := filepath.Join(t.Dir, n.Name+"-pgbouncer")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("routertest: %w", err)
	}
	conf := []string{
		"[databases]",
		fmt.Sprintf("* = host=%s port=%d", n.Host, n.Port),
		fmt.Sprintf("%s = host=%s port=%d dbname=postgres pool_size=2", PgBouncerHealthDatabase, n.Host, n.Port),
		"[pgbouncer]",
		"listen_addr = " + n.Host,
		"listen_port = " + strconv.Itoa(ports[0]),
		"unix_socket_dir =",
		"auth_type = trust",
		"auth_file = " + filepath.Join(dir, "userlist.txt"),
		"logfile = " + filepath.Join(dir, "pgbouncer.log"),
		"log_connections = 0",
		"log_disconnections = 0",
	}
	conf = append(conf, PgBouncerSettings...)
	files := map[string]string{
		"userlist.txt": "\"postgres\" \"\"\n",
	}
	if t.bouncerTLS {
		cert, key, err := selfSignedCert(n.Host)
		if err != nil {
			return fmt.Errorf("routertest: %s: pgbouncer's TLS certificate: %w", n.Name, err)
		}
		files["server.crt"], files["server.key"] = cert, key
		conf = append(conf,
			"client_tls_sslmode = require",
			"client_tls_cert_file = "+filepath.Join(dir, "server.crt"),
			"client_tls_key_file = "+filepath.Join(dir, "server.key"))
	}
	files["pgbouncer.ini"] = strings.Join(conf, "\n") + "\n"
	for name, content := range files {
		if err := t.writeFile(filepath.Join(dir, name), []byte(content)); err != nil {
			return err
		}
	}
	if err := t.user.chown(dir); err != nil {
		return fmt.Errorf("routertest: %w", err)
	}
	b := &bouncer{dir: dir, ini: filepath.Join(dir, "pgbouncer.ini"), tls: t.bouncerTLS, bin: t.pgbouncer,
		user: t.user, logf: t.logf, name: n.Name, port: port}
	b.mu.Lock()
	err := b.startLocked(false)
	b.mu.Unlock()
	if err != nil {
		return fmt.Errorf("routertest: %s: starting pgbouncer: %w", n.Name, err)
	}
	n.bouncer = b
	n.BouncerPort = ports[0]
	err = poll(ctx, func() (bool, error) {
		select {
		case <-b.exited():
			return false, fmt.Errorf("routertest: %s: %w: %s", n.Name, errBouncerExited, b.logTail())
		default:
		}
		// Bounded apart from ctx: whatever holds a taken port may never
		// answer, and the bouncer's exit must still be seen.
		actx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		c, err := pgconn.Connect(actx, n.BouncerDSN())
		if err != nil {
			return false, nil
		}
		defer c.Close(ctx)
		// The answer must come from this node's server: a port taken by
		// another node's bouncer would answer too, for the wrong node.
		res := c.ExecParams(actx, "SELECT inet_server_port()", nil, nil, nil, nil).Read()
		if res.Err != nil || len(res.Rows) != 1 {
			return false, nil
		}
		if got := string(res.Rows[0][0]); got != strconv.Itoa(n.Port) {
			b.stop()
			return false, fmt.Errorf("routertest: %s: %w: port %d answers for the server on port %s", n.Name, errBouncerExited, port, got)
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("routertest: %s: pgbouncer on port %d: %w (%s)", n.Name, n.BouncerPort, err, b.logTail())
	}
	t.logf("routertest: %s: pgbouncer on port %d", n.Name, n.BouncerPort)
	b.supervised = make(chan struct{})
	go b.supervise()
	return nil
}

// startLocked starts the bouncer's process; again appends its output to
// the previous one's. The caller holds b.mu.
func (b *bouncer) startLocked(again bool) error {
	cmd := exec.Command(b.bin, b.ini)
	cmd.Dir = b.dir
	cmd.Env = serverEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	dieWithParent(cmd.SysProcAttr) // never outlive the test process
	b.user.runAs(cmd.SysProcAttr)
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if again {
		flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	}
	out, err := os.OpenFile(filepath.Join(b.dir, "stderr.log"), flags, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	b.cmd, b.done = cmd, done
	return nil
}

// exited returns a channel closed when the bouncer's current process has
// exited.
func (b *bouncer) exited() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done
}

// supervise starts the bouncer again, on the same port, each time it
// exits by itself, until stop. A PgBouncer exits on a FATAL error: 1.18.0
// (Debian 12's) does so at "disconnect_client(): bad client state: 0"
// when the clients of a cancel request hang up while the server has not
// answered it yet (pgbouncer#801, fixed in 1.19.0), which a client's
// bounded cancel of a call on a frozen node does (the router's did, until
// its cancels stayed open until answered): its server answers at the
// thaw, and the bouncer exited there, its port refusing every connection
// for the rest of the test. [Node.BouncerCrashes] counts such exits. A
// deployment's service manager
// starts it again; so does routertest, and says so in the test's log
// with PgBouncer's last line. A bouncer killed by a signal is left down:
// that is a test's fault (kill -9), and the test starts it again when it
// means to.
func (b *bouncer) supervise() {
	defer close(b.supervised)
	for restarts := 1; ; restarts++ {
		<-b.exited()
		b.mu.Lock()
		if b.stopping {
			b.mu.Unlock()
			return
		}
		state := b.cmd.ProcessState.String()
		if !b.cmd.ProcessState.Exited() {
			b.mu.Unlock()
			b.logf("routertest: %s: pgbouncer on port %d ended (%s); left down", b.name, b.port, state)
			return
		}
		b.crashes.Add(1)
		cause := b.lastLogLine()
		if restarts > maxBouncerRestarts {
			b.mu.Unlock()
			b.logf("routertest: %s: pgbouncer on port %d exited (%s: %s) %d times; not starting it again", b.name, b.port, state, cause, restarts)
			return
		}
		err := b.startLocked(true)
		b.mu.Unlock()
		if err != nil {
			b.logf("routertest: %s: pgbouncer on port %d exited (%s: %s) and did not start again: %v", b.name, b.port, state, cause, err)
			return
		}
		b.logf("routertest: %s: pgbouncer on port %d exited (%s: %s); started it again", b.name, b.port, state, cause)
	}
}

// lastLogLine is the last line of the bouncer's log: why it exited.
func (b *bouncer) lastLogLine() string {
	data, err := os.ReadFile(filepath.Join(b.dir, "pgbouncer.log"))
	if err != nil {
		return err.Error()
	}
	s := strings.TrimSpace(string(data))
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// stop ends the bouncer at once (SIGTERM: PgBouncer's immediate shutdown),
// and its supervision.
func (b *bouncer) stop() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	b.stopping = true
	cmd, done := b.cmd, b.done
	b.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	if b.supervised != nil {
		<-b.supervised
	}
	return nil
}

func (b *bouncer) logTail() string {
	var parts []string
	for _, name := range []string{"stderr.log", "pgbouncer.log"} {
		data, err := os.ReadFile(filepath.Join(b.dir, name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			parts = append(parts, err.Error())
		}
		s := strings.TrimSpace(string(data))
		if len(s) > 2000 {
			s = s[len(s)-2000:]
		}
		if s != "" {
			parts = append(parts, name+": "+s)
		}
	}
	return strings.Join(parts, "; ")
}

// BouncerDSN returns a connection string for the postgres database through
// the node's PgBouncer ([WithPgBouncer]), or "" without one: sslmode=disable,
// or sslmode=require with [WithPgBouncerTLS].
func (n *Node) BouncerDSN() string {
	if n.BouncerPort == 0 {
		return ""
	}
	sslmode := "disable"
	if n.bouncer != nil && n.bouncer.tls {
		sslmode = "require"
	}
	return "postgres://postgres@" + net.JoinHostPort(n.Host, strconv.Itoa(n.BouncerPort)) + "/postgres?sslmode=" + sslmode
}

// BouncerCrashes returns how many times the node's PgBouncer
// ([WithPgBouncer]) exited without being stopped, such as PgBouncer
// 1.18's FATAL "bad client state: 0" (see [WithPgBouncer]). Each time it
// was started again on its port, up to 10 times, unless the start failed
// (the test log says so); after that it stays down. 0 without one.
func (n *Node) BouncerCrashes() int {
	if n.bouncer == nil {
		return 0
	}
	return int(n.bouncer.crashes.Load())
}

// selfSignedCert returns a PEM certificate for host, signed by its own
// key, and that key: what a bouncer of [WithPgBouncerTLS] serves.
func selfSignedCert(host string) (cert, key string, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return "", "", err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})), nil
}
