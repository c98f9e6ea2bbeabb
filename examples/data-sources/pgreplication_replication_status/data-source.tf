# Read on the primary: who streams from it, how far behind, and how much WAL
# each slot holds back.
data "pgreplication_replication_status" "primary" {
  provider = pgreplication.primary
}

output "standby_lag_bytes" {
  value = { for s in data.pgreplication_replication_status.primary.standbys : s.application_name => s.replay_lag_bytes }
}

output "slot_retained_wal_bytes" {
  value = { for s in data.pgreplication_replication_status.primary.slots : s.name => s.retained_wal_bytes }
}

# Fail the plan when a standby falls more than 1 GiB behind.
check "standbys_keep_up" {
  assert {
    condition     = alltrue([for s in data.pgreplication_replication_status.primary.standbys : coalesce(s.replay_lag_bytes, 0) < 1073741824])
    error_message = "A standby is more than 1 GiB of WAL behind the primary."
  }
}
