-- Every row that could not be used, with a reason a person can act on.
CREATE TABLE quality.quarantine (
    run_id          VARCHAR NOT NULL,
    delivery_id     VARCHAR,                 -- NULL only for files rejected before a delivery id
    source          VARCHAR NOT NULL,        -- er_contact | police_accident | police_person
    stage           VARCHAR NOT NULL,        -- ingest | geocode | link | ...
    file_name       VARCHAR,
    line_no         INTEGER,                 -- NULL: the whole file
    record_key      VARCHAR,
    column_name     VARCHAR,
    value           VARCHAR,                 -- the offending value (never a CPR number)
    reason          VARCHAR NOT NULL,
    quarantined_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- Great Expectations results per run, stage and expectation.
CREATE TABLE quality.validation_result (
    run_id          VARCHAR NOT NULL,
    stage           VARCHAR NOT NULL,        -- raw_er | raw_police | geocoded | linked | hotspots
    suite           VARCHAR NOT NULL,
    expectation     VARCHAR NOT NULL,
    column_name     VARCHAR,
    critical        BOOLEAN NOT NULL,
    success         BOOLEAN NOT NULL,
    element_count   BIGINT,
    unexpected_count BIGINT,
    details         JSON,
    validated_at    TIMESTAMP NOT NULL DEFAULT current_timestamp
);
