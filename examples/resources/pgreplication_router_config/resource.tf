# The router file that applications using routerlib read: the primary, two
# replicas in two zones, read-your-writes consistency, and an "analytics"
# route that keeps reporting queries on the second replica. No password goes
# in the file: the application reads it from PGREPLICATION_APP_PASSWORD.
resource "pgreplication_router_config" "app" {
  path            = "/etc/app/router.json" # the directory must exist
  file_permission = "0640"                 # owner writes, the app's group reads

  primary {
    name         = "primary"
    host         = "db-primary.internal"
    database     = "app"
    user         = "app"
    sslmode      = "verify-full"
    sslrootcert  = "/etc/app/pg-ca.crt"
    password_env = "PGREPLICATION_APP_PASSWORD"
    zone         = "eu-west-1a"
  }

  replica {
    name          = "replica-1"
    host          = "db-standby-1.internal"
    database      = "app"
    user          = "app"
    sslmode       = "verify-full"
    sslrootcert   = "/etc/app/pg-ca.crt"
    password_env  = "PGREPLICATION_APP_PASSWORD"
    zone          = "eu-west-1a"
    max_lag       = "10s"
    max_lag_bytes = 16777216 # 16 MiB of WAL
    synchronous   = true
  }

  replica {
    name         = "replica-2"
    host         = "db-standby-2.internal"
    database     = "app"
    user         = "app"
    sslmode      = "verify-full"
    sslrootcert  = "/etc/app/pg-ca.crt"
    password_env = "PGREPLICATION_APP_PASSWORD"
    zone         = "eu-west-1b"
    weight       = 50
    max_lag      = "30s"
  }

  read_policy {
    strategy = "nearest_zone" # the application gives its zone to routerlib.Open
    fallback = "primary"
  }

  consistency {
    mode         = "read_your_writes"
    wait_timeout = "200ms"
  }

  health {
    interval    = "1s"
    eject_after = 3
  }

  route {
    name     = "analytics"
    nodes    = ["replica-2"]
    fallback = "error" # never send reporting queries to the primary
  }
}
