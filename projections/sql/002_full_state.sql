-- The whole state of a migration as the domain folds it. A row without a spec
-- holds only the version of a migration id that so far has only rejections.
ALTER TABLE migrations
    ALTER COLUMN spec DROP NOT NULL,
    ADD COLUMN run         int              NOT NULL DEFAULT 0,
    ADD COLUMN checkpoint  text,
    ADD COLUMN rows_done   bigint           NOT NULL DEFAULT 0,
    ADD COLUMN rows_total  bigint           NOT NULL DEFAULT 0,
    ADD COLUMN score       double precision,
    ADD COLUMN reason      text;
