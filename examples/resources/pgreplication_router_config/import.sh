# The import ID is the path of the router file; every attribute is read
# from the file.
terraform import pgreplication_router_config.app /etc/app/router.json
