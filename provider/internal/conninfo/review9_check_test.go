package conninfo

import (
	"strings"
	"testing"
)

// Check refuses what libpq refuses only when it connects (a value outside a
// keyword's fixed choices, a port that is not a number) and what
// PQconninfoParse refuses (a keyword libpq does not have), and accepts the
// rest as libpq does: a value's case matters, an empty value is refused
// (but for a port: the default), a port list may leave a host's port out.
// No error quotes a password.
func TestParamsCheck(t *testing.T) {
	for _, tc := range []struct {
		conn, want string // want "" means accepted
	}{
		{"host=db sslmode=verify-full target_session_attrs=prefer-standby gssencmode=disable channel_binding=require", ""},
		{"host=a,b port=5432,,5433 load_balance_hosts=random sslcertmode=allow sslnegotiation=direct", ""},
		{"host=db port=' +5432 ' connect_timeout=' 10' password='s3cret'", ""},
		{"host=db port=''", ""},
		{"host=db sslmode='' password='s3cret'", `sslmode "" is not one of libpq's values`},
		{"host=db connect_timeout=10s", `connect_timeout "10s"`},
		{"postgresql://u:pw@db/app?ssl=true", ""},
		{"host=db sslmode=bogus password=s3cret", `sslmode "bogus" is not one of libpq's values`},
		{"host=db sslmode=Require", `sslmode "Require"`},
		{"postgresql://db/app?target_session_attrs=primay", `target_session_attrs "primay"`},
		{"host=db gssencmode=allow", `gssencmode "allow"`},
		{"host=db port=54x32", `port "54x32" is not a port number`},
		{"host=a,b port=5432,70000", `port "5432,70000"`},
		{"host=db port=0", `port "0"`},
	} {
		p, err := Parse(tc.conn)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.conn, err)
		}
		err = p.Check()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("Check(%q) = %v, want nil", tc.conn, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("Check(%q) = %v, want an error with %q", tc.conn, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "s3cret"):
			t.Errorf("Check(%q) = %v: the error quotes the password", tc.conn, err)
		}
	}
}

// Unknown names the first keyword libpq 18 does not have; Check leaves it.
func TestProvresUnknown(t *testing.T) {
	p, err := Parse("host=db passwrd=s3cret sslmode=require")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Unknown(); got != "passwrd" {
		t.Errorf("Unknown() = %q, want passwrd", got)
	}
	if err := p.Check(); err != nil {
		t.Errorf("Check() = %v, want nil: the keyword is Unknown's", err)
	}
	if p, _ := Parse("host=db sslkeylogfile=/tmp/k"); p.Unknown() != "" {
		t.Errorf("Unknown() = %q for a keyword of libpq 18", p.Unknown())
	}
}
