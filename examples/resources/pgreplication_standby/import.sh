# A server has one standby configuration, so the import ID is always
# "standby"; the resource's provider (here the alias standby1) says which
# server. Read fills every attribute from primary_conninfo and the settings.
# An import has no configuration, so a password in primary_conninfo goes into
# the state's primary_password. With primary_password_wo and
# primary_password_wo_version instead, the first plan shows the version and
# primary_password (sensitive) changing and warns "Password Leaves the State"
# when primary_password_wo is that password: its apply changes nothing on the
# standby (no reload, the WAL receiver streams on) and takes the password out
# of the state. A different primary_password_wo is written.
terraform import 'pgreplication_standby.standby1' standby
