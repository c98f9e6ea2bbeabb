# One provider instance talks to one server: declare the primary and each
# standby as an alias. Every setting falls back to its libpq environment
# variable (PGHOST, PGPORT, PGUSER, PGPASSWORD, …).
provider "pgreplication" {
  alias    = "primary"
  host     = "db-primary.internal"
  port     = 5432
  database = "app"
  username = "replication_admin"
  sslmode  = "verify-full"
  # password comes from PGPASSWORD or ~/.pgpass; never commit it.
}

provider "pgreplication" {
  alias    = "standby1"
  host     = "db-standby-1.internal"
  database = "app"
  username = "replication_admin"
  sslmode  = "verify-full"
}
