-- Incremental nights (issue 9): what each stage last built its output from.
-- A stage fingerprints its input (rows, and the settings that shape its output) and stores the
-- fingerprint in the same transaction as its output; the next night redoes only the parts whose
-- fingerprint changed. A missing row means "build it" (first run, `skadestue run --full`).
CREATE TABLE ops.stage_state (
    stage        VARCHAR NOT NULL,    -- ingest | geocode | link | hotspots | publish | maps
    part         VARCHAR NOT NULL,    -- what within the stage ('' for all of it, a period, a kommune)
    fingerprint  VARCHAR NOT NULL,    -- skadestue.state.fingerprint of the input
    run_id       VARCHAR,             -- the run that built it
    built_at     TIMESTAMP NOT NULL DEFAULT now(),
    PRIMARY KEY (stage, part)
);
