output "servers" {
  # current_lsn is left out on purpose: the WAL moves on by itself, and an
  # output that changes on every run would make every plan non-empty.
  description = "Each server's version and role."
  value = {
    for name, s in {
      primary  = data.pgreplication_server.primary
      replica1 = data.pgreplication_server.replica1
      replica2 = data.pgreplication_server.replica2
      } : name => {
      version     = s.version
      in_recovery = s.in_recovery
      system_id   = s.system_identifier
      wal_level   = s.wal_level
    }
  }
}

output "router_file" {
  description = "The router file for routerlib.Open."
  value       = pgreplication_router_config.app.path
}

output "replication" {
  description = "Each standby's state as the standby reports it."
  value = {
    replica1 = pgreplication_standby.replica1.status
    replica2 = pgreplication_standby.replica2.status
  }
}
