package provider

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// A connection that waits for a place past admit's bound fails with a
// message that names the limit that held it back, the cause (the
// provider's own operations held every connection it leaves) and the fix:
// raising that limit, or running fewer operations at once. A connection
// held back both by the role's room and by its pool's cap (a pool kept for
// a database missing when it was made, sized once it exists) named the
// role's CONNECTION LIMIT when the database's was the one reached, and
// told the user to lower max_connections, which shortens no wait.
// statement_timeout 1 s and connect_timeout 2 s make admit's bound 14 s.
func TestRoomfixTimedOutWaitNamesTheLimit(t *testing.T) {
	node := testAccTopology(t).Primary
	setup := func(t *testing.T, role string) (*server, []string) {
		dbs := roleOfLimit2In3Databases(t, node, role)
		return newServer(connSettings{Host: node.Host, Port: int64(node.Port), Database: dbs[0], Username: role,
			SSLMode: "disable", MaxConnections: 4, ConnectTimeout: 2, StatementTimeout: "1s"}), dbs
	}
	pool := func(t *testing.T, s *server, database string) *pgxpool.Pool {
		p, err := s.Pool(context.Background(), database)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeTestPool(p) })
		return p
	}
	hold := func(t *testing.T, p *pgxpool.Pool) {
		c, err := p.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Release)
	}
	// waited is the error of one more connection of p, past admit's bound.
	waited := func(t *testing.T, p *pgxpool.Pool) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		began := time.Now()
		c, err := p.Acquire(ctx)
		if err == nil {
			c.Release()
			t.Fatalf("a connection to %s was made, every place held", p.Config().ConnConfig.Database)
		}
		t.Logf("after %s: %v", time.Since(began).Round(time.Millisecond), err)
		return err
	}
	says := func(t *testing.T, err error, want []string, not string) {
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("the error does not say %q: %v", w, err)
			}
		}
		if strings.Contains(err.Error(), not) {
			t.Errorf("the error says %q, which is not the limit reached: %v", not, err)
		}
	}

	t.Run("database limit and role room both full", func(t *testing.T) {
		t.Parallel()
		role := "roomfix_wait_db"
		s, dbs := setup(t, role)
		execSQL(t, node, "postgres", `ALTER ROLE `+role+` CONNECTION LIMIT 3`)
		p0 := pool(t, s, dbs[0])
		late := role + "_late"
		p := keptPoolThenCreated(t, s, node, late, `OWNER `+role+` CONNECTION LIMIT 1`)
		hold(t, p) // the database's one place, sized to it (the role left 2)
		hold(t, p0)
		hold(t, p0) // the role's third place
		says(t, waited(t, p), []string{s.describe(), `CONNECTION LIMIT of database "` + late + `"`,
			`ALTER DATABASE "` + late + `" CONNECTION LIMIT`, "-parallelism"}, "ALTER ROLE")
	})
	t.Run("role limit caps the pool and fills the room", func(t *testing.T) {
		t.Parallel()
		role := "roomfix_wait_rolecap"
		s, dbs := setup(t, role)
		p0 := pool(t, s, dbs[0])
		late := role + "_late"
		p := keptPoolThenCreated(t, s, node, late, `OWNER `+role)
		hold(t, p0) // held when late's pool is sized: the role leaves it 1
		hold(t, p)
		says(t, waited(t, p), []string{s.describe(), `CONNECTION LIMIT of the provider's role "` + role + `"`,
			`ALTER ROLE "` + role + `" CONNECTION LIMIT`, "-parallelism"}, "ALTER DATABASE")
	})
	t.Run("role room full", func(t *testing.T) {
		t.Parallel()
		role := "roomfix_wait_role"
		s, dbs := setup(t, role)
		p0 := pool(t, s, dbs[0])
		hold(t, p0)
		hold(t, p0)
		_, err := s.Pool(context.Background(), dbs[1])
		if err == nil {
			t.Fatalf("the pool of %s was made, the role's places held", dbs[1])
		}
		t.Logf("the pool of %s: %v", dbs[1], err)
		says(t, err, []string{s.describe(), `CONNECTION LIMIT of the provider's role "` + role + `"`,
			`ALTER ROLE "` + role + `" CONNECTION LIMIT`, "-parallelism"}, "ALTER DATABASE")
	})
}
