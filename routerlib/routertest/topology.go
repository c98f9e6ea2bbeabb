package routertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// defaultTimeout bounds New and Close when the context has no deadline.
const defaultTimeout = 2 * time.Minute

// minVersion is the oldest server routertest can drive: primary_conninfo
// became reloadable (Follow) and wal_keep_size appeared in PostgreSQL 13.
const minVersion = 13

// A Topology is a running primary and its hot standbys, each a real
// PostgreSQL server on 127.0.0.1.
//
// Primary and Standbys describe the topology as built: [Node.Promote] and
// [Node.Follow] change what the servers do, not these fields. Node methods
// may be called from several goroutines; AddStandby appends to Standbys and
// must not run while other goroutines read it.
type Topology struct {
	Primary  *Node
	Standbys []*Node
	Dir      string // holds one data directory per node, named after it
	Version  int    // the servers' major version, such as 17

	binDir    string
	user      *serverUser // nil: servers run as the current user
	temporary bool        // Dir was made by New: Close removes it
	settings  []setting
	logf      func(format string, args ...any)
	pgbouncer string // the pgbouncer binary; "" without WithPgBouncer
	// bouncerTLS: the bouncers take their clients over TLS only
	// (WithPgBouncerTLS).
	bouncerTLS bool
	// ownCluster: the nodes are copies of an initdb of this topology's
	// own (WithOwnCluster), not of the shared template.
	ownCluster bool
	// serverTLS: the servers take TLS (WithServerTLS).
	serverTLS bool

	frozen frozen // nodes stopped by Node.Freeze

	closeOnce sync.Once
	closeErr  error
}

// Start starts a topology for a test and closes it when the test and its
// subtests finish. It skips the test when no PostgreSQL server binaries are
// found, unless $CI is "true": CI must fail rather than skip silently.
// Other errors fail the test.
func Start(tb testing.TB, opts ...Option) *Topology {
	tb.Helper()
	ctx := context.Background()
	if d, ok := tb.(interface{ Deadline() (time.Time, bool) }); ok {
		if deadline, ok := d.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
		}
	}
	t, err := New(ctx, append([]Option{WithLogf(tb.Logf)}, opts...)...)
	if errors.Is(err, ErrNoBinaries) && os.Getenv("CI") != "true" {
		tb.Skip(err)
		return nil
	}
	if err != nil {
		tb.Fatal(err)
		return nil
	}
	tb.Cleanup(func() {
		if err := t.Close(); err != nil {
			tb.Error(err)
		}
	})
	return t
}

// New starts a topology outside a test (a TestMain, the sandbox CLI). The
// caller must Close it. It returns when every standby streams from the
// primary. A ctx without a deadline gets one of two minutes.
//
// Each node is a copy of a cluster that initdb makes once per machine, user
// and server installation, kept in the temporary directory for the next
// topology: a standby copied before the primary first starts needs no base
// backup, so starting takes about a second.
func New(ctx context.Context, opts ...Option) (*Topology, error) {
	began := time.Now()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	c := newConfig(opts)
	if err := c.validate(); err != nil {
		return nil, err
	}
	binDir, err := findBinDir(&c)
	if err != nil {
		return nil, fmt.Errorf("routertest: %w", err)
	}
	version, err := serverVersion(binDir)
	if err != nil {
		return nil, err
	}
	if version < minVersion {
		return nil, fmt.Errorf("routertest: %s holds PostgreSQL %d; routertest needs %d or later", binDir, version, minVersion)
	}
	u, err := lookupServerUser()
	if err != nil {
		return nil, err
	}
	t := &Topology{Version: version, binDir: binDir, user: u, settings: c.settings, logf: c.logf}
	t.ownCluster = c.ownCluster
	t.serverTLS = c.serverTLS
	if c.pgbouncer {
		t.bouncerTLS = c.bouncerTLS
		if t.pgbouncer, err = findPgBouncer(); err != nil {
			return nil, fmt.Errorf("routertest: %w", err)
		}
	}

	if c.dir == "" {
		reapOrphans(ctx, c.logf)
		if t.Dir, err = os.MkdirTemp("", tempPattern); err != nil {
			return nil, fmt.Errorf("routertest: %w", err)
		}
		t.temporary = true
	} else if t.Dir, err = prepareDir(c.dir); err != nil {
		return nil, err
	}
	if err := t.build(ctx, c); err != nil {
		// Leave nothing behind: the directory was empty or ours.
		_ = t.close(context.WithoutCancel(ctx))
		if !t.temporary {
			_ = os.RemoveAll(t.Dir)
		}
		return nil, err
	}
	t.logf("routertest: PostgreSQL %d primary on port %d and %d standbys streaming in %v (%s)",
		t.Version, t.Primary.Port, len(t.Standbys), time.Since(began).Round(time.Millisecond), t.Dir)
	return t, nil
}

