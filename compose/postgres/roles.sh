#!/bin/sh
# Runs once, when the postgres container initialises its data directory: the
# API's read-only login, with a password (the read model's SQL migration 003
# finds the roles and leaves them; on the local stack it creates them itself).
set -eu
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -v pw="$API_DB_PASSWORD" <<'SQL'
CREATE ROLE migrator_reader NOLOGIN;
CREATE ROLE migrator_api LOGIN PASSWORD :'pw' IN ROLE migrator_reader;
ALTER ROLE migrator_api SET default_transaction_read_only = on;
SQL
