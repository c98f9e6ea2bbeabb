package routertest

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The files routertest keeps in a node's data directory.
const (
	serverConfFile = "routertest.conf" // included from postgresql.conf; rewritten per node
	serverLogFile  = "postgresql.log"  // the server's stderr, via pg_ctl -l
)

// defaultSettings make every node a primary that is ready for physical and
// logical replication, or a hot standby, whichever it is started as.
// Durability is traded for speed (fsync, full_page_writes), never semantics:
// synchronous_commit keeps its default so synchronous replication behaves as
// in production.
var defaultSettings = []setting{
	{"listen_addresses", "127.0.0.1"},
	{"unix_socket_directories", ""}, // TCP only: no socket path length limits, nothing in /var/run
	{"max_connections", "100"},
	{"shared_buffers", "16MB"},
	{"wal_level", "logical"},
	{"max_wal_senders", "20"},
	{"max_replication_slots", "20"},
	{"wal_keep_size", "256MB"}, // standbys use no slots; this keeps the WAL they may still need
	{"hot_standby", "on"},
	{"hot_standby_feedback", "off"},
	{"wal_retrieve_retry_interval", "1s"}, // default 5s: reconnect quickly after a primary restarts
	{"fsync", "off"},
	{"full_page_writes", "off"},
	{"logging_collector", "off"},
	{"log_line_prefix", "%m [%p] %q%a "},
}

// hbaConf trusts every local TCP connection. This is for throwaway test
// clusters only: anyone on the machine may connect as any role.
const hbaConf = `# Written by routertest: for test clusters only. Anyone on this machine may
# connect over 127.0.0.1 as any role without a password.
host all         all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
`

// quoteConf quotes a value for postgresql.conf, where backslashes escape.
func quoteConf(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(v) + "'"
}

// writeFile writes a file into a data directory, owned by the server user.
func (t *Topology) writeFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	return t.user.chown(path)
}

// writeServerConf writes the node's routertest.conf: the defaults, the port
// and then the caller's WithSetting values.
func (t *Topology) writeServerConf(n *Node) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by routertest for node %s; included from postgresql.conf.\n", n.Name)
	for _, s := range defaultSettings {
		fmt.Fprintf(&b, "%s = %s\n", s.name, quoteConf(s.value))
	}
	fmt.Fprintf(&b, "port = %d\n", n.Port)
	if t.serverTLS {
		cert, key, err := selfSignedCert(n.Host)
		if err != nil {
			return fmt.Errorf("routertest: a certificate for node %s: %w", n.Name, err)
		}
		for name, pem := range map[string]string{"server.crt": cert, "server.key": key} {
			if err := t.writeFile(filepath.Join(n.DataDir, name), []byte(pem)); err != nil {
				return err
			}
		}
		b.WriteString("ssl = on\n") // server.crt and server.key, the defaults
	}
	for _, s := range t.settings {
		fmt.Fprintf(&b, "%s = %s\n", s.name, quoteConf(s.value))
	}
	return t.writeFile(filepath.Join(n.DataDir, serverConfFile), []byte(b.String()))
}

// configureNode turns a copy of a fresh initdb cluster into a routertest
// node, a primary unless configureStandby follows.
func (t *Topology) configureNode(n *Node) error {
	conf := filepath.Join(n.DataDir, "postgresql.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "\n# routertest's settings, one file per node\ninclude '%s'\n", serverConfFile)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := t.writeFile(filepath.Join(n.DataDir, "pg_hba.conf"), []byte(hbaConf)); err != nil {
		return err
	}
	return t.writeServerConf(n)
}

// configureStandby makes a copy of a cluster start as a hot standby of primary.
func (t *Topology) configureStandby(n, primary *Node) error {
	if err := t.writeServerConf(n); err != nil {
		return err
	}
	if err := t.writeFile(filepath.Join(n.DataDir, "standby.signal"), nil); err != nil {
		return err
	}
	return t.setAutoConf(n, "primary_conninfo", n.primaryConninfo(primary))
}

// setAutoConf sets one parameter in postgresql.auto.conf the way ALTER SYSTEM
// would, for a server that is not running.
func (t *Topology) setAutoConf(n *Node, name, value string) error {
	path := filepath.Join(n.DataDir, "postgresql.auto.conf")
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var b bytes.Buffer
	for _, line := range strings.SplitAfter(string(old), "\n") {
		key, _, _ := strings.Cut(line, "=")
		if strings.TrimSpace(key) == name {
			continue
		}
		b.WriteString(line)
	}
	if b.Len() > 0 && !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "%s = %s\n", name, quoteConf(value))
	return t.writeFile(path, b.Bytes())
}

// A copyMode says what of a data directory to copy.
type copyMode int

const (
	// coldCopy copies a cleanly stopped cluster whole, WAL included: the copy
	// starts from the same shutdown checkpoint as the original.
	coldCopy copyMode = iota
	// onlineCopy copies a running cluster between pg_backup_start and
	// pg_backup_stop, leaving out what pg_basebackup leaves out. The WAL it
	// needs comes from the primary by streaming.
	onlineCopy
)

// skippedFiles are never copied: they belong to the running server or are
// rebuilt on start.
var skippedFiles = map[string]bool{
	"postmaster.pid":   true,
	"postmaster.opts":  true,
	"pg_internal.init": true,
	"backup_label":     true,
	"tablespace_map":   true,
	serverLogFile:      true,
}

// emptiedDirs are copied empty by an online copy, as pg_basebackup does.
var emptiedDirs = map[string]bool{
	"pg_dynshmem":  true,
	"pg_notify":    true,
	"pg_replslot":  true,
	"pg_serial":    true,
	"pg_snapshots": true,
	"pg_stat_tmp":  true,
	"pg_subtrans":  true,
}

// copyDataDir copies the data directory src to dst (which must not exist),
// keeping modes and handing everything to the server user.
func (t *Topology) copyDataDir(src, dst string, mode copyMode) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			// A running server removes temporary files while we walk.
			if mode == onlineCopy && os.IsNotExist(err) {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		top, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
		info, err := d.Info()
		if err != nil {
			if mode == onlineCopy && os.IsNotExist(err) {
				return nil
			}
			return err
		}
		switch {
		case d.IsDir():
			if mode == onlineCopy && emptiedDirs[top] && rel != top {
				return fs.SkipDir
			}
			if err := os.Mkdir(target, info.Mode().Perm()); err != nil {
				return err
			}
			if err := os.Chmod(target, info.Mode().Perm()); err != nil { // past the umask
				return err
			}
			return t.user.chown(target)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
			return t.user.chown(target)
		case skippedFiles[d.Name()] && filepath.Dir(rel) == ".",
			d.Name() == "pg_internal.init",
			mode == onlineCopy && (top == "pg_wal" || emptiedDirs[top]),
			mode == onlineCopy && strings.HasPrefix(d.Name(), "pgsql_tmp"):
			return nil
		default:
			err := copyFile(path, target, info.Mode().Perm())
			if mode == onlineCopy && os.IsNotExist(err) {
				return nil
			}
			if err != nil {
				return err
			}
			return t.user.chown(target)
		}
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// logTail returns the last lines of the node's server log, for errors.
func (n *Node) logTail() string {
	const maxBytes, maxLines = 4096, 20
	f, err := os.Open(n.logPath())
	if err != nil {
		return ""
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.Size() > maxBytes {
		if _, err := f.Seek(-maxBytes, io.SeekEnd); err != nil {
			return ""
		}
	}
	data, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return strings.Join(lines, "\n")
}

func (n *Node) logPath() string { return filepath.Join(n.DataDir, serverLogFile) }
