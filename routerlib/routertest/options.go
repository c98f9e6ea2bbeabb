package routertest

import (
	"fmt"
	"regexp"
)

// An Option configures [Start] and [New].
type Option func(*config)

type config struct {
	standbys   int                              // default 2; 0 is a lone primary
	version    int                              // 0: any version found
	binDir     string                           // "": looked up, see findBinDir
	settings   []setting                        // applied after the defaults, in order
	logf       func(format string, args ...any) // never nil after newConfig
	dir        string                           // "": a temporary directory removed by Close
	pgbouncer  bool                             // a PgBouncer in front of every node
	bouncerTLS bool                             // its clients reach it over TLS: see WithPgBouncerTLS
	serverTLS  bool                             // the servers take TLS: see WithServerTLS
	ownCluster bool                             // initdb of its own: see WithOwnCluster
}

type setting struct{ name, value string }

func newConfig(opts []Option) config {
	c := config{standbys: 2, logf: func(string, ...any) {}}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithRewind runs the servers as pg_rewind needs them (full_page_writes
// and wal_log_hints on; routertest's default turns full_page_writes off
// for speed), so that [Node.Rewind] can bring an old primary back as a
// standby of the node promoted in its place.
func WithRewind() Option {
	return func(c *config) {
		c.settings = append(c.settings, setting{"full_page_writes", "on"}, setting{"wal_log_hints", "on"})
	}
}

// WithOwnCluster makes the topology's nodes copies of an initdb run for
// it alone, instead of the template every routertest cluster of the same
// binaries copies (see ensureTemplate), so its system identifier
// (pg_control_system()) differs from every other topology's: another
// cluster, as a wrong host in a router file would be. It costs the
// initdb the template saves.
func WithOwnCluster() Option {
	return func(c *config) { c.ownCluster = true }
}

// WithStandbys sets how many hot standbys stream from the primary. The default
// is 2; 0 starts a lone primary (add standbys later with
// [Topology.AddStandby]).
func WithStandbys(n int) Option {
	return func(c *config) { c.standbys = n }
}

// WithVersion asks for servers of one PostgreSQL major version, found in
// /usr/lib/postgresql/VERSION/bin (Debian's layout), in
// .cache/postgres/VERSION/bin at the root of this repository (where
// tools/postgres/install.sh puts them), or in $ROUTERTEST_PGBIN when that
// holds the same major version. routertest never downloads servers itself.
func WithVersion(major int) Option {
	return func(c *config) { c.version = major }
}

// WithBinDir names the directory holding initdb, pg_ctl and postgres. It takes
// precedence over [WithVersion] and $ROUTERTEST_PGBIN.
func WithBinDir(dir string) Option {
	return func(c *config) { c.binDir = dir }
}

// WithSetting adds a postgresql.conf setting to every node, after (and so
// overriding) routertest's own. Use it for what a test needs, such as
// synchronous_standby_names on the primary side of a synchronous-replication
// test.
func WithSetting(name, value string) Option {
	return func(c *config) { c.settings = append(c.settings, setting{name, value}) }
}

// WithServerTLS runs every server with ssl = on, each with a self-signed
// certificate made for it (as [WithPgBouncerTLS]'s bouncers), so that a
// client that asks for sslmode=require reaches it over TLS. [Node.DSN]
// still asks for sslmode=disable: a test sets the sslmode it needs.
func WithServerTLS() Option {
	return func(c *config) { c.serverTLS = true }
}

// WithLogf receives routertest's progress messages (which node listens where,
// how long startup took). [Start] defaults to the test's Logf; [New] to
// nothing.
func WithLogf(logf func(format string, args ...any)) Option {
	return func(c *config) {
		if logf != nil {
			c.logf = logf
		}
	}
}

// WithDir keeps the topology in dir instead of a temporary directory. Close
// then stops the servers but keeps their files, and [Open] attaches to them
// again later, from another process if need be: this is how the sandbox CLI
// keeps servers running between commands. dir must not exist or be empty.
func WithDir(dir string) Option {
	return func(c *config) { c.dir = dir }
}

var settingName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

func (c *config) validate() error {
	if c.standbys < 0 {
		return fmt.Errorf("routertest: WithStandbys(%d): the number of standbys cannot be negative", c.standbys)
	}
	for _, s := range c.settings {
		if !settingName.MatchString(s.name) {
			return fmt.Errorf("routertest: WithSetting(%q, ...): not a PostgreSQL setting name", s.name)
		}
	}
	return nil
}