// build makes and starts the nodes in t.Dir.
func (t *Topology) build(ctx context.Context, c config) error {
	// MkdirTemp makes the directory 0700: let the server user through.
	if err := os.Chmod(t.Dir, 0o755); err != nil {
		return fmt.Errorf("routertest: %w", err)
	}
	if err := t.user.checkTraversable(t.Dir); err != nil {
		return err
	}

	ports, err := freePorts(1 + c.standbys)
	if err != nil {
		return err
	}
	t.Primary = t.newNode("primary", ports[0])
	for i := range c.standbys {
		t.Standbys = append(t.Standbys, t.newNode("replica-"+strconv.Itoa(i+1), ports[i+1]))
	}
	// Written first, so that a crash from here on leaves an orphan that the
	// next New can reap.
	if err := t.writeState(); err != nil {
		return fmt.Errorf("routertest: %w", err)
	}

	template, err := t.ensureTemplate(ctx)
	if err != nil {
		return err
	}
	// Every node starts as a copy of the same cleanly shut down cluster,
	// which is what a standby copied from the primary before its first start
	// would be; the copies run in parallel.
	err = eachNode(t.Nodes(), func(n *Node) error {
		if err := t.copyDataDir(template, n.DataDir, coldCopy); err != nil {
			return fmt.Errorf("routertest: %s: copying the template cluster %s (remove it to have it made again): %w",
				n.Name, filepath.Dir(template), err)
		}
		if err := t.configureNode(n); err != nil {
			return fmt.Errorf("routertest: %s: %w", n.Name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The primary first, so that standbys find it at their first attempt.
	if err := t.startNewNode(ctx, t.Primary); err != nil {
		return err
	}
	err = eachNode(t.Standbys, func(n *Node) error {
		if err := t.configureStandby(n, t.Primary); err != nil {
			return fmt.Errorf("routertest: %s: %w", n.Name, err)
		}
		return t.startNewNode(ctx, n)
	})
	if err != nil {
		return err
	}
	if err := t.writeState(); err != nil { // ports may have changed
		return fmt.Errorf("routertest: %w", err)
	}
	if err := t.waitStreaming(ctx, t.Standbys...); err != nil {
		return err
	}
	if t.pgbouncer != "" {
		return eachNode(t.Nodes(), func(n *Node) error { return t.startBouncer(ctx, n) })
	}
	return nil
}

// eachNode calls f for each node in parallel and joins their errors.
func eachNode(nodes []*Node, f func(*Node) error) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// prepareDir makes dir, which must not exist or be empty, for a kept topology.
func prepareDir(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("routertest: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("routertest: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("routertest: %w", err)
	}
	if len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
			return "", fmt.Errorf("routertest: %s already holds a topology: attach to it with Open, or stop it and remove the directory", dir)
		}
		return "", fmt.Errorf("routertest: %s is not empty: a topology needs a new or empty directory", dir)
	}
	return dir, nil
}

func (t *Topology) newNode(name string, port int) *Node {
	return &Node{Name: name, Host: "127.0.0.1", Port: port, DataDir: filepath.Join(t.Dir, name), t: t}
}

// startNewNode starts a node for the first time. Its port was free when
// picked but another process may have taken it since: pick another one then.
func (t *Topology) startNewNode(ctx context.Context, n *Node) error {
	for attempt := 1; ; attempt++ {
		offset := n.logSize()
		err := n.Start(ctx)
		if err == nil || attempt == 3 || !n.isPortInUse(offset) {
			return err
		}
		ports, perr := freePorts(1)
		if perr != nil {
			return errors.Join(err, perr)
		}
		t.logf("routertest: %s: port %d was taken, trying %d", n.Name, n.Port, ports[0])
		n.Port = ports[0]
		if err := t.writeServerConf(n); err != nil {
			return fmt.Errorf("routertest: %s: %w", n.Name, err)
		}
	}
}

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("routertest: finding a free port: %w", err)
		}
		// Held open until all are picked, so that the ports differ.
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// waitStreaming waits until the primary's pg_stat_replication shows each
// standby streaming.
func (t *Topology) waitStreaming(ctx context.Context, standbys ...*Node) error {
	var streaming []string
	err := poll(ctx, func() (bool, error) {
		streaming = nil
		err := t.Primary.QueryRow(ctx, `SELECT coalesce(array_agg(application_name::text), '{}')
			FROM pg_stat_replication WHERE state = 'streaming'`).Scan(&streaming)
		if err != nil {
			return false, nil // the primary may still be starting
		}
		for _, n := range standbys {
			if !contains(streaming, n.Name) {
				return false, nil
			}
		}
		return true, nil
	})
	if err == nil {
		return nil
	}
	var errs []error
	for _, n := range standbys {
		if !contains(streaming, n.Name) {
			errs = append(errs, n.errorf("waiting until it streams from the primary", err))
		}
	}
	if len(errs) == 0 {
		return t.Primary.errorf("querying pg_stat_replication", err)
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// poll calls check until it reports done, fails, or ctx ends.
func poll(ctx context.Context, check func() (bool, error)) error {
	const interval = 20 * time.Millisecond
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// Nodes returns the primary followed by the standbys.
func (t *Topology) Nodes() []*Node {
	return append([]*Node{t.Primary}, t.Standbys...)
}

// CurrentLSN returns the primary's current WAL write position, for
// [Node.WaitReplayed].
func (t *Topology) CurrentLSN(ctx context.Context) (string, error) {
	var lsn string
	err := t.Primary.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn)
	return lsn, err
}

// WaitReplayed returns once every standby has replayed the primary's WAL
// up to its current position: what the primary did so far (roles, grants,
// tables) is then visible on the standbys.
func (t *Topology) WaitReplayed(ctx context.Context) error {
	lsn, err := t.CurrentLSN(ctx)
	if err != nil {
		return err
	}
	for _, s := range t.Standbys {
		if err := s.WaitReplayed(ctx, lsn); err != nil {
			return err
		}
	}
	return nil
}

// Close stops every server and, unless the topology was made with [WithDir]
// or attached with [Open], removes its directory. Servers of a temporary
// topology are stopped at once (pg_ctl -m immediate); kept ones cleanly
// (-m fast), so that they start again quickly. Close may be called more than
// once.
func (t *Topology) Close() error {
	t.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
		defer cancel()
		t.closeErr = t.close(ctx)
	})
	return t.closeErr
}

func (t *Topology) close(ctx context.Context) error {
	mode := "fast"
	if t.temporary {
		mode = "immediate"
	}
	var nodes []*Node
	for _, n := range t.Nodes() {
		if n != nil {
			nodes = append(nodes, n)
		}
	}
	err := errors.Join(t.thawAll(), eachNode(nodes, func(n *Node) error { return errors.Join(n.bouncer.stop(), n.stop(ctx, mode)) }))
	if t.temporary {
		if rmErr := os.RemoveAll(t.Dir); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("routertest: %w", rmErr))
		}
	}
	return err
}

