package provider

import (
	"slices"
	"testing"
)

func TestStreamedPublications(t *testing.T) {
	for _, tc := range []struct {
		command string
		want    []string
		known   bool
	}{
		{`START_REPLICATION SLOT "sub" LOGICAL 0/0 (proto_version '4', streaming 'parallel', origin 'any', publication_names '"orders"')`, []string{"orders"}, true},
		{`START_REPLICATION SLOT "s" LOGICAL 0/1A2B (proto_version '3', publication_names '"a","Mixed Case","qu""ote"', binary 'true')`, []string{"a", "Mixed Case", `qu"ote`}, true},
		{`START_REPLICATION SLOT "s" LOGICAL 0/0 (publication_names 'bare,Upper')`, []string{"bare", "upper"}, true},
		{`START_REPLICATION SLOT "s" LOGICAL 0/0 (proto_version '4', publication_names '"it''s"')`, []string{"it's"}, true},
		{`START_REPLICATION SLOT "s" LOGICAL 0/0 (proto_version '4', publication_names '"ünï"')`, []string{"ünï"}, true},
		// a name with a backslash: the apply worker writes E'…', which the
		// replication protocol refuses, so such a session never streams
		{`START_REPLICATION SLOT "s" LOGICAL 0/0 (publication_names E'"a\\b"')`, nil, false},
		// cut by track_activity_query_size
		{`START_REPLICATION SLOT "s" LOGICAL 0/0 (proto_version '4', publication_names '"ord`, nil, false},
		{`<insufficient privilege>`, nil, false},
		{`IDENTIFY_SYSTEM`, nil, false},
		{`START_REPLICATION SLOT "s" LOGICAL 0/0 (publication_names '"a",')`, nil, false},
		{`START_REPLICATION SLOT "s" LOGICAL 0/0 (publication_names '"a" "b"')`, nil, false},
	} {
		command := tc.command
		got, known := streamedPublications(&command)
		if known != tc.known || !slices.Equal(got, tc.want) {
			t.Errorf("streamedPublications(%s) = %q, %v; want %q, %v", tc.command, got, known, tc.want, tc.known)
		}
	}
	if got, known := streamedPublications(nil); known || got != nil {
		t.Errorf("a command not shown: %q, %v; want unknown", got, known)
	}
}
