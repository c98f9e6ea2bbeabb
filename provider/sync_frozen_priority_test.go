package provider

import (
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/syncrep"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestAccSynchronousReplication_frozenStandbyFirstInPriority: with method
// "first" PostgreSQL makes the highest-priority listed standbys whose WAL
// senders stream synchronous, and a standby that stopped answering streams
// (pg_stat_replication) until wal_sender_timeout ends its sender. So
// FIRST 1 ("frozen", "healthy") makes the frozen one synchronous, and
// every commit waits for it, however well "healthy" confirms: the check
// must not count "healthy" while a silent standby outranks it. The old
// code applied it, and the next commit did not return within 5s
// (pg_stat_replication: replica-1=sync, replica-2=potential); now apply
// refuses it, naming the frozen standby, and commits go on; thawed, the
// same configuration applies.
func TestAccSynchronousReplication_frozenStandbyFirstInPriority(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(2))
	frozen, healthy := topo.Standbys[0], topo.Standbys[1]
	config := syncConfig(topo, fmt.Sprintf(`
  standby_names = [%q, %q]
  method        = "first"
  num_sync      = 1
`, frozen.Name, healthy.Name))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			return commitWithin(topo.Primary, 10*time.Second)
		},
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					if err := frozen.Freeze(); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = frozen.Thaw() })
				},
				Config:      config,
				ExpectError: regexp.MustCompile(`(?s)Synchronous Standby Not Confirming.*method\s+=\s+"first".*"` + frozen.Name + `"\s+streams`),
			},
			{
				PreConfig: func() {
					if got := queryValue[string](t, topo.Primary, "postgres", `SHOW synchronous_standby_names`); got != "" {
						t.Fatalf("synchronous_standby_names = %q after the refused apply, want it unchanged (empty)", got)
					}
					if err := commitWithin(topo.Primary, 5*time.Second); err != nil {
						t.Fatal(err)
					}
					if err := frozen.Thaw(); err != nil {
						t.Fatal(err)
					}
				},
				Config: config,
				Check: func(*terraform.State) error {
					return commitWithin(topo.Primary, 10*time.Second)
				},
			},
		},
	})
}

// TestOutranking: which silent standbys method first would make
// synchronous ahead of the confirming ones.
func TestOutranking(t *testing.T) {
	for _, c := range []struct {
		cfg                syncrep.Config
		confirming, silent []string
		want               []string
	}{
		{syncrep.Config{Method: syncrep.First, NumSync: 1, Standbys: []string{"a", "b"}}, []string{"b"}, []string{"a"}, []string{"a"}},
		{syncrep.Config{Method: syncrep.First, NumSync: 1, Standbys: []string{"A", "b"}}, []string{"b"}, []string{"a"}, []string{"a"}}, // names match case-insensitively
		{syncrep.Config{Method: syncrep.First, NumSync: 1, Standbys: []string{"a", "b"}}, []string{"a"}, []string{"b"}, nil},           // ranked after: never taken
		{syncrep.Config{Method: syncrep.First, NumSync: 2, Standbys: []string{"a", "b", "c"}}, []string{"a", "c"}, []string{"b"}, []string{"b"}},
		{syncrep.Config{Method: syncrep.Any, NumSync: 1, Standbys: []string{"a", "b"}}, []string{"b"}, []string{"a"}, nil},        // quorum
		{syncrep.Config{Method: syncrep.First, NumSync: 1, Standbys: []string{"*"}}, []string{"b"}, []string{"a"}, []string{"a"}}, // a tie
		{syncrep.Config{Method: syncrep.First, NumSync: 1, Standbys: []string{"a", "b"}}, nil, []string{"a"}, nil},                // too few confirm: another refusal
		{syncrep.Config{Method: syncrep.First, NumSync: 1, Standbys: []string{"b"}}, []string{"b"}, []string{"a"}, nil},           // not listed
	} {
		if got := outranking(c.cfg, c.confirming, c.silent); !slices.Equal(got, c.want) {
			t.Errorf("outranking(%s, confirming %q, silent %q) = %q, want %q", c.cfg, c.confirming, c.silent, got, c.want)
		}
	}
}
