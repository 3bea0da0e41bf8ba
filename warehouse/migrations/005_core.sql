-- The entities (outputs.md §1). Rebuilt each run from staging (newest delivery per key wins),
-- so re-running the same night gives the same core.
CREATE TABLE core.er_contact (
    sygehus         VARCHAR NOT NULL,
    kontakt_id      VARCHAR NOT NULL,
    delivery_id     VARCHAR NOT NULL,        -- the delivery whose version won
    ankomst         TIMESTAMP NOT NULL,
    ulykke_tid      TIMESTAMP,
    injury_date     DATE NOT NULL,
    cpr_pseudonym   VARCHAR,
    birth_date      DATE,
    sex             VARCHAR,
    age             INTEGER,
    road_user       VARCHAR NOT NULL,
    counterpart     VARCHAR NOT NULL,
    ulykkessted     VARCHAR,
    kommunekode     VARCHAR,                 -- stated by the ward, else from the geocoded point
    diagnose        VARCHAR,
    bidiagnoser     VARCHAR[],
    afslutning      VARCHAR,
    severity        VARCHAR NOT NULL,
    x               DOUBLE,                  -- EPSG:25832, NULL when not placed
    y               DOUBLE,
    geocode_quality VARCHAR NOT NULL DEFAULT 'none',   -- A | B | C | police | none
    geocode_uncertainty_m DOUBLE,
    geocode_method  VARCHAR,                 -- address | nearest_number | junction | street | police | ...
    casualty_id     VARCHAR,
    PRIMARY KEY (sygehus, kontakt_id)
);

CREATE TABLE core.police_accident (
    uheld_id        VARCHAR PRIMARY KEY,
    delivery_id     VARCHAR NOT NULL,
    uheldsdato      DATE NOT NULL,
    klokkeslaet     TIME,
    uheldsart       VARCHAR,
    kode_uheldssituation VARCHAR,
    kommunekode     VARCHAR,
    vejnavn         VARCHAR,
    husnr           VARCHAR,
    krydsende_vej   VARCHAR,
    vejkode         VARCHAR,
    km_m            INTEGER,
    antal_draebte   INTEGER,
    antal_alv       INTEGER,
    antal_let       INTEGER,
    sprit           BOOLEAN,
    lys             VARCHAR,
    vejrforhold     VARCHAR,
    severity        VARCHAR NOT NULL,
    x               DOUBLE,
    y               DOUBLE,
    geocode_quality VARCHAR NOT NULL DEFAULT 'none',   -- police (their X/Y) | A | B | C | none
    geocode_uncertainty_m DOUBLE,
    xy_flag         VARCHAR                  -- NULL | outside_kommune | swapped | outside_denmark
);

CREATE TABLE core.police_person (
    uheld_id        VARCHAR NOT NULL,
    elementnr       INTEGER NOT NULL,
    personnr        INTEGER NOT NULL,
    delivery_id     VARCHAR NOT NULL,
    transportmiddel INTEGER,
    road_user       VARCHAR NOT NULL,
    counterpart     VARCHAR NOT NULL,        -- road user of the other element, or none
    personart       INTEGER,
    skadesgrad      VARCHAR,
    severity        VARCHAR NOT NULL,
    age             INTEGER,
    sex             VARCHAR,
    cpr_pseudonym   VARCHAR,
    birth_date      DATE,
    casualty_id     VARCHAR,                 -- injured persons only
    PRIMARY KEY (uheld_id, elementnr, personnr)
);

-- One injured person in one accident.
CREATE TABLE core.casualty (
    casualty_id     VARCHAR PRIMARY KEY,
    source          VARCHAR NOT NULL,        -- police | er | both
    uheld_id        VARCHAR,                 -- the police accident, when known
    injury_date     DATE NOT NULL,
    injury_hour     INTEGER,
    kommunekode     VARCHAR,
    x               DOUBLE,
    y               DOUBLE,
    geocode_quality VARCHAR NOT NULL,
    road_user       VARCHAR NOT NULL,
    counterpart     VARCHAR NOT NULL,
    severity        VARCHAR NOT NULL,        -- killed | serious | slight | unknown
    age_band        VARCHAR NOT NULL,        -- 0-14 | 15-17 | 18-24 | 25-44 | 45-64 | 65-74 | 75+ | unknown
    sex             VARCHAR,
    link_probability DOUBLE,                 -- NULL for single-source casualties
    n_er_contacts   INTEGER NOT NULL
);

-- Geocoding results per distinct (location text, municipality hint): a cache, so a text is
-- geocoded once however many nights it is seen. Cleared when the gazetteer changes.
CREATE TABLE core.geocode_result (
    location_text   VARCHAR NOT NULL,
    kommunekode_hint VARCHAR NOT NULL,       -- '' when the ward gave none
    x               DOUBLE,
    y               DOUBLE,
    kommunekode     VARCHAR,
    quality         VARCHAR NOT NULL,        -- A | B | C | none
    uncertainty_m   DOUBLE,
    method          VARCHAR,
    matched         VARCHAR,                 -- e.g. 'Kongensgade 12, 6700 Esbjerg'
    reason          VARCHAR,                 -- why none / why C
    PRIMARY KEY (location_text, kommunekode_hint)
);
