# Orders from the EU, without the customer's note: a row filter and a column
# list (PostgreSQL 15+). PostgreSQL stores the filter in its own normal form,
# ((amount > 100) AND (region = 'eu'::text)); the plan shows that form, and
# the filter as written here is never a diff.
resource "pgreplication_publication" "eu_orders" {
  provider = pgreplication.primary
  database = "app"
  name     = "eu_orders"
  owner    = "replication_admin"

  # Each table is keyed by its schema-qualified name, quoted where
  # PostgreSQL's quote_ident would quote it ("public.\"Order Items\"").
  tables = {
    "public.orders" = {
      columns = ["id", "region", "amount", "created_at"]
      where   = "region = 'eu' AND amount > 100"
    }

    # A partitioned table is published through its parent: with
    # publish_via_partition_root, changes of every partition arrive as
    # changes of the parent, which is also what allows a row filter on it.
    "public.events" = {
      where = "kind <> 'debug'"
    }
  }
  publish_via_partition_root = true

  # Deletes stay on the publisher. A row filter must only use replica
  # identity columns when update or delete are published.
  publish = ["insert", "update", "truncate"]
}

# Every table of the reporting and billing schemas, including tables created
# there later (FOR TABLES IN SCHEMA, PostgreSQL 15+), plus one more table.
# PostgreSQL refuses column lists in a publication that has schemas.
resource "pgreplication_publication" "reporting" {
  provider         = pgreplication.primary
  database         = "app"
  name             = "reporting"
  tables_in_schema = ["reporting", "billing"]
  tables           = { "public.customers" = {} }
}
