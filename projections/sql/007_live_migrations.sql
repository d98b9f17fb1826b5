-- Live migrations (domain.live): a migration's current lag and the source
-- position applied last, the options of the last cutover asked, and what the
-- cutover ended with. NULL for a migration without `cdc` and until reported.
ALTER TABLE migrations
    ADD COLUMN lag_bytes        bigint,
    ADD COLUMN lag_seconds      double precision,
    ADD COLUMN source_position  text,
    ADD COLUMN cutover          jsonb,
    ADD COLUMN cutover_result   jsonb;
