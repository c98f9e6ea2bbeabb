# A subscription lives on the subscriber: use the provider alias of that
# server. It streams the publications of another server, the publisher,
# which must run with wal_level = logical.
variable "replication_password" {
  type      = string
  sensitive = true
}

resource "pgreplication_subscription" "orders" {
  provider = pgreplication.subscriber
  name     = "orders_from_primary"
  database = "reporting"
  # The whole conninfo is sensitive because of the password. Rotating the
  # password is an ALTER SUBSCRIPTION … CONNECTION: nothing is copied again.
  # Quote values with spaces or quotes in single quotes (\' inside).
  conninfo     = "host=db-primary.internal port=5432 user=replicator dbname=app sslmode=verify-full password='${var.replication_password}'"
  publications = ["orders", "customers"]

  # Used by CREATE SUBSCRIPTION only: changing them later never recreates
  # the subscription. Set copy_data = false when the tables already hold
  # the data (a subscriber restored from a dump).
  copy_data   = true
  create_slot = true

  synchronous_commit = "off"
  streaming          = "on"   # "parallel" needs PostgreSQL 16+
  disable_on_error   = true   # PostgreSQL 15+
  origin             = "none" # PostgreSQL 16+: do not re-apply replicated changes
}
