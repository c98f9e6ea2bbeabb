# Logical replication of the bookstore's published books, for a downstream
# consumer (a search index, a warehouse): only published rows (a row filter)
# and only the columns it needs (a column list). The table is created by the
# bookstore app's migration (go run ./examples/bookstore migrate), which runs
# on the primary only.
resource "pgreplication_publication" "books" {
  provider = pgreplication.primary
  name     = "books_catalog"

  tables = {
    "public.books" = {
      columns = ["id", "title", "author", "published"]
      where   = "published"
    }
  }

  # A row filter on a publication that publishes updates or deletes may only
  # use replica-identity columns; inserts are what the catalog needs.
  publish = ["insert", "truncate"]
}
