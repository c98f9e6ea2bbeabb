# A server has one synchronous_standby_names, so the import ID is always
# "synchronous_replication"; the resource's provider (here the alias primary)
# says which server. Read parses the server's value into method, num_sync and
# standby_names, whichever form it was written in.
terraform import 'pgreplication_synchronous_replication.this' synchronous_replication