// AddStandby makes a new standby from the running primary, with an online
// copy of its data directory between pg_backup_start and pg_backup_stop (what
// pg_basebackup does, without needing it), and returns once it streams.
func (t *Topology) AddStandby(ctx context.Context) (*Node, error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	n := t.newNode("replica-"+strconv.Itoa(len(t.Standbys)+1), ports[0])
	if err := t.backup(ctx, t.Primary, n); err != nil {
		os.RemoveAll(n.DataDir)
		return nil, err
	}
	if err := t.configureStandby(n, t.Primary); err != nil {
		return nil, fmt.Errorf("routertest: %s: %w", n.Name, err)
	}
	if err := t.startNewNode(ctx, n); err != nil {
		return nil, err
	}
	if err := n.WaitStreaming(ctx); err != nil {
		return nil, err
	}
	if t.pgbouncer != "" {
		if err := t.startBouncer(ctx, n); err != nil {
			return nil, err
		}
	}
	t.Standbys = append(t.Standbys, n)
	if err := t.writeState(); err != nil {
		return nil, fmt.Errorf("routertest: %w", err)
	}
	t.logf("routertest: %s added on port %d", n.Name, n.Port)
	return n, nil
}

// backup copies the running primary's data directory into n's. The backup
// functions must run on one connection, held for the whole copy.
func (t *Topology) backup(ctx context.Context, primary, n *Node) error {
	conn, err := primary.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	start, stop := "SELECT pg_backup_start($1, true)", "SELECT labelfile, spcmapfile FROM pg_backup_stop(false)"
	if t.Version < 15 {
		start, stop = "SELECT pg_start_backup($1, true, false)", "SELECT labelfile, spcmapfile FROM pg_stop_backup(false, false)"
	}
	if _, err := conn.Exec(ctx, start, "routertest "+n.Name); err != nil {
		return primary.errorf("starting a backup for "+n.Name, err)
	}
	copyErr := t.copyDataDir(primary.DataDir, n.DataDir, onlineCopy)
	var label, spcmap string
	if err := conn.QueryRow(ctx, stop).Scan(&label, &spcmap); err != nil {
		return errors.Join(copyErr, primary.errorf("stopping the backup for "+n.Name, err))
	}
	if copyErr != nil {
		return fmt.Errorf("routertest: %s: copying the primary's data directory: %w", n.Name, copyErr)
	}
	if err := t.writeFile(filepath.Join(n.DataDir, "backup_label"), []byte(label)); err != nil {
		return fmt.Errorf("routertest: %s: %w", n.Name, err)
	}
	if spcmap != "" {
		if err := t.writeFile(filepath.Join(n.DataDir, "tablespace_map"), []byte(spcmap)); err != nil {
			return fmt.Errorf("routertest: %s: %w", n.Name, err)
		}
	}
	return nil
}
