package importid

import (
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	hostile := []string{"plain", "with.dot", "with/slash", `with"quote`, "with space", "UPPER", "Überblick_日本", "100%", "%2F", "a/b%c/d"}
	for _, a := range hostile {
		for _, b := range hostile {
			id := Format(a, b)
			got, err := Parse(id, "database", "name")
			if err != nil {
				t.Fatalf("Parse(Format(%q, %q)) = %v", a, b, err)
			}
			if got[0] != a || got[1] != b {
				t.Errorf("round trip of (%q, %q) via %q gave %q", a, b, id, got)
			}
		}
	}
	if got := Format("app", "orders_pub"); got != "app/orders_pub" {
		t.Errorf("common case is not readable: %s", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"onlyone", "has 1 part(s); want 2: database/publication"},
		{"a/b/c", "has 3 part(s)"},
		{"a/", "publication is empty"},
		{"a/%zz", "bad escape"},
	} {
		_, err := Parse(tc.id, "database", "publication")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) error = %v, want it to contain %q", tc.id, err, tc.want)
		}
	}
}
