// Package conninfo reads and writes libpq keyword/value connection strings
// (`host=db1 port=5432 user='rep user'`), the form of a standby's
// primary_conninfo and of a subscription's CONNECTION. Reading them back into
// fields is what lets `terraform plan` name the one field someone edited.
package conninfo

import (
	"fmt"
	"sort"
	"strings"
)

// Params are a connection string's keyword/value pairs.
type Params map[string]string

// Parse reads a keyword/value connection string the way libpq does: values
// may be single-quoted, with \' and \\ escapes inside quotes or out. URIs
// (postgres://…) are not accepted: PostgreSQL stores what it was given, and
// the provider always writes keyword/value.
func Parse(s string) (Params, error) {
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
			// Never quote the text: a URI (postgresql://user:secret@host)
			// is read as one keyword, password included.
			return nil, fmt.Errorf("connection string: missing \"=\" after the keyword at byte %d (a keyword=value string, not a URI, is expected)", start+1)
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

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// Quote quotes a value for a connection string: always single-quoted, with
// backslash and quote escaped, so any value is safe.
func Quote(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// String renders the parameters in a stable order (host, port, user, dbname
// first, the rest sorted), skipping empty values, every value quoted.
func (p Params) String() string {
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
	keys = append(keys, rest...)
	var b strings.Builder
	for _, k := range keys {
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

// Redacted is String with every secret (SecretKeywords) replaced, for
// messages and logs.
func (p Params) Redacted() string {
	c := Params{}
	for k, v := range p {
		c[k] = v
	}
	for _, k := range SecretKeywords {
		if c[k] != "" {
			c[k] = "REDACTED"
		}
	}
	return c.String()
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
	return out
}

// Keywords are libpq's connection keywords (PQconndefaults, PostgreSQL 18),
// the only keys a connection string can hold; libpq refuses any other.
var Keywords = []string{
	"application_name", "channel_binding", "client_encoding", "connect_timeout", "dbname",
	"fallback_application_name", "gssdelegation", "gssencmode", "gsslib", "host", "hostaddr",
	"keepalives", "keepalives_count", "keepalives_idle", "keepalives_interval", "krbsrvname",
	"load_balance_hosts", "max_protocol_version", "min_protocol_version", "oauth_client_id",
	"oauth_client_secret", "oauth_issuer", "oauth_scope", "options", "passfile", "password", "port",
	"replication", "require_auth", "requirepeer", "scram_client_key", "scram_server_key", "service",
	"ssl_max_protocol_version", "ssl_min_protocol_version", "sslcert", "sslcertmode", "sslcompression",
	"sslcrl", "sslcrldir", "sslkey", "sslmode", "sslnegotiation", "sslpassword", "sslrootcert", "sslsni",
	"target_session_attrs", "tcp_user_timeout", "user",
}

// SecretKeywords are the keywords whose value is a secret.
var SecretKeywords = []string{"oauth_client_secret", "password", "scram_client_key", "scram_server_key", "sslpassword"}
