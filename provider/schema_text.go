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

// writeOnlyText says what a write-only password argument is and which CLIs
// take it, in every resource that has one.
func writeOnlyText(version string) string {
	return "Terraform sends it to the provider on every plan and apply but never stores it in the plan or the state, " +
		"so the provider cannot see a change of it: bump `" + version + "` to write a new password. " +
		"Needs Terraform 1.11 or OpenTofu 1.11 or later; older CLIs refuse it (\"WriteOnly Attribute Not Allowed\"): " +
		"use the attribute it replaces there."
}

// writeOnlyVersionText is the description of the version that goes with a
// write-only argument.
func writeOnlyVersionText(wo string) string {
	return "any number, stored in the state. The provider writes `" + wo + "` when the resource is created and whenever " +
		"this number changes; at any other apply the server keeps the password it has. Change it to rotate the password."
}
