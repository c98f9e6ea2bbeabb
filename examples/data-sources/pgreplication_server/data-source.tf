data "pgreplication_server" "primary" {
  provider = pgreplication.primary
}

output "primary_lsn" {
  value = data.pgreplication_server.primary.current_lsn
}
