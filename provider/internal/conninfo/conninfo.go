// Package conninfo reads and writes libpq keyword/value connection strings
// (`host=db1 port=5432 user='rep user'`), the form of a standby's
// primary_conninfo and of a subscription's CONNECTION. Reading them back into
// fields is what lets `terraform plan` name the one field someone edited.
package conninfo

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Params are a connection string's keyword/value pairs.
type Params map[string]string

// Parse reads a connection string the way libpq does (PQconninfoParse):
// keyword/value, where values may be single-quoted, with \' and \\ escapes
// inside quotes or out, or a URI (postgresql://…, postgres://…: parseURI).
// PostgreSQL stores a subscription's CONNECTION and a standby's
// primary_conninfo as they were written, so a server can hold either form.
// An error never quotes the string: it may hold a password.
func Parse(s string) (Params, error) {
	if rest, ok := uriBody(s); ok {
		return parseURI(rest)
	}
	p := Params{}
	i := 0
	skipSpace := func() {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
	}
	for {
		skipSpace()
		if i >= len(s) {
			return p, nil
		}
		start := i
		for i < len(s) && s[i] != '=' && !isSpace(s[i]) {
			i++
		}
		key := s[start:i]
		skipSpace()
		if i >= len(s) || s[i] != '=' {
			// Never quote the text: it may hold a password.
			return nil, fmt.Errorf("connection string: missing \"=\" after the keyword at byte %d", start+1)
		}
		i++
		skipSpace()
		var val strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					val.WriteByte(s[i+1])
					i += 2
					continue
				}
				if c == '\'' {
					i++
					closed = true
					break
				}
				val.WriteByte(c)
				i++
			}
			if !closed {
				return nil, fmt.Errorf("connection string: unterminated quoted value for %q", key)
			}
		} else {
			for i < len(s) && !isSpace(s[i]) {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
				i++
			}
		}
		if key == "" {
			return nil, fmt.Errorf("connection string: empty keyword")
		}
		p[key] = val.String()
	}
}

// uriBody is s without its URI scheme, when s is a URI: libpq takes
// "postgresql://" and "postgres://", in lower case only.
func uriBody(s string) (string, bool) {
	for _, scheme := range []string{"postgresql://", "postgres://"} {
		if strings.HasPrefix(s, scheme) {
			return s[len(scheme):], true
		}
	}
	return "", false
}

