#!/bin/sh
# Temporal's databases and schemas, set up the way Temporal's own compose files do it with
# temporal-sql-tool (SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER and SQL_PASSWORD come from the
# environment). Every step is idempotent: create is a no-op for an existing database,
# setup-schema keeps a newer version, and update-schema applies only the missing versions,
# so this runs on every `docker compose up` and after every server upgrade.
set -eu
schema=/etc/temporal/schema/postgresql/v12

temporal-sql-tool --db temporal create
temporal-sql-tool --db temporal setup-schema -v 0.0
temporal-sql-tool --db temporal update-schema -d "$schema/temporal/versioned"

temporal-sql-tool --db temporal_visibility create
temporal-sql-tool --db temporal_visibility setup-schema -v 0.0
temporal-sql-tool --db temporal_visibility update-schema -d "$schema/visibility/versioned"

echo "temporal schema ready"
