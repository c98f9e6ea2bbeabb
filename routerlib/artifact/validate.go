package artifact

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Problem is one thing wrong with a [Topology].
type Problem struct {
	// Path locates the field in the file, such as "nodes[2].max_lag" or
	// "routes[0].nodes[1]". Indexes are positions in the caller's slices.
	Path string
	// Message says what is wrong and what is allowed.
	Message string
}

// String formats the problem as "path: message".
func (p Problem) String() string {
	return p.Path + ": " + p.Message
}

// ValidationError is every problem [Topology.Validate] found, in the order
// of the fields in the file. Test for it with [errors.As].
type ValidationError struct {
	// Problems holds at least one problem.
	Problems []Problem
}

// Error lists every problem, one per line.
func (e *ValidationError) Error() string {
	if len(e.Problems) == 1 {
		return "invalid topology: " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid topology (%d problems):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n")
		b.WriteString(p.String())
	}
	return b.String()
}

// Validate checks every rule of the format and reports every problem at
// once, as a [*ValidationError], so a file can be fixed in one pass. It
// returns nil if t is valid. Unset fields are valid: they take their
// defaults.
func (t Topology) Validate() error {
	var v validator
	if t.FormatVersion != 0 && t.FormatVersion != FormatVersion {
		v.addf("format_version", "unsupported format_version %d; this build reads and writes %d", t.FormatVersion, FormatVersion)
	}
	v.nodes(t.Nodes)
	v.readPolicy(t)
	v.consistency(t.Consistency)
	v.health(t.Health)
	v.routes(t)
	v.pool(t.Pool)
	if len(v.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: v.problems}
}

// validator collects problems.
type validator struct {
	problems []Problem
}

func (v *validator) addf(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) nodes(nodes []Node) {
	if len(nodes) == 0 {
		v.addf("nodes", "at least one node is required: add the primary")
		return
	}
	first := make(map[string]int, len(nodes))   // node name → index of its first use
	servers := make(map[server]int, len(nodes)) // server → index of its first node
	var primaries []string
	for i, n := range nodes {
		p := fmt.Sprintf("nodes[%d]", i)
		v.name(p+".name", "node", n.Name)
		if j, dup := first[n.Name]; dup && n.Name != "" {
			v.addf(p+".name", "duplicate node name %q, also used by nodes[%d]; node names must be unique", n.Name, j)
		} else if !dup {
			first[n.Name] = i
		}
		switch {
		case n.Role == "":
			v.addf(p+".role", "role is required; allowed: %s", list(Roles))
		case n.Role == RolePrimary:
			primaries = append(primaries, fmt.Sprintf("%s %q", p, n.Name))
		default:
			v.oneOf(p+".role", "role", n.Role, Roles)
		}
		switch {
		case n.Host == "":
			v.addf(p+".host", "host is required")
		case strings.Contains(n.Host, "://"):
			v.addf(p+".host", "host must be a host name, IP address or socket directory, not a connection URI; put the user and database in their own fields and the password in password_env or passfile")
		case conninfoInHost(n.Host):
			// Not shown, and refused: the router would put it in every
			// connection error it logs and returns (a name lookup
			// quotes it).
			v.addf(p+".host", "host must be a host name, IP address or socket directory; this one holds a space, '=' or '@', as a connection string or user:password@host does (the value is not shown, in case it holds a password); put the user and database in their own fields and the password in password_env or passfile")
		}
		if isConnString(n.Database) {
			// libpq reads such a dbname as a connection string; the
			// router does not, and the server's "database does not
			// exist" would show it in every connection error.
			v.addf(p+".database", "database holds '=' or starts with postgres:// or postgresql://, which libpq reads as a connection string and the router does not (the value is not shown, in case it holds a password); give the database's name alone, the host, port and user in their own fields and the password in password_env or passfile")
		}
		if passwordInUser(n.User) {
			// The same mistake as a connection string in host or
			// database, refused for the same reason: the server names
			// the role it refuses and pgconn the user it connected as,
			// so the value would show in every connection error, logged
			// on each failed check and kept in Stat's LastError.
			v.addf(p+".user", "user holds ':', '=' or white space, as user:password or a pasted \"user=… password=…\" does (the value is not shown, in case it holds a password); give the role's name alone and the password in password_env or passfile. "+
				"PostgreSQL allows such characters in a role's name, the router file does not: if the role really is named so, connect as a role without them (ALTER ROLE … RENAME TO …, or CREATE ROLE … LOGIN IN ROLE …)")
		}
		if j, dup := servers[serverOf(n)]; dup && n.Host != "" {
			// The router learns each node's role from the server: the
			// primary listed again (as a replica, or under another user)
			// is two nodes out of recovery on one timeline, a split brain
			// for which no node takes writes.
			// Neither host nor database is shown: either may hold a
			// password typed there by mistake (a URI, a conninfo string).
			v.addf(p+".host", "node %q reaches the same server as nodes[%d] %q (the same host, port and database); list each server once: a node's role is what its server reports, so the primary listed twice reads as two primaries and takes no writes. To send a route's reads to the primary, list the primary's node in the route",
				n.Name, j, nodes[j].Name)
		} else if !dup {
			servers[serverOf(n)] = i
		}
		if n.Port < 0 || n.Port > 65535 {
			v.addf(p+".port", "port %d is out of range; use 1 to 65535, or leave it unset for %d", n.Port, DefaultPort)
		}
		if n.SSLMode != "" {
			v.oneOf(p+".sslmode", "sslmode", n.SSLMode, SSLModes)
		}
		if n.PasswordEnv != "" && !isEnvName(n.PasswordEnv) {
			// The value is not shown: what is not a variable's name may
			// well be the password itself, and this message is logged.
			v.addf(p+".password_env", "is not an environment variable name (the value is not shown, in case it is a password); use letters, digits and underscores, not starting with a digit: the name of the variable that holds the password, never the password")
		}
		if n.Weight < 0 || n.Weight > MaxWeight {
			v.addf(p+".weight", "weight %d is out of range; use 1 to %d, or leave it unset for %d", n.Weight, MaxWeight, DefaultWeight)
		}
		v.duration(p+".max_lag", n.MaxLag)
		if n.MaxLagBytes < 0 {
			v.addf(p+".max_lag_bytes", "max_lag_bytes %d is negative; use a byte count, or leave it unset for no limit", n.MaxLagBytes)
		}
	}
	switch len(primaries) {
	case 1:
	case 0:
		v.addf("nodes", "no primary: exactly one node must have role %q", RolePrimary)
	default:
		v.addf("nodes", "%d primaries (%s): exactly one node must have role %q", len(primaries), strings.Join(primaries, ", "), RolePrimary)
	}
}

