package artifact

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"
)

// Marshal validates t and returns its canonical file bytes: nodes sorted
// primary first, then by name; routes sorted by name, each with its node
// list sorted; format_version set to [FormatVersion]; unset fields left out;
// JSON indented by two spaces, HTML characters unescaped, and a trailing
// newline. The same topology, in any order, always gives the same bytes, so
// the provider shows no diff when nothing changed.
//
// An invalid topology is refused with its [*ValidationError]. Marshal sorts
// a copy and never modifies t, and it does not apply defaults: the file
// holds what was set.
func Marshal(t Topology) ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	c := t.clone()
	c.FormatVersion = FormatVersion
	slices.SortFunc(c.Nodes, func(a, b Node) int {
		// false sorts before true, so the primary comes first.
		return cmp.Or(
			cmp.Compare(boolKey(a.Role != RolePrimary), boolKey(b.Role != RolePrimary)),
			cmp.Compare(a.Name, b.Name),
		)
	})
	slices.SortFunc(c.Routes, func(a, b Route) int { return cmp.Compare(a.Name, b.Name) })
	for _, r := range c.Routes {
		slices.Sort(r.Nodes)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func boolKey(b bool) int {
	if b {
		return 1
	}
	return 0
}
