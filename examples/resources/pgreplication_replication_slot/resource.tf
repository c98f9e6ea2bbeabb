# A physical slot for a standby that will stream from the primary. Reserve
# WAL at once, so that nothing the standby needs is removed before it
# connects (the standby sets primary_slot_name = "standby_1").
resource "pgreplication_replication_slot" "standby_1" {
  provider            = pgreplication.primary
  name                = "standby_1"
  type                = "physical"
  immediately_reserve = true
}

# A logical slot for a subscriber, in the provider's database, with the
# pgoutput plugin (the defaults). On PostgreSQL 17 a failover slot survives
# a failover to a standby that has sync_replication_slots = on.
resource "pgreplication_replication_slot" "orders" {
  provider  = pgreplication.primary
  name      = "orders_sub"
  type      = "logical"
  plugin    = "pgoutput"
  two_phase = true
  failover  = true

  # Destroying the slot while the subscriber streams from it terminates the
  # subscriber's session first, instead of failing.
  terminate_active_on_destroy = true
}

# A logical slot on a standby (PostgreSQL 16 and later). Creation waits for
# the primary's next running-transactions record; on an idle primary run
# SELECT pg_log_standby_snapshot() there.
resource "pgreplication_replication_slot" "analytics" {
  provider       = pgreplication.standby1
  name           = "analytics_cdc"
  type           = "logical"
  database       = "app"
  create_timeout = "2m"
}

# The health attributes are read on every refresh. They change on every run,
# so watch them with a check (a warning in the plan) rather than an output,
# whose change would make every plan -detailed-exitcode exit 2.
check "standby_1_slot_releases_wal" {
  assert {
    condition     = coalesce(pgreplication_replication_slot.standby_1.retained_wal_bytes, 0) < 10737418240
    error_message = "Slot standby_1 holds back more than 10 GiB of WAL: is the standby streaming?"
  }
}
