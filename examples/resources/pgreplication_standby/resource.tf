# The provider instance points at the standby (a server in recovery); the
# settings say where it streams from. See examples/provider/provider.tf for
# the provider aliases.
resource "pgreplication_standby" "standby1" {
  provider = pgreplication.standby1

  primary_host    = "db-primary.internal"
  primary_port    = 5432
  primary_user    = "replicator"
  primary_sslmode = "verify-full"
  # The password stays in a file on the standby's host, not in the state.
  passfile = "/var/lib/postgresql/.pgpass"

  # The name the primary sees in pg_stat_replication, and the name that
  # pgreplication_synchronous_replication lists to make this standby synchronous.
  application_name = "standby1"

  # A physical slot on the primary keeps the WAL this standby still needs.
  primary_slot_name = "standby_1"

  hot_standby_feedback        = true
  max_standby_streaming_delay = "1min"
  wal_receiver_timeout        = "60s"

  # Apply waits this long for the standby to stream from the primary.
  wait_timeout = "2m"

  # Destroying the resource forgets it and leaves replication running
  # (reset_on_destroy = true would reset the settings and stop streaming).
}
