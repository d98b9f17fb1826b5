#!/bin/sh
# Runs once, when the postgres container initialises its data directory: the
# API's read-only login, with a password (the read model's SQL migrations 003
# and 005 find the roles and leave them, then grant them SELECT, USAGE and
# CONNECT on the read model only; on the local stack they create them too).
# PUBLIC's CONNECT and TEMPORARY on the cluster's other databases go, so the
# API's login reaches none of them.
set -eu
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -v pw="$API_DB_PASSWORD" <<'SQL'
CREATE ROLE migrator_reader NOLOGIN;
CREATE ROLE migrator_api LOGIN PASSWORD :'pw' IN ROLE migrator_reader;
ALTER ROLE migrator_api SET default_transaction_read_only = on;
REVOKE CONNECT, TEMPORARY ON DATABASE postgres, template1 FROM PUBLIC;
SQL
