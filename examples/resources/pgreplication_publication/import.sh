# The import ID is database/name on the publisher (the resource's provider).
# Inside a part, write % as %25 and / as %2F, so any name imports: the
# publication `EU "orders"/2024` of database app is 'app/EU "orders"%2F2024'.
# Read fills owner, all_tables, the tables (with their column lists and row
# filters, as PostgreSQL stores them), tables_in_schema and the options from
# pg_publication, pg_publication_rel and pg_publication_namespace.
# With an import block, OpenTofu 1.10's plan -generate-config-out writes the
# keys of tables unquoted (public.orders = {), which it then cannot read
# ("Reference to undeclared resource", "Missing key/value separator";
# opentofu/opentofu#3978): quote each key in the generated file
# ("public.orders" = {). Terraform writes them quoted.
terraform import 'pgreplication_publication.eu_orders' 'app/eu_orders'