// conninfoInHost says host, not a socket directory, holds what a host name
// or IP address never does and a connection string or a URI's
// user:password@host does: white space, '=' or '@' (a leading '@' is an
// abstract Unix socket, as libpq reads it).
func conninfoInHost(host string) bool {
	if strings.HasPrefix(host, "/") {
		return false
	}
	return strings.ContainsAny(strings.TrimPrefix(host, "@"), " \t\r\n\f\v=@")
}

// passwordInUser says user holds what the password typed into it by
// mistake brings: ':' (user:password, a URI's userinfo split at the '@')
// or '=' and white space (a connection string's "user=app password=…"
// pasted whole). PostgreSQL allows all three in a quoted role name; the
// router file refuses them (its error says how to proceed), since a role
// so named is rare and a password shown in every log line is not. '@'
// stays allowed: some managed services name roles user@server.
func passwordInUser(user string) bool {
	return strings.ContainsAny(user, ":= \t\r\n\f\v")
}

// isConnString says libpq would read dbname as a connection string rather
// than a database's name (libpq's recognized_connection_string).
func isConnString(dbname string) bool {
	return strings.Contains(dbname, "=") || strings.HasPrefix(dbname, "postgresql://") || strings.HasPrefix(dbname, "postgres://")
}

// server is where a node connects: nodes with the same host, port and
// database reach one server (a pooler such as PgBouncer in front of
// several servers tells them apart by database name).
type server struct {
	host     string
	port     int
	database string
}

func serverOf(n Node) server {
	port := n.Port
	if port == 0 {
		port = DefaultPort
	}
	// An unset database is the user's own (PostgreSQL's default), so
	// two nodes without one reach the same database only under the same
	// user: a pooler routing by user as well as database stays valid.
	database := n.Database
	if database == "" {
		database = n.User
	}
	return server{host: n.Host, port: port, database: database}
}

func (v *validator) readPolicy(t Topology) {
	rp := t.ReadPolicy
	if rp.Strategy != "" {
		v.oneOf("read_policy.strategy", "strategy", rp.Strategy, Strategies)
	}
	if rp.Fallback != "" {
		v.oneOf("read_policy.fallback", "fallback", rp.Fallback, Fallbacks)
	}
	if rp.Strategy == StrategyNearestZone && len(t.Nodes) > 0 && !slices.ContainsFunc(t.Nodes, func(n Node) bool { return n.Zone != "" }) {
		v.addf("read_policy.strategy", "strategy %q needs zones, but no node has one; set zone on the nodes or choose another strategy", StrategyNearestZone)
	}
}

func (v *validator) consistency(c Consistency) {
	if c.Mode != "" {
		v.oneOf("consistency.mode", "mode", c.Mode, ConsistencyModes)
	}
	// 0s is meaningful here: a read goes to the primary at once when no
	// replica has replayed the session's last write.
	v.durationOrZero("consistency.wait_timeout", c.WaitTimeout)
}

func (v *validator) health(h Health) {
	v.duration("health.interval", h.Interval)
	v.duration("health.timeout", h.Timeout)
	v.duration("health.connect_timeout", h.ConnectTimeout)
	if h.EjectAfter < 0 {
		v.addf("health.eject_after", "eject_after %d is negative; use a number of failed checks, or leave it unset for %d", h.EjectAfter, DefaultEjectAfter)
	}
	if h.ReadmitAfter < 0 {
		v.addf("health.readmit_after", "readmit_after %d is negative; use a number of passed checks, or leave it unset for %d", h.ReadmitAfter, DefaultReadmitAfter)
	}
}

