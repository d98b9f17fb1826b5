-- Quarantine: a migration whose event log the read model cannot follow (a gap,
-- a fork, an event the database refuses) is held, with the reason and the
-- sequence of the event it could not take; every other migration goes on.
-- `escaped_sequences`: the events a refold stored with their NUL characters
-- escaped (PostgreSQL stores U+0000 in neither text nor jsonb).
ALTER TABLE migrations
    ADD COLUMN quarantine_reason    text,
    ADD COLUMN quarantine_sequence  bigint,
    ADD COLUMN quarantined_at       timestamptz,
    ADD COLUMN escaped_sequences    bigint[] NOT NULL DEFAULT '{}';
CREATE INDEX migrations_quarantined_idx
    ON migrations (created_at DESC, migration_id DESC) WHERE quarantine_reason IS NOT NULL;
