package routerlib

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
)

// readFile reads, parses and validates the router file. Anything but a
// regular file (after symlinks) is refused before it is opened: opening a
// FIFO waits for a writer, and reading a device such as /dev/zero never
// ends, either of which would hold Reload, the watcher and Close forever.
func readFile(path string) ([]byte, artifact.Topology, error) {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, artifact.Topology{}, fmt.Errorf("routerlib: router file %s is not a regular file (%s); point the router at the file the provider writes", path, fi.Mode().Type())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, artifact.Topology{}, fmt.Errorf("routerlib: %w", err)
	}
	f, err := artifact.Parse(data)
	if err != nil {
		return nil, artifact.Topology{}, fmt.Errorf("routerlib: router file %s: %w", path, err)
	}
	if err := f.Validate(); err != nil {
		return nil, artifact.Topology{}, fmt.Errorf("routerlib: router file %s: %w", path, err)
	}
	return data, f, nil
}

func sum(data []byte) [32]byte { return sha256.Sum256(data) }

// Reload reads the router file given to [Open] now, rather than waiting for
// the watcher. When its content changed, the new topology's pools are built
// and checked, swapped in atomically, and the old pools are closed once the
// queries using them finish. An invalid file, or one whose declared
// primary refuses its user, password or database (which [New] refuses
// too), returns an error (also passed to [WithOnReloadError]) and the old
// configuration stays in force.
func (r *Router) Reload(ctx context.Context) error {
	if r.path == "" {
		return errors.New("routerlib: Reload needs a Router made by Open; a Router made by New has no file")
	}
	err := r.reload(ctx)
	if err != nil {
		r.opts.logger.Error("routerlib: router file rejected; the old configuration stays in force", "path", r.path, "err", err)
		if r.opts.onReloadErr != nil {
			r.opts.onReloadErr(err)
		}
	}
	return err
}

func (r *Router) reload(ctx context.Context) error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	if r.closed.Load() {
		return ErrClosed
	}
	data, f, err := readFile(r.path)
	if err != nil {
		return err
	}
	s := sum(data)
	if s == r.fileSum {
		return nil
	}
	// Under checkMu, the monitor applies no check while this topology
	// takes the servers, health and writer of the one in force; it is
	// held only to build and to swap, never while a node is checked.
	r.checkMu.Lock()
	prev := r.cur.Load()
	t, err := buildTopology(f, &r.opts, prev)
	r.checkMu.Unlock()
	if err != nil {
		return fmt.Errorf("routerlib: router file %s: %w", r.path, err)
	}
	// The new servers are checked before the swap, so that a new node
	// takes reads at once; Close ends these checks.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.background, cancel)()
	results, fresh := r.checkNew(ctx, t, prev)
	// Close cuts the checks through the Router's background context, whose
	// AfterFunc cancels ctx from a goroutine of its own: a check cut that
	// way can come back before ctx is done, but after closed is set.
	if ctx.Err() != nil || r.closed.Load() {
		t.closeServersNotIn(prev)
		if r.closed.Load() {
			return ErrClosed
		}
		return fmt.Errorf("routerlib: router file %s: checking its new nodes: %w", r.path, ctx.Err())
	}
	// As in New: a declared primary that refuses the file's user,
	// password or database is a mistake in the file. Taken, it would stop
	// every write (and with the same mistake on the replicas, every read)
	// that the configuration in force serves.
	if i := slices.Index(t.nodes, t.declared); fresh[i] && results[i].err != nil {
		if err := refusal(t.declared.name, results[i].err); err != nil {
			t.closeServersNotIn(prev)
			return fmt.Errorf("routerlib: router file %s: %w", r.path, err)
		}
	}
	r.checkMu.Lock()
	defer r.checkMu.Unlock()
	if err := t.keepWriter(prev); err != nil {
		t.closeServersNotIn(prev)
		return fmt.Errorf("routerlib: router file %s: %w", r.path, err)
	}
	if w := prev.writerNode(); w != nil && t.writer.Load() == nil {
		// The file renamed the writer, or moved it: its server lost the
		// writes, to the node the checks choose now, and its connections
		// are cut if that is another server (see cutOldPrimaries).
		w.conns.setLost(true)
	}
	keepNewer(t, prev, results, fresh)
	// The lag limits and nodes that changed take effect at once.
	r.applyAll(t, results, fresh)
	r.cur.Store(t)
	select {
	case r.swapped <- struct{}{}:
	default: // the monitor has yet to see the previous swap, and will see this one
	}
	r.fileSum = s
	t.prevDrained = prev.drained
	prev.retired.Store(true)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		drain(prev, t)
	}()
	r.opts.logger.Info("routerlib: router file reloaded", "path", r.path, "nodes", len(t.nodes))
	return nil
}

