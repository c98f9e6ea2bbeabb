# The physical topology: each standby streams from the primary through its
# own physical slot, so the primary keeps the WAL a standby still needs even
# while it is disconnected. The sandbox starts the standbys streaming without
# slots; applying this is what adds them. `terraform destroy` drops the
# slots while the standbys stream through them, terminating their WAL
# senders (terminate_active_on_destroy); the standbys then wait for their
# slot until the next apply creates it again.
resource "pgreplication_replication_slot" "replica1" {
  provider                    = pgreplication.primary
  name                        = "replica_1"
  type                        = "physical"
  immediately_reserve         = true
  terminate_active_on_destroy = true
}

resource "pgreplication_replication_slot" "replica2" {
  provider                    = pgreplication.primary
  name                        = "replica_2"
  type                        = "physical"
  immediately_reserve         = true
  terminate_active_on_destroy = true
}

resource "pgreplication_standby" "replica1" {
  provider = pgreplication.replica1

  primary_host      = var.host
  primary_port      = var.primary_port
  primary_user      = "postgres"
  primary_sslmode   = "disable"
  application_name  = "replica-1"
  primary_slot_name = pgreplication_replication_slot.replica1.name

  hot_standby_feedback = true
}

resource "pgreplication_standby" "replica2" {
  provider = pgreplication.replica2

  primary_host      = var.host
  primary_port      = var.primary_port
  primary_user      = "postgres"
  primary_sslmode   = "disable"
  application_name  = "replica-2"
  primary_slot_name = pgreplication_replication_slot.replica2.name

  hot_standby_feedback = true
}

# replica-1 is synchronous: a commit on the primary returns once replica-1
# has flushed it. Plan refuses this if replica-1 is not connected.
resource "pgreplication_synchronous_replication" "primary" {
  provider = pgreplication.primary

  method        = "first"
  num_sync      = 1
  standby_names = [pgreplication_standby.replica1.application_name]

  synchronous_commit = "on"
}
