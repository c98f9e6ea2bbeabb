package provider

import (
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/syncrep"
)

// PostgreSQL matches synchronous_standby_names against application_name
// with pg_strcasecmp (syncrep.c), which folds ASCII letters only;
// strings.EqualFold also folds "Ä" to "ä" and the Kelvin sign to "k", so a
// name set by hand on the server (the validator refuses non-ASCII in the
// configuration, not in what Read finds) was taken as listing a standby
// the primary never waits for.
func TestListedStandbyFoldsASCIIOnly(t *testing.T) {
	c := syncrep.Config{Method: syncrep.First, NumSync: 1, Standbys: []string{"\u212Aelvin", "STÄNBY"}}
	for _, app := range []string{"kelvin", "stänby"} {
		if listedStandby(c, app) {
			t.Errorf("listedStandby(%q) = true; PostgreSQL (pg_strcasecmp) does not match it", app)
		}
	}
	if got := outranking(syncrep.Config{Method: syncrep.First, NumSync: 1, Standbys: []string{"\u212Aelvin", "b"}}, []string{"b"}, []string{"kelvin"}); len(got) > 0 {
		t.Errorf("outranking = %q; the primary does not list kelvin, so it outranks nothing", got)
	}
	if listed, missing := listedStreaming(c, []string{"kelvin"}); listed != 0 || len(missing) != 2 {
		t.Errorf("listedStreaming = %d, %q; want 0 listed and both names missing", listed, missing)
	}
	if !listedStandby(syncrep.Config{Standbys: []string{"Replica-1"}}, "replica-1") {
		t.Error("listedStandby does not fold ASCII letters, as PostgreSQL does")
	}
}
