-- Incremental linkage (issue 9): what the last linkage built, so that a night re-links only
-- what changed (skadestue.link.incremental). Internal state, never published; no CPR leaves
-- the warehouse through it (the pseudonym is kept as core keeps it, for re-scoring).
-- Emptied by a full relink; written in the linkage's own transaction.
CREATE SCHEMA IF NOT EXISTS link;

-- The linkage model a night scores with: Splink settings JSON (m, u, lambda, the date-level
-- u of the span at training time, blocking rules). One row.
CREATE TABLE link.model (
    settings_fp     VARCHAR NOT NULL,        -- fingerprint of the settings/code it was trained under
    model_json      VARCHAR NOT NULL,        -- Splink settings with every m and u filled in
    n_er_events     INTEGER NOT NULL,        -- data size at training (retrain when it drifts)
    n_police        INTEGER NOT NULL,
    trained_at      TIMESTAMP NOT NULL DEFAULT now()
);

-- Every ER contact linked: a hash of the columns the linkage reads, its person key, its
-- CPR-less same-person component (NULL when it is in none) and its injury event.
CREATE TABLE link.contact (
    contact_key     VARCHAR NOT NULL,        -- sygehus|kontakt_id
    row_hash        UBIGINT NOT NULL,
    person_key      VARCHAR,
    component       VARCHAR,                 -- smallest contact key of its component
    event_key       VARCHAR
);

-- Injury events (the fold of ER contacts), as the temp table link_er_event, plus the person.
CREATE TABLE link.er_event (
    event_key       VARCHAR NOT NULL,
    person_key      VARCHAR,
    er_casualty_id  VARCHAR NOT NULL,
    n_er_contacts   BIGINT,
    cpr_pseudonym   VARCHAR,
    injury_date     DATE,
    injury_hour     BIGINT,
    sex             VARCHAR,
    age             INTEGER,
    road_user       VARCHAR,
    counterpart     VARCHAR,
    severity        VARCHAR,
    x               DOUBLE,
    y               DOUBLE,
    geocode_quality VARCHAR,
    geocode_rank    INTEGER,
    geocode_uncertainty_m DOUBLE,
    kommunekode     VARCHAR,
    row_hash        UBIGINT NOT NULL
);

-- Injured police persons with their accident's date and place, as link_police_person.
CREATE TABLE link.police_person (
    police_key      VARCHAR NOT NULL,
    casualty_id     VARCHAR NOT NULL,
    uheld_id        VARCHAR,
    elementnr       INTEGER,
    personnr        INTEGER,
    cpr_pseudonym   VARCHAR,
    age             INTEGER,
    sex             VARCHAR,
    road_user       VARCHAR,
    counterpart     VARCHAR,
    severity        VARCHAR,
    injury_date     DATE,
    injury_hour     BIGINT,
    kommunekode     VARCHAR,
    x               DOUBLE,
    y               DOUBLE,
    geocode_quality VARCHAR,
    geocode_uncertainty_m DOUBLE,
    geocode_rank    INTEGER,
    row_hash        UBIGINT NOT NULL
);

-- Scored ER-event x police-person pairs kept from earlier nights (probability >= the lower
-- of the review floor and the match threshold); pairs of a changed or vanished record are
-- deleted and re-scored.
CREATE TABLE link.scored_pair (
    er_key          VARCHAR NOT NULL,
    police_key      VARCHAR NOT NULL,
    match_probability DOUBLE NOT NULL,
    match_weight    DOUBLE NOT NULL
);

-- The one-to-one links of the last linkage (to find the casualties whose link changed).
CREATE TABLE link.pair (
    er_key          VARCHAR NOT NULL,
    police_key      VARCHAR NOT NULL,
    match_probability DOUBLE NOT NULL,
    match_weight    DOUBLE NOT NULL
);
