-- Runs and deliveries. Row accounting: rows_read = rows_loaded + rows_quarantined per delivery.
CREATE TABLE ops.run (
    run_id        VARCHAR PRIMARY KEY,
    started_at    TIMESTAMP NOT NULL,
    finished_at   TIMESTAMP,
    status        VARCHAR NOT NULL,          -- running | succeeded | failed | published_skipped
    inbox         VARCHAR,
    message       VARCHAR,
    summary       JSON
);

CREATE TABLE ops.delivery (
    delivery_id      VARCHAR PRIMARY KEY,    -- '<source>-<first 16 hex of content hash>'
    delivery_seq     INTEGER NOT NULL,       -- load order; a higher seq is a newer delivery
    run_id           VARCHAR NOT NULL,
    source           VARCHAR NOT NULL,       -- er_contact | police_accident | police_person
    file_name        VARCHAR NOT NULL,       -- path relative to the inbox
    content_hash     VARCHAR NOT NULL,       -- sha256 of the file bytes
    loaded_at        TIMESTAMP NOT NULL,
    status           VARCHAR NOT NULL,       -- loaded | rejected (whole file quarantined)
    encoding         VARCHAR,
    delimiter        VARCHAR,
    rows_read        INTEGER NOT NULL,
    rows_loaded      INTEGER NOT NULL,
    rows_quarantined INTEGER NOT NULL,
    extra_columns    VARCHAR[],              -- unknown columns, kept in raw.*.extra
    message          VARCHAR
);

-- Every file the inbox held at each run, including those skipped as already loaded.
CREATE TABLE ops.run_file (
    run_id        VARCHAR NOT NULL,
    file_name     VARCHAR NOT NULL,
    content_hash  VARCHAR NOT NULL,
    action        VARCHAR NOT NULL,          -- loaded | skipped_duplicate | rejected
    delivery_id   VARCHAR,
    PRIMARY KEY (run_id, file_name)
);
