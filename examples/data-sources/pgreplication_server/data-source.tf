data "pgreplication_server" "primary" {
  provider = pgreplication.primary
}

output "primary" {
  value = {
    version           = data.pgreplication_server.primary.version
    system_identifier = data.pgreplication_server.primary.system_identifier
  }
}

# current_lsn, the server's WAL position, moves with every write: use it
# where it is needed rather than in an output, whose new value on every run
# would make `terraform plan -detailed-exitcode` report a change each time.
check "primary_allows_logical_replication" {
  assert {
    condition     = data.pgreplication_server.primary.wal_level == "logical"
    error_message = "Publications, subscriptions and logical slots need wal_level = logical on the primary; it is ${data.pgreplication_server.primary.wal_level}."
  }
}
