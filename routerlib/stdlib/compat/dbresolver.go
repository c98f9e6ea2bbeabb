package compat

import (
	"database/sql"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/plugin/dbresolver"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/stdlib"
)

// OpenWithDBResolver is GORM with its dbresolver plugin: the primary's DSN,
// the replicas' DSNs, and a policy. docs/guides/from-gorm-dbresolver-and-pgx.md
// shows it beside OpenOnRouter; dbresolver_test.go runs both.
func OpenWithDBResolver(primaryDSN string, replicaDSNs ...string) (*gorm.DB, error) {
	db, err := gorm.Open(postgres.Open(primaryDSN), &gorm.Config{})
	if err != nil {
		return nil, err
	}
	replicas := make([]gorm.Dialector, len(replicaDSNs))
	for i, dsn := range replicaDSNs {
		replicas[i] = postgres.Open(dsn)
	}
	return db, db.Use(dbresolver.Register(dbresolver.Config{Replicas: replicas}))
}

// OpenOnRouter is the same GORM on a Router: the *sql.DB it gets routes
// every statement as the router file says. The models, queries and
// transactions do not change.
func OpenOnRouter(r *routerlib.Router) (*gorm.DB, error) {
	return gorm.Open(postgres.New(postgres.Config{Conn: sql.OpenDB(stdlib.NewConnector(r))}), &gorm.Config{})
}
