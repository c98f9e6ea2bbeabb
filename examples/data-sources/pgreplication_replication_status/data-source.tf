# Read on the primary: who streams from it, how far behind, and how much WAL
# each slot holds back.
data "pgreplication_replication_status" "primary" {
  provider = pgreplication.primary
}

# Which standbys stream, and which of them are synchronous.
output "standby_sync_states" {
  value = { for s in data.pgreplication_replication_status.primary.standbys : s.application_name => s.sync_state }
}

# Lag and retained WAL change on every run, so they go in checks, not in
# outputs (a changed output would make every plan -detailed-exitcode exit 2).
# A failed check is a warning in the plan: the drift audit shows it.
check "standbys_keep_up" {
  assert {
    condition     = alltrue([for s in data.pgreplication_replication_status.primary.standbys : coalesce(s.replay_lag_bytes, 0) < 1073741824])
    error_message = "A standby is more than 1 GiB of WAL behind the primary."
  }
}

check "slots_release_wal" {
  assert {
    condition     = alltrue([for s in data.pgreplication_replication_status.primary.slots : coalesce(s.retained_wal_bytes, 0) < 10737418240])
    error_message = "A replication slot holds back more than 10 GiB of WAL: is its consumer gone?"
  }
}
