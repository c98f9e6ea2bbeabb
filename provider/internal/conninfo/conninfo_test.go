package conninfo

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	got, err := Parse(`host=db1 port = 5432 user='rep user' password='it\'s' application_name=standby\ 1 dbname=''`)
	if err != nil {
		t.Fatal(err)
	}
	want := Params{"host": "db1", "port": "5432", "user": "rep user", "password": "it's", "application_name": "standby 1", "dbname": ""}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, v := range []string{"plain", "with space", `quote'`, `back\slash`, "Ünïcode", "a=b"} {
		p := Params{"host": "h", "user": v, "application_name": v}
		back, err := Parse(p.String())
		if err != nil {
			t.Fatalf("Parse(%s): %v", p, err)
		}
		if back["user"] != v || back["application_name"] != v {
			t.Errorf("value %q came back as %q", v, back["user"])
		}
	}
	if s := (Params{"user": "u", "host": "h", "sslmode": "disable", "port": "5"}).String(); s != `host='h' port='5' user='u' sslmode='disable'` {
		t.Errorf("unstable order: %s", s)
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"host", "host='x", "=x"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
}

func TestRedacted(t *testing.T) {
	p := Params{"host": "h", "password": "secret"}
	if r := p.Redacted(); strings.Contains(r, "secret") {
		t.Errorf("Redacted leaks: %s", r)
	}
	if p["password"] != "secret" {
		t.Error("Redacted changed its receiver")
	}
}
