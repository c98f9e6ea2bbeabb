terraform {
  required_providers {
    pgreplication = {
      source = "pgreplication/pgreplication"
    }
  }
}

# One provider instance per server: the primary and each standby.
provider "pgreplication" {
  alias    = "primary"
  host     = var.host
  port     = var.primary_port
  username = "postgres"
  database = "postgres"
  sslmode  = "disable"
}

provider "pgreplication" {
  alias    = "replica1"
  host     = var.host
  port     = var.replica1_port
  username = "postgres"
  database = "postgres"
  sslmode  = "disable"
}

provider "pgreplication" {
  alias    = "replica2"
  host     = var.host
  port     = var.replica2_port
  username = "postgres"
  database = "postgres"
  sslmode  = "disable"
}

data "pgreplication_server" "primary" {
  provider = pgreplication.primary
}

data "pgreplication_server" "replica1" {
  provider = pgreplication.replica1
}

data "pgreplication_server" "replica2" {
  provider = pgreplication.replica2
}