func (v *validator) routes(t Topology) {
	zones := make(map[string]string, len(t.Nodes)) // node name → zone
	names := make([]string, 0, len(t.Nodes))
	for _, n := range t.Nodes {
		if _, ok := zones[n.Name]; !ok {
			names = append(names, n.Name)
		}
		zones[n.Name] = n.Zone
	}
	first := make(map[string]int, len(t.Routes)) // route name → index of its first use
	for i, r := range t.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		v.name(p+".name", "route", r.Name)
		if j, dup := first[r.Name]; dup && r.Name != "" {
			v.addf(p+".name", "duplicate route name %q, also used by routes[%d]; route names must be unique", r.Name, j)
		} else if !dup {
			first[r.Name] = i
		}
		if len(r.Nodes) == 0 {
			v.addf(p+".nodes", "a route must list at least one node")
		}
		listed := make(map[string]int, len(r.Nodes))
		zoned := false
		for j, name := range r.Nodes {
			np := fmt.Sprintf("%s.nodes[%d]", p, j)
			zone, ok := zones[name]
			switch k, dup := listed[name]; {
			case dup:
				v.addf(np, "node %q is already listed at %s.nodes[%d]; list each node once", name, p, k)
			case !ok:
				v.addf(np, "unknown node %q; the nodes are: %s", name, list(names))
			}
			if _, dup := listed[name]; !dup {
				listed[name] = j
			}
			zoned = zoned || zone != ""
		}
		if r.Strategy != "" {
			v.oneOf(p+".strategy", "strategy", r.Strategy, Strategies)
		}
		if r.Fallback != "" {
			v.oneOf(p+".fallback", "fallback", r.Fallback, Fallbacks)
		}
		strategy, inherited := r.Strategy, ""
		if strategy == "" {
			strategy, inherited = t.ReadPolicy.Strategy, " (inherited from read_policy)"
		}
		if strategy == StrategyNearestZone && len(r.Nodes) > 0 && !zoned {
			v.addf(p+".strategy", "strategy %q%s needs zones, but none of the route's nodes has one; set zone on them or choose another strategy", StrategyNearestZone, inherited)
		}
	}
}

func (v *validator) pool(p Pool) {
	if p.MaxConns < 0 {
		v.addf("pool.max_conns", "max_conns %d is negative; use at least 1, or leave it unset for %d", p.MaxConns, DefaultMaxConns)
	}
	if p.MinConns < 0 {
		v.addf("pool.min_conns", "min_conns %d is negative; use 0 or more", p.MinConns)
	}
	// An unset max_conns is compared as its default: a min_conns above it
	// would be invalid once defaults are applied.
	switch {
	case p.MaxConns > 0 && p.MinConns > p.MaxConns:
		v.addf("pool.min_conns", "min_conns %d exceeds max_conns %d", p.MinConns, p.MaxConns)
	case p.MaxConns == 0 && p.MinConns > DefaultMaxConns:
		v.addf("pool.min_conns", "min_conns %d exceeds the default max_conns %d; raise max_conns or lower min_conns", p.MinConns, DefaultMaxConns)
	}
	v.duration("pool.max_conn_lifetime", p.MaxConnLifetime)
}

// name checks the name of a node or route.
func (v *validator) name(path, what, name string) {
	switch {
	case name == "":
		v.addf(path, "%s name is required", what)
	case strings.TrimSpace(name) == "":
		v.addf(path, "%s name %q is only whitespace", what, name)
	case !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }):
		v.addf(path, "%s name %q has characters that are not printable", what, name)
	case strings.TrimSpace(name) != name:
		v.addf(path, "%s name %q begins or ends with whitespace", what, name)
	}
}

// duration checks an optional positive duration.
func (v *validator) duration(path string, d Duration) {
	if std, ok := v.parseDuration(path, d); ok && std <= 0 {
		v.addf(path, "duration %q must be greater than zero; leave it unset for the default", string(d))
	}
}

// durationOrZero checks an optional duration that may be zero.
func (v *validator) durationOrZero(path string, d Duration) {
	if std, ok := v.parseDuration(path, d); ok && std < 0 {
		v.addf(path, "duration %q is negative; use 0s or more, or leave it unset for the default", string(d))
	}
}

// parseDuration parses a set duration, reporting one that does not parse.
func (v *validator) parseDuration(path string, d Duration) (time.Duration, bool) {
	if d == "" {
		return 0, false
	}
	std, err := d.Std()
	if err != nil {
		v.addf(path, "%v", err)
		return 0, false
	}
	return std, true
}

// oneOf checks an enumerated value.
func (v *validator) oneOf(path, field, value string, allowed []string) {
	if !slices.Contains(allowed, value) {
		v.addf(path, "unknown %s %q; allowed: %s", field, value, list(allowed))
	}
}

// list formats values for a message.
func list(values []string) string {
	return strings.Join(values, ", ")
}

// isEnvName reports whether s is a portable environment variable name,
// [A-Za-z_][A-Za-z0-9_]*.
func isEnvName(s string) bool {
	for i, r := range s {
		letter := r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z'
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return s != ""
}
