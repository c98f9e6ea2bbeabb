package provider

import "strings"

// quotedList renders allowed values for a MarkdownDescription, from the same
// slice that feeds the validator, so docs and validation cannot drift apart.
func quotedList(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = "`" + v + "`"
	}
	return strings.Join(q, ", ")
}
