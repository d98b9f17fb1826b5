-- Least privilege of the API's role, held by grants rather than by its
-- read-only default (any session may SET default_transaction_read_only = off):
-- `migrator_reader` is granted SELECT on the read model's tables, USAGE on the
-- schema and CONNECT on this database, and nothing else; PUBLIC (which every
-- role is in) keeps nothing here, so no CREATE, no TEMP and no connection for
-- a role not granted it. Owner-only statements: the projector's login owns the
-- database (a login that does not gets a warning and changes nothing).
DO $database$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO migrator_reader', current_database());
END
$database$;

REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO migrator_reader;
