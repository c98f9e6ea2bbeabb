package conninfo

import (
	"maps"
	"slices"
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
	for _, s := range []string{
		"host", "host='x", "=x",
		"postgresql://rep:canary-secret@db.example/app?sslmode", // a parameter without "="
		"postgresql://rep:canary-secret@db.example/app?sslmode=a=b",
		"postgresql://rep:canary-secret@db.example/app?sslmode=disable&&user=x",
		"postgresql://rep:canary-secret%zz@db.example/app",
		"postgresql://rep:canary-secret%4@db.example/app",
		"postgresql://rep:canary-secret%00@db.example/app",
		"postgresql://rep:canary-secret@[::1",
		"postgresql://rep:canary-secret@[]/app",
		"postgresql://rep:canary-secret@[::1]x/app",
		"postgresql://rep:canary-secret@db.example/app?=1",
		"Postgresql://rep:canary-secret@db.example/app", // libpq takes the scheme in lower case only
	} {
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

// A keyword libpq does not know may be a misspelt password: Redacted hides
// its value and Secrets lists it (unless shorter than 4, a misspelt
// keepalives=1, which would mask every digit of a message).
func TestRedactedUnknownKeyword(t *testing.T) {
	p := Params{"host": "h", "pasword": "canary-typo", "keepalive": "1"}
	if r := p.Redacted(); strings.Contains(r, "canary-typo") || !strings.Contains(r, "host='h'") {
		t.Errorf("Redacted() = %s", r)
	}
	if got := p.Secrets(); !slices.Equal(got, []string{"canary-typo"}) {
		t.Errorf("Secrets() = %q, want the misspelt password only", got)
	}
}

// TestParseURI checks URIs against what libpq's PQconninfoParse (PostgreSQL
// 17) returned for each, its quirks included.
func TestParseURI(t *testing.T) {
	for _, c := range []struct {
		uri  string
		want Params
	}{
		{"postgresql://u:p%40@h:5/db?sslmode=disable", Params{"user": "u", "password": "p@", "host": "h", "port": "5", "dbname": "db", "sslmode": "disable"}},
		{"postgres://", Params{}},
		{"postgresql:///db", Params{"dbname": "db"}},
		{"postgresql://h:", Params{"host": "h"}},
		{"postgresql://h1,h2", Params{"host": "h1,h2", "port": ","}},
		{"postgresql://h1,h2:5433", Params{"host": "h1,h2", "port": ",5433"}},
		{"postgresql://h,[::1]:7,h3:8/db", Params{"host": "h,::1,h3", "port": ",7,8", "dbname": "db"}},
		{"postgresql://[::1]:5432/db", Params{"host": "::1", "port": "5432", "dbname": "db"}},
		{"postgresql://user:@h/db", Params{"user": "user", "host": "h", "dbname": "db"}},
		{"postgresql://:pw@h/db", Params{"password": "pw", "host": "h", "dbname": "db"}},
		{"postgresql://u:p:x@h/db", Params{"user": "u", "password": "p:x", "host": "h", "dbname": "db"}},
		{"postgresql://h/db?user=a@b", Params{"user": "a@b", "host": "h", "dbname": "db"}},
		{"postgresql://h?user=a@b", Params{"user": "h?user=a", "host": "b"}},
		{"postgresql://u@h/db?user=other", Params{"user": "other", "host": "h", "dbname": "db"}},
		{"postgresql://h/db?", Params{"host": "h", "dbname": "db"}},
		{"postgresql://h/db?sslmode=disable&", Params{"host": "h", "dbname": "db", "sslmode": "disable"}},
		{"postgresql://h/db?ssl=true", Params{"host": "h", "dbname": "db", "sslmode": "require"}},
		{"postgresql://h/db?application_name=a+b%20c", Params{"host": "h", "dbname": "db", "application_name": "a+b c"}},
		{"postgresql://h/d%62?%75ser=x", Params{"host": "h", "dbname": "db", "user": "x"}},
		{"postgresql://h/db?sslmode=", Params{"host": "h", "dbname": "db", "sslmode": ""}},
		{"postgresql://%68ost:54%33%32/db", Params{"host": "host", "port": "5432", "dbname": "db"}},
		{"postgresql://u:canary%C2%A7-uri%40%2F%3A%25%3F%26%3D%23@127.0.0.1:5432/app?application_name=uri%20app",
			Params{"user": "u", "password": "canary§-uri@/:%?&=#", "host": "127.0.0.1", "port": "5432", "dbname": "app", "application_name": "uri app"}},
	} {
		got, err := Parse(c.uri)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.uri, err)
			continue
		}
		if !maps.Equal(got, c.want) {
			t.Errorf("Parse(%q) = %v, want %v", c.uri, got, c.want)
		}
	}
}

// A password written into a URI without percent-encoding its "@", "/" or
// ":" spills into the host, the port or the database name, which plans
// and messages show: such a URI is refused (libpq takes the host "ss@h" or
// the port "pa" and cannot connect), and the error quotes none of it.
func TestParseURIPasswordNotEncoded(t *testing.T) {
	for _, uri := range []string{
		"postgresql://u:p@ss@h/db",
		"postgresql://u:canary-zq/ss@h/db",
		"postgresql://u:123/canary@h/db",
		"postgresql://u:canary%3A@h:zq:ss/db",
	} {
		_, err := Parse(uri)
		if err == nil {
			t.Errorf("Parse(%q) = nil error, want a refusal", uri)
			continue
		}
		for _, part := range []string{"canary", "ss@h", "zq", "123"} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("Parse(%q): the error %q quotes %q", uri, err, part)
			}
		}
	}
}

func TestChanges(t *testing.T) {
	from, _ := Parse("postgresql://u:canary-old@h:5432/app?application_name=by_hand&sslpassword=canary-ssl")
	to, _ := Parse("host=h port=5433 user=u dbname=app password=canary-new sslmode=disable")
	got := strings.Join(Changes(from, to), "; ")
	want := `port "5432" → "5433"; application_name "by_hand" → (none); password changes; sslmode (none) → "disable"; sslpassword removed`
	if got != want {
		t.Errorf("Changes = %s\nwant      %s", got, want)
	}
	if strings.Contains(got, "canary") {
		t.Errorf("Changes shows a secret: %s", got)
	}
	// A keyword libpq does not know (a misspelt password) is named, its
	// value never shown.
	typo, _ := Parse("host=h pasword=canary-typo")
	if got := strings.Join(Changes(Params{"host": "h"}, typo), "; "); got != "pasword added" {
		t.Errorf("Changes with a misspelt password = %q, want %q", got, "pasword added")
	}
	if c := Changes(from, from); len(c) != 0 {
		t.Errorf("Changes of a connection against itself: %q", c)
	}
}
