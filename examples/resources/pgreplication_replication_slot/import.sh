# The import ID is the slot's name (slot names are lower-case letters,
# digits and underscores). Type, database, plugin, two_phase and failover are
# read from pg_replication_slots; immediately_reserve is inferred from whether
# a physical slot already reserves WAL.
terraform import pgreplication_replication_slot.standby_1 standby_1
