// Package compat tests routerlib/stdlib under the libraries applications
// use database/sql through: GORM (gorm.io/driver/postgres) and sqlx. It is a
// module of its own so that they never become dependencies of an
// application that imports routerlib; tools/test.sh runs its tests.
package compat