// parseURI reads the part of a URI after its scheme as libpq's
// conninfo_uri_parse_options does, down to its quirks:
// [user[:password]@][host][:port][,host[:port]…][/dbname][?keyword=value&…].
// The credentials are what comes before the first "@" that precedes any
// "/"; user, password, host, port, dbname and every query keyword and value
// are percent-decoded ("+" stays "+"); an IPv6 address is in brackets; a
// query parameter overrides what the URI's parts said; an empty part sets
// nothing; "ssl=true" is sslmode=require.
func parseURI(s string) (Params, error) {
	p := Params{}
	set := func(key, raw string) error {
		v, err := percentDecode(raw)
		if err != nil {
			return fmt.Errorf("connection URI: %s in the %s", err, key)
		}
		if v != "" {
			p[key] = v
		}
		return nil
	}
	if at := strings.IndexAny(s, "@/"); at >= 0 && s[at] == '@' {
		user, password, hasPassword := strings.Cut(s[:at], ":")
		if err := set("user", user); err != nil {
			return nil, err
		}
		if hasPassword {
			if err := set("password", password); err != nil {
				return nil, err
			}
		}
		s = s[at+1:]
	}
	// A password with "@", "/" or ":" not percent-encoded spills into the
	// host, the port or the database name, where it would be shown as one
	// (libpq cannot connect with it either): refused, never quoted.
	if strings.Contains(s[:indexOrLen(s, "?")], "@") {
		return nil, errors.New(`connection URI: an "@" after the host; percent-encode "@", "/" and ":" in a user name or password (%40, %2F, %3A)`)
	}
	var hosts, ports []string
	for {
		var host string
		if strings.HasPrefix(s, "[") {
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, fmt.Errorf(`connection URI: no "]" after an IPv6 address`)
			}
			if end == 1 {
				return nil, fmt.Errorf("connection URI: an empty IPv6 address")
			}
			host, s = s[1:end], s[end+1:]
			if s != "" && strings.IndexByte(":/?,", s[0]) < 0 {
				return nil, fmt.Errorf(`connection URI: unexpected character after an IPv6 address (expected ":" or "/")`)
			}
		} else {
			end := indexOrLen(s, ":/?,")
			host, s = s[:end], s[end:]
		}
		port := ""
		if strings.HasPrefix(s, ":") {
			end := indexOrLen(s[1:], "/?,") + 1
			port, s = s[1:end], s[end:]
		}
		hosts, ports = append(hosts, host), append(ports, port)
		if !strings.HasPrefix(s, ",") {
			break
		}
		s = s[1:]
	}
	if err := set("host", strings.Join(hosts, ",")); err != nil {
		return nil, err
	}
	// As libpq: two hosts without a port give port ",".
	if err := set("port", strings.Join(ports, ",")); err != nil {
		return nil, err
	}
	if strings.Trim(p["port"], "0123456789,") != "" {
		return nil, errors.New(`connection URI: a port that is not a number; percent-encode "@", "/" and ":" in a user name or password (%40, %2F, %3A)`)
	}
	if strings.HasPrefix(s, "/") {
		end := indexOrLen(s, "?")
		if err := set("dbname", s[1:end]); err != nil {
			return nil, err
		}
		s = s[end:]
	}
	if s == "" {
		return p, nil
	}
	// s starts with "?": the query, whose last parameter may end with "&".
	for q := s[1:]; q != ""; {
		end := indexOrLen(q, "&")
		param := q[:end]
		q = q[min(end+1, len(q)):]
		rawKey, rawValue, ok := strings.Cut(param, "=")
		if !ok {
			return nil, fmt.Errorf(`connection URI: a query parameter without "="`)
		}
		if strings.Contains(rawValue, "=") {
			return nil, fmt.Errorf(`connection URI: a query parameter with a second "="`)
		}
		key, err := percentDecode(rawKey)
		if err != nil {
			return nil, fmt.Errorf("connection URI: %s in a query keyword", err)
		}
		value, err := percentDecode(rawValue)
		if err != nil {
			return nil, fmt.Errorf("connection URI: %s in the value of %q", err, key)
		}
		if key == "ssl" && value == "true" {
			key, value = "sslmode", "require"
		}
		if key == "" {
			return nil, fmt.Errorf("connection URI: empty keyword")
		}
		p[key] = value
	}
	return p, nil
}

// indexOrLen is the index of the first of chars in s, or len(s).
func indexOrLen(s, chars string) int {
	if i := strings.IndexAny(s, chars); i >= 0 {
		return i
	}
	return len(s)
}

// percentDecode decodes %XX as libpq does: every other byte, "+" included,
// stands for itself; %00 is refused.
func percentDecode(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", fmt.Errorf("an invalid percent-encoding")
		}
		c := unhex(s[i+1])<<4 | unhex(s[i+2])
		if c == 0 {
			return "", fmt.Errorf("a forbidden %%00")
		}
		b.WriteByte(c)
		i += 2
	}
	return b.String(), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// Quote quotes a value for a connection string: always single-quoted, with
