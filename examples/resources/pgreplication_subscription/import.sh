# The import ID is database/name on the subscriber (the resource's provider).
# Inside a part, write % as %25 and / as %2F. Read fills conninfo,
# publications, enabled, slot_name, owner and the options from pg_subscription
# (reading the connection needs a superuser). create_slot, copy_data and
# drop_slot_on_destroy are not kept by PostgreSQL: an import sets their
# defaults (true), which only matter for a later create or destroy.
terraform import 'pgreplication_subscription.orders' 'reporting/orders_from_primary'
