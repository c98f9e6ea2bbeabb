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
	for _, s := range []string{"host", "host='x", "=x", "postgresql://rep:canary-secret@db.example/app"} {
		_, err := Parse(s)
		if err == nil {
			t.Errorf("Parse(%q) accepted", s)
		} else if strings.Contains(err.Error(), "canary-secret") {
			t.Errorf("Parse's error quotes the password of a URI: %v", err)
		}
	}
}

func TestRedacted(t *testing.T) {
	p := Params{"host": "h"}
	for i, k := range SecretKeywords {
		p[k] = "secret-" + k
		if got := p.Secrets(); len(got) != i+1 {
			t.Errorf("Secrets() = %q, want %d values", got, i+1)
		}
	}
	r := p.Redacted()
	for _, k := range SecretKeywords {
		if strings.Contains(r, "secret-"+k) {
			t.Errorf("Redacted leaks %s: %s", k, r)
		}
	}
	p["password"] = "secret"
	if p["password"] != "secret" {
		t.Error("Redacted changed its receiver")
	}
}
