# The import ID is database/name on the subscriber (the resource's provider).
# Inside a part, write % as %25 and / as %2F. Read fills conninfo,
# publications, enabled, slot_name, owner and the options from pg_subscription
# (reading the connection needs a superuser). create_slot, copy_data and
# drop_slot_on_destroy are not kept by PostgreSQL: an import sets their
# defaults (true), which only matter for a later create or destroy.
# An import has no configuration, so a password in the connection goes into
# the state's conninfo. With password_wo and password_wo_version instead, the
# first plan shows password_wo_version and conninfo (sensitive) changing and
# warns "Password Leaves the State" when password_wo is that password: its
# apply changes nothing on the subscriber and takes the password out of the
# state. A different password_wo is written (ALTER SUBSCRIPTION … CONNECTION).
terraform import 'pgreplication_subscription.orders' 'reporting/orders_from_primary'
