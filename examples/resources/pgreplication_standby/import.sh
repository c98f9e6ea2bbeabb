# A server has one standby configuration, so the import ID is always
# "standby"; the resource's provider (here the alias standby1) says which
# server. Read fills every attribute from primary_conninfo and the settings.
terraform import 'pgreplication_standby.standby1' standby