// drain closes the servers of a retired topology that next (the topology
// that replaced it, nil on Close) does not use, once no call is between
// choosing one of its nodes and holding a connection, and once the
// topology it replaced has drained: a call on that one may still use a
// server t shared with it. pgxpool.Close then waits for the connections
// still held (open rows, transactions, an acquired connection) to come
// back. Until then those servers are still checked (see watchDropped).
// t counts as drained once its calls have, before its servers close: a
// connection the application holds for its lifetime (a LISTEN) keeps its
// own pool open, not the pools of the next reloads.
func drain(t, next *topology) {
	if next != nil {
		stop := make(chan struct{})
		var watchers sync.WaitGroup
		defer watchers.Wait()
		defer close(stop)
		for _, n := range t.nodes {
			if next.nodeOn(n.server) == nil {
				watchers.Go(func() { t.watchDropped(n, stop) })
			}
		}
	}
	for t.inflight.Load() > 0 {
		time.Sleep(time.Millisecond)
	}
	if t.prevDrained != nil {
		<-t.prevDrained
	}
	close(t.drained)
	t.closeServersNotIn(next)
}

// watchDropped checks n, whose server the topology that replaced t does
// not use, every interval until stop is closed (its calls drained), and
// cuts its connections off after eject_after failed checks in a row, as
// the monitor would have: no watcher of the topology in force checks it,
// and a call stuck on it (the node froze just before a reload dropped it,
// or changed its settings) would otherwise wait for it forever, holding up
// the drain. A call that is only slow on a healthy node goes on. When n
// is an old primary, which lost the writes to another server and answers
// out of recovery still, its connections are cut at once (see
// cutOldPrimaries): no check of the topology in force sees it, and a
// connection held there would go on writing to the fork.
func (t *topology) watchDropped(n *node, stop <-chan struct{}) {
	ticker := time.NewTicker(t.interval)
	defer ticker.Stop()
	for fails := 0; ; {
		select {
		case <-stop:
			return
		case <-ticker.C:
		}
		ctx, cancel := context.WithTimeout(n.life, t.timeout)
		res := n.check(ctx, t.timeout)
		cancel()
		if res.err == nil {
			fails = 0
			var moved *writesMoved
			if to := n.conns.lostTo(res); to != "" && !res.recovery && !errors.As(n.conns.cause(), &moved) {
				n.cutOldPrimary(fmt.Sprintf("writes go to %q now, and the router file no longer lists %q", to, n.name))
			}
			continue
		}
		if fails++; fails >= t.eject {
			n.cut(fmt.Errorf("node %q, which a reload took out of the router file, does not answer: %w", n.name, res.err))
			return
		}
	}
}

// watch polls the router file every interval and reloads it when its size,
// modification time or status-change time change and its SHA-256 differs.
// Polling needs no dependency and works on every file system, including a
// ConfigMap's symlink swap. The status-change time is what a chmod or
// chown moves, and nothing else does: a new file that arrived unreadable
// to the application (another owner, a umask leaving it 0600) is refused,
// and the fix, a chmod, changes neither its size nor its modification
// time. The Router owns it: Close stops it.
//
// seen is the file's state before Open read it, so that a change between
// the read and the watcher's start is not missed.
func (r *Router) watch(ctx context.Context, path string, interval time.Duration, seen os.FileInfo) {
	defer r.wg.Done()
	var was fileState
	if seen != nil {
		was = stateOf(seen)
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		fi, err := os.Stat(path)
		if err != nil {
			continue // mid-rename, or removed: keep the configuration in force
		}
		if now := stateOf(fi); now != was {
			was = now
			_ = r.Reload(ctx)
		}
	}
}

// fileState is what the watcher compares between two polls of the file.
type fileState struct {
	size         int64
	mtime, ctime time.Time
}

func stateOf(fi os.FileInfo) fileState {
	return fileState{size: fi.Size(), mtime: fi.ModTime(), ctime: changeTime(fi)}
}
