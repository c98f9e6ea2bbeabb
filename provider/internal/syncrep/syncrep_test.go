package syncrep

import (
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]Config{
		`FIRST 1 ("replica-1", "replica-2")`: {First, 1, []string{"replica-1", "replica-2"}},
		`first 2 (a, b, c)`:                  {First, 2, []string{"a", "b", "c"}},
		`ANY 2 (a,"B b",c)`:                  {Any, 2, []string{"a", "B b", "c"}},
		`Any 1 (*)`:                          {Any, 1, []string{"*"}},
		`2 (a, b)`:                           {First, 2, []string{"a", "b"}},
		`a, b`:                               {First, 1, []string{"a", "b"}},
		`"replica-1"`:                        {First, 1, []string{"replica-1"}},
		`*`:                                  {First, 1, []string{"*"}},
		`1, 2`:                               {First, 1, []string{"1", "2"}},
		`FIRST 1 ("say ""hi""", Ünï)`:        {First, 1, []string{`say "hi"`, "Ünï"}},
		`FIRST 1 (first_node)`:               {First, 1, []string{"first_node"}},
	} {
		got, ok, err := Parse(in)
		if err != nil || !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("Parse(%q) = %+v, %v, %v; want %+v", in, got, ok, err, want)
		}
	}
	for _, in := range []string{"", "  "} {
		if _, ok, err := Parse(in); ok || err != nil {
			t.Errorf("Parse(%q): ok %v, err %v; want not ok, no error", in, ok, err)
		}
	}
	for _, in := range []string{`FIRST (a)`, `ANY 1 a`, `1 (a`, `0 (a)`, `a b`, `replica-1`, `"a`, `a,`, `FIRST 1 (a) b`} {
		if got, _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", in, got)
		}
	}
}

func TestStringRoundTrips(t *testing.T) {
	for _, c := range []Config{
		{First, 1, []string{"replica-1"}},
		{Any, 2, []string{"a", `Stand "by" ü`, "with space", "UPPER", "*"}},
	} {
		got, ok, err := Parse(c.String())
		if err != nil || !ok || !reflect.DeepEqual(got, c) {
			t.Errorf("Parse(%q) = %+v, %v, %v; want %+v", c.String(), got, ok, err, c)
		}
	}
	if got := (Config{First, 1, []string{"a", "b"}}).String(); got != `FIRST 1 ("a", "b")` {
		t.Errorf("String() = %s", got)
	}
}

// Fold folds A to Z only, as pg_strcasecmp does for the ASCII names a
// standby can report.
func TestFold(t *testing.T) {
	for in, want := range map[string]string{"Replica-1": "replica-1", `A "B" c`: `a "b" c`, "*": "*", "ÄB": "Äb"} {
		if got := Fold(in); got != want {
			t.Errorf("Fold(%q) = %q, want %q", in, got, want)
		}
	}
}
