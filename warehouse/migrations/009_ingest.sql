-- Ingest notes: a value the ingest could not interpret but that did not stop the row from
-- loading (an unknown transport word -> road_user 'unknown', an unknown kommune name ->
-- kommunekode NULL, ...). Quarantine is for rows NOT loaded; this is for rows loaded with a
-- value set to unknown/NULL, so nothing is changed silently.
CREATE TABLE quality.ingest_note (
    run_id          VARCHAR NOT NULL,
    delivery_id     VARCHAR NOT NULL,
    source          VARCHAR NOT NULL,        -- er_contact | police_accident | police_person
    file_name       VARCHAR,
    line_no         INTEGER,
    record_key      VARCHAR,
    column_name     VARCHAR,
    value           VARCHAR,                 -- the value as delivered (never a CPR number)
    note            VARCHAR NOT NULL,
    noted_at        TIMESTAMP NOT NULL DEFAULT current_timestamp
);
