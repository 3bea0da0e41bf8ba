-- Nightly operations (issue 9): who ran, where it stopped, and what each stage cost.
-- ops.run keeps one row per run; these columns make it readable without parsing summary.
ALTER TABLE ops.run ADD COLUMN pid INTEGER;              -- process that ran it
ALTER TABLE ops.run ADD COLUMN host VARCHAR;
ALTER TABLE ops.run ADD COLUMN flow_run_id VARCHAR;      -- Prefect flow run (NULL when run without Prefect)
ALTER TABLE ops.run ADD COLUMN failed_stage VARCHAR;     -- the stage that failed / was running when killed
ALTER TABLE ops.run ADD COLUMN rows_read BIGINT;         -- this run's deliveries (rows_read = loaded + quarantined)
ALTER TABLE ops.run ADD COLUMN rows_loaded BIGINT;
ALTER TABLE ops.run ADD COLUMN rows_quarantined BIGINT;
ALTER TABLE ops.run ADD COLUMN seconds DOUBLE;           -- wall time of the whole run

-- One row per stage of a run, written when the stage ends (succeeded or failed). A run killed
-- mid-stage has no row for that stage; the next run marks it 'interrupted' in ops.run.
CREATE TABLE ops.run_stage (
    run_id        VARCHAR NOT NULL,
    stage         VARCHAR NOT NULL,          -- ingest | validate_raw | geocode | ... | publish
    seq           INTEGER NOT NULL,          -- order within the run
    started_at    TIMESTAMP NOT NULL,
    finished_at   TIMESTAMP NOT NULL,
    status        VARCHAR NOT NULL,          -- succeeded | failed
    seconds       DOUBLE NOT NULL,           -- wall time
    cpu_seconds   DOUBLE,                    -- user + system CPU of the process during the stage
    peak_rss_mb   DOUBLE,                    -- the process's peak resident memory so far
    rows          BIGINT,                    -- the stage's main row count (see detail)
    detail        JSON,                      -- the stage's report
    message       VARCHAR,                   -- the error, naming the file where one is known
    PRIMARY KEY (run_id, stage)
);
