// Package importid is the one import ID format of every pgreplication
// resource: its parts joined by "/", with "%" and "/" inside a part escaped
// as %25 and %2F. Any legal PostgreSQL identifier round-trips, including ones
// with dots, slashes, quotes, spaces, upper case and non-ASCII letters, and
// the common case stays readable: `app/orders_pub`.
package importid

import (
	"fmt"
	"net/url"
	"strings"
)

var escaper = strings.NewReplacer("%", "%25", "/", "%2F")

// Format joins parts into an import ID.
func Format(parts ...string) string {
	escaped := make([]string, len(parts))
	for i, p := range parts {
		escaped[i] = escaper.Replace(p)
	}
	return strings.Join(escaped, "/")
}

// Parse splits an import ID into exactly len(names) parts; names describe
// the parts in the error message (e.g. "database", "publication").
func Parse(id string, names ...string) ([]string, error) {
	raw := strings.Split(id, "/")
	want := strings.Join(names, "/")
	if len(raw) != len(names) {
		return nil, fmt.Errorf("import ID %q has %d part(s); want %d: %s (escape %% as %%25 and / as %%2F inside a part)", id, len(raw), len(names), want)
	}
	parts := make([]string, len(raw))
	for i, r := range raw {
		p, err := url.PathUnescape(r)
		if err != nil {
			return nil, fmt.Errorf("import ID %q: part %s %q has a bad escape: %v (escape %% as %%25 and / as %%2F)", id, names[i], r, err)
		}
		if p == "" {
			return nil, fmt.Errorf("import ID %q: %s is empty; want %s", id, names[i], want)
		}
		parts[i] = p
	}
	return parts, nil
}
