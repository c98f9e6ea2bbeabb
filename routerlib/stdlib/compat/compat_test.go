package compat_test

import (
	"context"
	"database/sql"
	"os"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/stdlib"
)

func TestMain(m *testing.M) { os.Exit(routertest.Main(m, routertest.WithStandbys(2))) }

// setup returns the shared topology, a *sql.DB routed by a Router on it,
// and the recorder of the Router's decisions.
func setup(t *testing.T) (*routertest.Topology, *sql.DB, *recorder) {
	t.Helper()
	shared := routertest.Shared(t)
	rec := &recorder{}
	r, err := routerlib.New(context.Background(), shared.Artifact(), routerlib.WithTracer(rec))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	db := sql.OpenDB(stdlib.NewConnector(r))
	t.Cleanup(func() { db.Close() })
	return shared, db, rec
}

// recorder is a Tracer that keeps every decision.
type recorder struct {
	mu        sync.Mutex
	decisions []routerlib.Decision
}

func (rec *recorder) TraceRoute(_ context.Context, d routerlib.Decision) {
	rec.mu.Lock()
	rec.decisions = append(rec.decisions, d)
	rec.mu.Unlock()
}

func (rec *recorder) take() []routerlib.Decision {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	d := rec.decisions
	rec.decisions = nil
	return d
}

// onlyOn fails unless every decision in ds named node (and there was one).
func onlyOn(t *testing.T, what string, ds []routerlib.Decision, node string) {
	t.Helper()
	if len(ds) == 0 {
		t.Errorf("%s: no routing decision", what)
	}
	for _, d := range ds {
		if d.Node != node {
			t.Errorf("%s: %s %q went to %s (%s), want %s", what, d.Op, d.SQL, d.Node, d.Reason, node)
		}
	}
}

func waitReplayed(t testing.TB, topo *routertest.Topology) {
	t.Helper()
	if err := topo.WaitReplayed(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// where is where a statement ran, read from the server that ran it.
type where struct {
	Port     int
	Recovery bool
}

const whereSQL = "SELECT inet_server_port() AS port, pg_is_in_recovery() AS recovery"

func isStandby(topo *routertest.Topology, w where) bool {
	for _, s := range topo.Standbys {
		if s.Port == w.Port {
			return w.Recovery
		}
	}
	return false
}

// GormBook is a book whose row records the server that inserted it.
type GormBook struct {
	ID     int64
	Title  string
	Author string
	Port   int `gorm:"default:inet_server_port()"`
}

// GormWhere reads a view that says which server answers.
type GormWhere struct {
	Port     int
	Recovery bool
}

func (GormWhere) TableName() string { return "gorm_where" }

// TestGORM: GORM on routerlib/stdlib through gorm.io/driver/postgres.
// AutoMigrate's DDL runs on the primary, Create on the primary, Find on a
// standby, a Transaction on the primary and a read-only one on a standby,
// each checked on the server that ran it.
func TestGORM(t *testing.T) {
	topo, sqlDB, rec := setup(t)
	ctx := context.Background()
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	primary := topo.Primary.Name
	if err := topo.Primary.Exec(ctx, "DROP TABLE IF EXISTS gorm_books"); err != nil { // from an earlier -count
		t.Fatal(err)
	}
	waitReplayed(t, topo)

	rec.take()
	if err := db.WithContext(ctx).AutoMigrate(&GormBook{}); err != nil {
		t.Fatal(err)
	}
	var ddl []routerlib.Decision
	for _, d := range rec.take() {
		if d.Reason == routerlib.ReasonWrite {
			ddl = append(ddl, d)
		}
	}
	onlyOn(t, "AutoMigrate's DDL", ddl, primary)
	var exists bool
	if err := topo.Primary.QueryRow(ctx, "SELECT to_regclass('gorm_books') IS NOT NULL").Scan(&exists); err != nil || !exists {
		t.Fatalf("AutoMigrate did not create gorm_books on the primary (%v)", err)
	}
	// Migrations read the catalogs too: with a Primary context they read
	// the primary's, never a standby's that may lag behind the DDL.
	type GormBookV2 struct {
		GormBook
		Pages int
	}
	if err := db.WithContext(routerlib.Primary(ctx)).Table("gorm_books").AutoMigrate(&GormBookV2{}); err != nil {
		t.Fatal(err)
	}
	onlyOn(t, "AutoMigrate with a Primary context", rec.take(), primary)

	book := GormBook{Title: "Dune", Author: "Herbert"}
	if err := db.WithContext(ctx).Create(&book).Error; err != nil {
		t.Fatal(err)
	}
	if book.ID == 0 || book.Port != topo.Primary.Port {
		t.Errorf("Create: id %d inserted on port %d, want the primary's %d", book.ID, book.Port, topo.Primary.Port)
	}
	onlyOn(t, "Create", rec.take(), primary)

	if err := topo.Primary.Exec(ctx, "CREATE OR REPLACE VIEW gorm_where AS "+whereSQL); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	rec.take()
	var ws []GormWhere
	if err := db.WithContext(ctx).Find(&ws).Error; err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || !isStandby(topo, where(ws[0])) {
		t.Errorf("Find ran on %+v, want a standby", ws)
	}
	var books []GormBook
	if err := db.WithContext(ctx).Where("author = ?", "Herbert").Find(&books).Error; err != nil {
		t.Fatal(err)
	}
	if len(books) != 1 || books[0].ID != book.ID {
		t.Errorf("Find on a standby returned %+v, want the book created", books)
	}
	for _, d := range rec.take() {
		if d.Node == primary {
			t.Errorf("Find: %q went to the primary (%s)", d.SQL, d.Reason)
		}
	}

	var in where
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&GormBook{Title: "Emma", Author: "Austen"}).Error; err != nil {
			return err
		}
		return tx.Raw(whereSQL).Scan(&in).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	if in.Port != topo.Primary.Port || in.Recovery {
		t.Errorf("a Transaction ran on %+v, want the primary (port %d)", in, topo.Primary.Port)
	}
	onlyOn(t, "Transaction", rec.take(), primary)

	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return tx.Raw(whereSQL).Scan(&in).Error
	}, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if !isStandby(topo, in) {
		t.Errorf("a read-only Transaction ran on %+v, want a standby", in)
	}
}

