# The router file that applications read with routerlib: reads go to the
# replicas, writes to the primary, and a session sees its own writes at once.
resource "pgreplication_router_config" "app" {
  path = var.router_file

  primary {
    name     = "primary"
    host     = var.host
    port     = var.primary_port
    database = "postgres"
    user     = "postgres"
    sslmode  = "disable"
    zone     = "zone-a"
  }

  replica {
    name        = "replica-1"
    host        = var.host
    port        = var.replica1_port
    database    = "postgres"
    user        = "postgres"
    sslmode     = "disable"
    zone        = "zone-a"
    max_lag     = "5s"
    synchronous = true
  }

  replica {
    name     = "replica-2"
    host     = var.host
    port     = var.replica2_port
    database = "postgres"
    user     = "postgres"
    sslmode  = "disable"
    zone     = "zone-b"
    max_lag  = "5s"
  }

  read_policy {
    strategy = "round_robin"
    fallback = "primary"
  }

  consistency {
    mode         = "read_your_writes"
    wait_timeout = "200ms"
  }

  health {
    interval = "500ms"
  }

  # Reporting queries stay on replica-2, never on the primary.
  route {
    name     = "analytics"
    nodes    = ["replica-2"]
    fallback = "error"
  }

  depends_on = [pgreplication_standby.replica1, pgreplication_standby.replica2]
}