// backslash and quote escaped, so any value is safe.
func Quote(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// String renders the parameters in a stable order (host, port, user, dbname
// first, the rest sorted), skipping empty values, every value quoted.
func (p Params) String() string {
	var b strings.Builder
	for _, k := range p.keys() {
		if p[k] == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(Quote(p[k]))
	}
	return b.String()
}

// keys are p's keywords in String's order.
func (p Params) keys() []string {
	first := []string{"host", "hostaddr", "port", "user", "dbname"}
	var keys []string
	seen := map[string]bool{}
	for _, k := range first {
		if _, ok := p[k]; ok {
			keys = append(keys, k)
			seen[k] = true
		}
	}
	var rest []string
	for k := range p {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(keys, rest...)
}

// Redacted is String with every secret (SecretKeywords) replaced, for
// messages and logs.
func (p Params) Redacted() string {
	c := Params{}
	for k, v := range p {
		c[k] = v
	}
	for k := range c {
		// As Changes: a secret, or a keyword libpq does not know (a
		// misspelt password), never shows its value.
		if c[k] != "" && (slices.Contains(SecretKeywords, k) || !slices.Contains(Keywords, k)) {
			c[k] = "REDACTED"
		}
	}
	return c.String()
}

// Changes names, keyword by keyword in String's order, how the connection to
// differs from from: `port "5432" → "5433"`, `application_name "x" →
// (none)`; a secret keyword's value is never shown (`password changes`).
// A sensitive attribute shows only "(sensitive value)" in a plan: this is
// what tells the reader which parameter differs.
func Changes(from, to Params) []string {
	both := maps.Clone(from)
	maps.Copy(both, to)
	var out []string
	for _, k := range both.keys() {
		a, inA := from[k]
		b, inB := to[k]
		if inA == inB && a == b {
			continue
		}
		if !shownKeywords[k] { // a secret, or a keyword nobody knows (a misspelt password)
			switch {
			case !inA:
				out = append(out, k+" added")
			case !inB:
				out = append(out, k+" removed")
			default:
				out = append(out, k+" changes")
			}
			continue
		}
		shown := func(v string, ok bool) string {
			if !ok {
				return "(none)"
			}
			return strconv.Quote(v)
		}
		out = append(out, fmt.Sprintf("%s %s → %s", k, shown(a, inA), shown(b, inB)))
	}
	return out
}

// shownKeywords are the libpq keywords whose values Changes shows: none of
// them holds a secret. Any other keyword (SecretKeywords, one libpq does not
// know, such as a misspelt "pasword") is named without its value.
var shownKeywords = map[string]bool{
	"application_name": true, "channel_binding": true, "client_encoding": true, "connect_timeout": true, "dbname": true,
	"fallback_application_name": true, "gssencmode": true, "host": true, "hostaddr": true, "keepalives": true,
	"keepalives_count": true, "keepalives_idle": true, "keepalives_interval": true, "krbsrvname": true,
	"load_balance_hosts": true, "passfile": true, "port": true, "replication": true, "require_auth": true, "service": true,
	"sslcert": true, "sslcompression": true, "sslcrl": true, "sslcrldir": true, "sslkey": true, "sslmode": true,
	"sslnegotiation": true, "sslrootcert": true, "sslsni": true, "ssl_max_protocol_version": true, "ssl_min_protocol_version": true,
	"target_session_attrs": true, "tcp_user_timeout": true, "user": true,
}

// Secrets are the values of p's secret keywords (SecretKeywords), for the
// masking of statements and logs that quote p.
func (p Params) Secrets() []string {
	var out []string
	for _, k := range SecretKeywords {
		if p[k] != "" {
			out = append(out, p[k])
		}
	}
	for _, k := range p.keys() {
		// A misspelt password; a value shorter than 4 (a misspelt
		// keepalives=1) is left out, as a secret's short lines are, so
		// that it does not mask every digit of a message.
		if len(p[k]) >= 4 && !slices.Contains(Keywords, k) {
			out = append(out, p[k])
		}
	}
	return out
}

// Keywords are libpq's connection keywords (PQconndefaults of PostgreSQL
// 18's libpq, which holds those of 15, 16 and 17 too), the only keys a
// connection string can hold; libpq refuses any other.
var Keywords = []string{
	"application_name", "channel_binding", "client_encoding", "connect_timeout", "dbname",
	"fallback_application_name", "gssdelegation", "gssencmode", "gsslib", "host", "hostaddr",
	"keepalives", "keepalives_count", "keepalives_idle", "keepalives_interval", "krbsrvname",
	"load_balance_hosts", "max_protocol_version", "min_protocol_version", "oauth_client_id",
	"oauth_client_secret", "oauth_issuer", "oauth_scope", "options", "passfile", "password", "port",
	"replication", "require_auth", "requirepeer", "scram_client_key", "scram_server_key", "service",
	"ssl_max_protocol_version", "ssl_min_protocol_version", "sslcert", "sslcertmode", "sslcompression",
	"sslcrl", "sslcrldir", "sslkey", "sslkeylogfile", "sslmode", "sslnegotiation", "sslpassword",
	"sslrootcert", "sslsni", "target_session_attrs", "tcp_user_timeout", "user",
}

// Choices are the keywords whose value libpq takes from a fixed list, and
// that list. libpq stores any value and checks it only when it connects
// (PostgreSQL's CREATE and ALTER SUBSCRIPTION … CONNECTION check only the
// keywords), so a typo here is caught by no one before a connection fails.
// libpq compares these values case-sensitively.
var Choices = map[string][]string{
	"sslmode":              {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"},
	"gssencmode":           {"disable", "prefer", "require"},
	"channel_binding":      {"disable", "prefer", "require"},
	"target_session_attrs": {"any", "read-write", "read-only", "primary", "standby", "prefer-standby"},
	"load_balance_hosts":   {"disable", "random"},
	"sslcertmode":          {"disable", "allow", "require"},
	"sslnegotiation":       {"postgres", "direct"},
}

// CheckValue reports why libpq would refuse value for key when it connects,
// or nil: a value outside key's Choices (an empty one too), a port that is
// not a number from 1 to 65535 (a comma-separated list of them for several
// hosts, where an empty item is the default port), or a connect_timeout
// that is not an integer. Other keywords are not checked. The error quotes
// the value: none of these keywords holds a secret.
func CheckValue(key, value string) error {
	const fix = "libpq would refuse it at every connection, and PostgreSQL stores a subscription's connection without connecting"
	switch choices, ok := Choices[key]; {
	case ok && !slices.Contains(choices, value):
		return fmt.Errorf("%s %q is not one of libpq's values (%s): %s. Write one of them (they are lower case)",
			key, value, quoteAll(choices), fix)
	case key == "port":
		for _, port := range strings.Split(value, ",") {
			if port = strings.Trim(port, " \t\n\r"); port == "" {
				continue
			}
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("port %q is not a port number (1 to 65535, or one per host separated by commas): %s. Write the number", value, fix)
			}
		}
	case key == "connect_timeout":
		if _, err := strconv.Atoi(strings.Trim(value, " \t\n\r")); err != nil {
			return fmt.Errorf("connect_timeout %q is not a whole number of seconds: %s. Write the number, or leave connect_timeout out", value, fix)
		}
	}
	return nil
}

// KeywordsMajor is the major version of the libpq whose keywords Keywords
// lists. A newer libpq may have more: a subscriber checks a subscription's
// connection with its own libpq (CREATE and ALTER SUBSCRIPTION … CONNECTION
// refuse a keyword it does not have), and that libpq may be newer than the
// server (Debian's and Ubuntu's servers load the system's libpq.so.5).
const KeywordsMajor = 18

// Check reports the first keyword of p whose value libpq would refuse when
// it connects (CheckValue), in String's order, or nil. Keywords that
// Keywords does not list are Unknown's. The error never quotes a secret's
// value.
func (p Params) Check() error {
	for _, k := range p.keys() {
		if err := CheckValue(k, p[k]); err != nil {
			return err
		}
	}
	return nil
}

// KeywordSince is the libpq major version that added each keyword of
// Keywords newer than libpq 15 (PQconndefaults of libpq 15, 16, 17 and 18:
// 36, 40, 41 and 50 keywords).
var KeywordSince = map[string]int{
	"gssdelegation": 16, "load_balance_hosts": 16, "require_auth": 16, "sslcertmode": 16,
	"sslnegotiation":       17,
	"max_protocol_version": 18, "min_protocol_version": 18, "oauth_client_id": 18, "oauth_client_secret": 18,
	"oauth_issuer": 18, "oauth_scope": 18, "scram_client_key": 18, "scram_server_key": 18, "sslkeylogfile": 18,
}

// Newer is the first keyword of p, in String's order, that libpq added
// after major (KeywordSince), and the version that added it; "", 0 when
// there is none.
func (p Params) Newer(major int) (string, int) {
	for _, k := range p.keys() {
		if since := KeywordSince[k]; since > major {
			return k, since
		}
	}
	return "", 0
}

// Unknown is the first keyword of p, in String's order, that libpq
// KeywordsMajor does not have (its PQconninfoParse refuses the string), or
// "".
func (p Params) Unknown() string {
	for _, k := range p.keys() {
		if !slices.Contains(Keywords, k) {
			return k
		}
	}
	return ""
}

// quoteAll writes each value in double quotes, separated by commas.
func quoteAll(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = strconv.Quote(v)
	}
	return strings.Join(quoted, ", ")
}

// SecretKeywords are the keywords whose value is a secret.
var SecretKeywords = []string{"oauth_client_secret", "password", "scram_client_key", "scram_server_key", "sslpassword"}