// TestSQLX: sqlx on routerlib/stdlib: Get and Select on a standby,
// NamedExec on the primary, a read-only transaction on a standby.
func TestSQLX(t *testing.T) {
	topo, sqlDB, rec := setup(t)
	ctx := context.Background()
	db := sqlx.NewDb(sqlDB, "pgx")

	var w where
	if err := db.GetContext(ctx, &w, whereSQL); err != nil {
		t.Fatal(err)
	}
	if !isStandby(topo, w) {
		t.Errorf("Get ran on %+v, want a standby", w)
	}
	rec.take()

	for _, q := range []string{"DROP TABLE IF EXISTS sqlx_books", "CREATE TABLE sqlx_books (id serial PRIMARY KEY, title text, port int DEFAULT inet_server_port())"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	res, err := db.NamedExecContext(ctx, "INSERT INTO sqlx_books (title) VALUES (:title)", []map[string]any{{"title": "Dune"}, {"title": "Emma"}})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 2 {
		t.Errorf("NamedExec affected %d rows, want 2", n)
	}
	onlyOn(t, "DDL and NamedExec", rec.take(), topo.Primary.Name)
	waitReplayed(t, topo)

	type book struct {
		Title string
		Port  int
	}
	var books []book
	if err := db.SelectContext(ctx, &books, "SELECT title, port FROM sqlx_books ORDER BY title"); err != nil {
		t.Fatal(err)
	}
	if len(books) != 2 || books[0].Port != topo.Primary.Port || books[1].Port != topo.Primary.Port {
		t.Errorf("Select returned %+v, want two books inserted on the primary (port %d)", books, topo.Primary.Port)
	}
	for _, d := range rec.take() {
		if d.Node == topo.Primary.Name {
			t.Errorf("Select went to the primary (%s)", d.Reason)
		}
	}

	tx, err := db.BeginTxx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := tx.GetContext(ctx, &w, whereSQL); err != nil {
		t.Fatal(err)
	}
	if !isStandby(topo, w) {
		t.Errorf("a read-only transaction ran on %+v, want a standby", w)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}
