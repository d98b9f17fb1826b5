-- Progress a person can plan with: each phase's bytes, the source snapshot it
-- reads in, and its current run's pace (projections.pace): when the run
-- started and the rows and bytes done by then, the rates since, and the ETA.
-- A row from before this has no run start: its pace is unknown until its
-- phase's next run.
ALTER TABLE migration_phases
    ADD COLUMN bytes_done        bigint NOT NULL DEFAULT 0,
    ADD COLUMN snapshot          jsonb,
    ADD COLUMN run_started_at    timestamptz,
    ADD COLUMN run_rows_from     bigint NOT NULL DEFAULT 0,
    ADD COLUMN run_bytes_from    bigint NOT NULL DEFAULT 0,
    ADD COLUMN rows_per_second   double precision,
    ADD COLUMN bytes_per_second  double precision,
    ADD COLUMN eta_seconds       double precision,
    ADD COLUMN eta_at            timestamptz;
