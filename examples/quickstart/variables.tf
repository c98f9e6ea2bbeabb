# The sandbox (`make sandbox-up`, run by `make demo`) prints these; the demo
# passes them as TF_VAR_… from .sandbox/dsns.env, and writes them to
# .sandbox/quickstart.env for your own plans: `. .sandbox/quickstart.env`.
variable "host" {
  type    = string
  default = "127.0.0.1"
}

variable "primary_port" {
  type = number
}

variable "replica1_port" {
  type = number
}

variable "replica2_port" {
  type = number
}
variable "router_file" {
  type        = string
  default     = "router.json"
  description = "Where pgreplication_router_config writes the router file for applications."
}
