-- The live read model: per-phase rows, lifecycle timestamps, a feed version
-- for live clients, indexes for the list and for read-your-writes, and the
-- API's read-only role.

-- Every write of a migration row takes the next feed version (one row, updated
-- in the projector's transaction: versions are handed out in commit order).
CREATE TABLE feed_version (
    id       int    PRIMARY KEY CHECK (id = 1),
    version  bigint NOT NULL
);
INSERT INTO feed_version VALUES (1, 0);

ALTER TABLE migrations
    ADD COLUMN feed_version  bigint NOT NULL DEFAULT 0,
    ADD COLUMN started_at    timestamptz,
    ADD COLUMN finished_at   timestamptz;
UPDATE migrations SET started_at = created_at WHERE spec IS NOT NULL;
CREATE INDEX migrations_feed_idx ON migrations (feed_version);
CREATE INDEX migrations_list_idx ON migrations (created_at DESC, migration_id DESC);
CREATE INDEX migrations_status_list_idx
    ON migrations (status, created_at DESC, migration_id DESC);
DROP INDEX migrations_status_idx;

-- Read-your-writes: the API looks up a command's effect by its id.
CREATE INDEX migration_events_causation_idx ON migration_events (migration_id, causation_id);

CREATE TABLE migration_phases (
    migration_id  text        NOT NULL,
    phase         text        NOT NULL,
    status        text        NOT NULL,
    run           int         NOT NULL,
    rows_done     bigint      NOT NULL DEFAULT 0,
    rows_total    bigint      NOT NULL DEFAULT 0,
    checkpoint    text,
    score         double precision,
    reason        text,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (migration_id, phase)
);

-- Least privilege: `migrator_reader` may only read the read model; the API
-- logs in as `migrator_api`, a member (created here without a password: give
-- it one, or grant `migrator_reader` to the login you use). Roles belong to
-- the cluster, so another database may have created them already.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'migrator_reader') THEN
        BEGIN
            CREATE ROLE migrator_reader NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'migrator_api') THEN
        BEGIN
            CREATE ROLE migrator_api LOGIN IN ROLE migrator_reader;
            ALTER ROLE migrator_api SET default_transaction_read_only = on;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
END
$roles$;

GRANT SELECT ON migrations, migration_events, migration_phases, feed_version TO migrator_reader;

-- Before PostgreSQL 15 every role could create tables in `public`.
DO $public$
BEGIN
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
EXCEPTION WHEN insufficient_privilege THEN NULL;
END
$public$;
