-- The read model: current state per migration, its event history, and the
-- offsets the projector consumed (committed in the same transaction as rows).
CREATE TABLE migrations (
    migration_id  text PRIMARY KEY,
    status        text        NOT NULL,
    phase         text,
    version       bigint      NOT NULL,
    spec          jsonb       NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX migrations_status_idx ON migrations (status, migration_id);

CREATE TABLE migration_events (
    migration_id  text        NOT NULL,
    sequence      bigint      NOT NULL,
    event_id      text        NOT NULL UNIQUE,
    type          text        NOT NULL,
    occurred_at   timestamptz NOT NULL,
    causation_id  text        NOT NULL,
    payload       jsonb       NOT NULL,
    PRIMARY KEY (migration_id, sequence)
);

CREATE TABLE projection_offsets (
    projection   text   NOT NULL,
    topic        text   NOT NULL,
    partition    int    NOT NULL,
    next_offset  bigint NOT NULL,
    PRIMARY KEY (projection, topic, partition)
);
