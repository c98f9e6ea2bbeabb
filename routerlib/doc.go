// Package routerlib sends an application's reads to PostgreSQL hot-standby
// replicas and its writes to the primary, exactly as the router file written
// by the pgreplication Terraform provider declares.
package routerlib
