# Applied to the primary. Commits wait until one of the two standbys (by the
# application_name each reports, see pgreplication_standby) has flushed them.
resource "pgreplication_synchronous_replication" "this" {
  provider = pgreplication.primary

  method        = "any" # a quorum; "first" picks by priority, in list order
  num_sync      = 1
  standby_names = ["standby1", "standby2"]

  synchronous_commit = "on"

  # Plan and apply refuse a standby list that would block commits (fewer than
  # num_sync of the listed standbys connected). Set allow_unavailable = true
  # only if commits may wait until the standbys connect.
  allow_unavailable = false
}
