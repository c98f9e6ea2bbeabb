package compat_test

import (
	"context"
	"testing"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/allocs"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/stdlib/compat"
)

// TestDBResolverAndRouter: the same GORM code on dbresolver and on a
// Router. Both read from the standbys; with one standby stopped, reads
// through dbresolver fail while reads through the Router do not.
func TestDBResolverAndRouter(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE VIEW gorm_where AS "+whereSQL); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)

	before, err := compat.OpenWithDBResolver(topo.Primary.DSN(), topo.Standbys[0].DSN(), topo.Standbys[1].DSN())
	if err != nil {
		t.Fatal(err)
	}
	a := topo.Artifact()
	a.Health = artifact.Health{Interval: "200ms", Timeout: "2s", EjectAfter: 1, ReadmitAfter: 1}
	r, err := routerlib.New(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	after, err := compat.OpenOnRouter(r)
	if err != nil {
		t.Fatal(err)
	}
	// The application's code, the same for both.
	read := func(db *gorm.DB) (GormWhere, error) {
		var w GormWhere
		err := db.Session(&gorm.Session{Logger: logger.Discard}).WithContext(ctx).Take(&w).Error
		return w, err
	}
	for name, db := range map[string]*gorm.DB{"dbresolver": before, "routerlib": after} {
		w, err := read(db)
		if err != nil || !isStandby(topo, where(w)) {
			t.Errorf("%s: a read ran on %+v (%v), want a standby", name, w, err)
		}
	}

	if err := topo.Standbys[0].Stop(ctx); err != nil {
		t.Fatal(err)
	}
	failed := map[string]int{}
	deadline := time.Now().Add(2 * time.Second)
	reads := 0
	for ; time.Now().Before(deadline) || reads < 40; reads++ {
		for name, db := range map[string]*gorm.DB{"dbresolver": before, "routerlib": after} {
			if _, err := read(db); err != nil {
				failed[name]++
			}
		}
	}
	t.Logf("of %d reads each in the 2 s after a standby stopped, failed: %v", reads, failed)
	if failed["routerlib"] != 0 {
		t.Errorf("%d reads through the Router failed with one standby stopped; want 0", failed["routerlib"])
	}
	if failed["dbresolver"] == 0 {
		t.Errorf("no read through dbresolver failed with one standby stopped: the comparison proves nothing")
	}
}

// TestGORMAllocationsAtMostDBResolver: a GORM read on a Router allocates no
// more than the same read through dbresolver on pgx's own driver, both for
// the peer benchmark's one column by primary key and for a whole row. The
// Router routes each statement and takes its connection from a pool; the
// driver saves more than that in converting rows.
func TestGORMAllocationsAtMostDBResolver(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE IF NOT EXISTS alloc_books (id int PRIMARY KEY, title text, author text, year int, price float8, created_at timestamptz)",
		"INSERT INTO alloc_books VALUES (1, 'a title', 'an author', 1999, 9.5, now()) ON CONFLICT DO NOTHING",
	} {
		if err := topo.Primary.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	waitReplayed(t, topo)
	resolver, err := compat.OpenWithDBResolver(topo.Primary.DSN(), topo.Standbys[0].DSN(), topo.Standbys[1].DSN())
	if err != nil {
		t.Fatal(err)
	}
	r, err := routerlib.New(ctx, topo.Artifact())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	routed, err := compat.OpenOnRouter(r)
	if err != nil {
		t.Fatal(err)
	}
	type allocBook struct {
		ID        int
		Title     string
		Author    string
		Year      int
		Price     float64
		CreatedAt time.Time
	}
	reads := map[string]func(db *gorm.DB) error{
		"one column": func(db *gorm.DB) error {
			var b struct{ Title string }
			return db.WithContext(ctx).Table("alloc_books").Select("title").Where("id = ?", 1).Take(&b).Error
		},
		"whole row": func(db *gorm.DB) error {
			var b allocBook
			return db.WithContext(ctx).Table("alloc_books").Where("id = ?", 1).Take(&b).Error
		},
	}
	for name, read := range reads {
		count := func(db *gorm.DB) float64 {
			db = db.Session(&gorm.Session{Logger: logger.Discard})
			if err := read(db); err != nil { // the connections and their statement caches
				t.Fatalf("%s: %v", name, err)
			}
			return allocs.Least(200, func() {
				if err := read(db); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			})
		}
		d, o := count(resolver), count(routed)
		t.Logf("%s: %.0f allocations on the Router, %.0f through dbresolver", name, o, d)
		if o > d {
			t.Errorf("%s: %.0f allocations a read on the Router, %.0f through dbresolver", name, o, d)
		}
	}
}
