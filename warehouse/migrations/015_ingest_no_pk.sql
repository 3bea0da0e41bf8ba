-- Uniqueness of raw and staging rows is enforced by the load logic, not by primary-key
-- indexes (which made bulk inserts about 4x slower): raw rows are unique per (delivery_id,
-- line_no) because every record has its own file line; staging rows per record key and
-- delivery because a key repeated within a file quarantines all but its last line
-- ("duplicate key ... superseded by line N"). skadestue.ingest.delivery.check_accounting
-- asserts both for every delivery before its transaction commits.

CREATE TABLE raw.er_contact_015 (
    delivery_id     VARCHAR NOT NULL,
    line_no         INTEGER NOT NULL,        -- 1-based line in the file, header = line 1
    row_hash        VARCHAR NOT NULL,        -- sha256 of the original row text (audit)
    kontakt_id      VARCHAR,
    sygehus         VARCHAR,
    ankomst         VARCHAR,
    ulykke_tid      VARCHAR,
    cpr_pseudonym   VARCHAR,                 -- HMAC-SHA256 of the normalised CPR; NULL if none/invalid
    cpr_status      VARCHAR,                 -- valid | missing | invalid
    cpr_birth_date  DATE,                    -- derived from a valid CPR
    cpr_sex         VARCHAR,                 -- M | K derived from a valid CPR
    koen            VARCHAR,
    alder           VARCHAR,
    transportmiddel VARCHAR,
    modpart         VARCHAR,
    ulykkessted     VARCHAR,                 -- CPR-like digit runs redacted
    kommune         VARCHAR,
    diagnose        VARCHAR,
    bidiagnoser     VARCHAR,
    afslutning      VARCHAR,
    fritekst_chars  INTEGER,                 -- the narrative itself is never stored
    extra           JSON   -- unknown extra columns, as delivered
);
INSERT INTO raw.er_contact_015 SELECT * FROM raw.er_contact;
DROP TABLE raw.er_contact;
ALTER TABLE raw.er_contact_015 RENAME TO er_contact;

CREATE TABLE raw.police_accident_015 (
    delivery_id     VARCHAR NOT NULL,
    line_no         INTEGER NOT NULL,
    row_hash        VARCHAR NOT NULL,
    uhelds_id       VARCHAR,
    uheldsdato      VARCHAR,
    klokkeslaet     VARCHAR,
    uheldsart       VARCHAR,
    kode_uheldssituation VARCHAR,
    uheldkommune    VARCHAR,
    vejnavn         VARCHAR,
    husnr           VARCHAR,
    krydsende_vej   VARCHAR,
    vejkode         VARCHAR,
    km              VARCHAR,
    x_koordinat     VARCHAR,
    y_koordinat     VARCHAR,
    antal_draebte   VARCHAR,
    antal_alv_tilskadekomne VARCHAR,
    antal_let_tilskadekomne VARCHAR,
    sprit           VARCHAR,
    lys             VARCHAR,
    vejrforhold     VARCHAR,
    uheldstekst_chars INTEGER,               -- the narrative itself is never stored
    extra           JSON
);
INSERT INTO raw.police_accident_015 SELECT * FROM raw.police_accident;
DROP TABLE raw.police_accident;
ALTER TABLE raw.police_accident_015 RENAME TO police_accident;

CREATE TABLE raw.police_person_015 (
    delivery_id     VARCHAR NOT NULL,
    line_no         INTEGER NOT NULL,
    row_hash        VARCHAR NOT NULL,
    uhelds_id       VARCHAR,
    elementnr       VARCHAR,
    personnr        VARCHAR,
    transportmiddel VARCHAR,
    personart       VARCHAR,
    skadesgrad      VARCHAR,
    alder           VARCHAR,
    koen            VARCHAR,
    cpr_pseudonym   VARCHAR,
    cpr_status      VARCHAR,
    cpr_birth_date  DATE,
    cpr_sex         VARCHAR,
    extra           JSON
);
INSERT INTO raw.police_person_015 SELECT * FROM raw.police_person;
DROP TABLE raw.police_person;
ALTER TABLE raw.police_person_015 RENAME TO police_person;

CREATE TABLE staging.er_contact_015 (
    sygehus         VARCHAR NOT NULL,
    kontakt_id      VARCHAR NOT NULL,
    delivery_id     VARCHAR NOT NULL,
    delivery_seq    INTEGER NOT NULL,
    line_no         INTEGER NOT NULL,
    ankomst         TIMESTAMP NOT NULL,
    ulykke_tid      TIMESTAMP,               -- bare times resolved against ankomst
    injury_date     DATE NOT NULL,           -- date of ulykke_tid, else of ankomst
    cpr_pseudonym   VARCHAR,
    birth_date      DATE,
    sex             VARCHAR,
    age             INTEGER,                 -- at the accident
    road_user       VARCHAR NOT NULL,
    counterpart     VARCHAR NOT NULL,
    ulykkessted     VARCHAR,
    kommunekode     VARCHAR,                 -- 4 digits, from the ward's `kommune` answer
    diagnose        VARCHAR,
    bidiagnoser     VARCHAR[],
    afslutning      VARCHAR,                 -- hjem | indlagt | overflyttet | død | NULL
    severity        VARCHAR NOT NULL
);
INSERT INTO staging.er_contact_015 SELECT * FROM staging.er_contact;
DROP TABLE staging.er_contact;
ALTER TABLE staging.er_contact_015 RENAME TO er_contact;

CREATE TABLE staging.police_accident_015 (
    uheld_id        VARCHAR NOT NULL,
    delivery_id     VARCHAR NOT NULL,
    delivery_seq    INTEGER NOT NULL,
    line_no         INTEGER NOT NULL,
    uheldsdato      DATE NOT NULL,
    klokkeslaet     TIME,
    uheldsart       VARCHAR,
    kode_uheldssituation VARCHAR,
    kommunekode     VARCHAR,
    vejnavn         VARCHAR,
    husnr           VARCHAR,
    krydsende_vej   VARCHAR,
    vejkode         VARCHAR,
    km_m            INTEGER,                 -- '12/0450' -> 12450
    x               DOUBLE,                  -- as delivered (EPSG:25832), NULL if blank
    y               DOUBLE,
    antal_draebte   INTEGER,
    antal_alv       INTEGER,
    antal_let       INTEGER,
    sprit           BOOLEAN,
    lys             VARCHAR,
    vejrforhold     VARCHAR,
    severity        VARCHAR NOT NULL   -- from UHELDSART / counts
);
INSERT INTO staging.police_accident_015 SELECT * FROM staging.police_accident;
DROP TABLE staging.police_accident;
ALTER TABLE staging.police_accident_015 RENAME TO police_accident;

CREATE TABLE staging.police_person_015 (
    uheld_id        VARCHAR NOT NULL,
    elementnr       INTEGER NOT NULL,
    personnr        INTEGER NOT NULL,
    delivery_id     VARCHAR NOT NULL,
    delivery_seq    INTEGER NOT NULL,
    line_no         INTEGER NOT NULL,
    transportmiddel INTEGER,
    road_user       VARCHAR NOT NULL,
    personart       INTEGER,
    skadesgrad      VARCHAR,                 -- D | A | L | U
    severity        VARCHAR NOT NULL,        -- killed | serious | slight | uninjured | unknown
    age             INTEGER,
    sex             VARCHAR,
    cpr_pseudonym   VARCHAR,
    birth_date      DATE
);
INSERT INTO staging.police_person_015 SELECT * FROM staging.police_person;
DROP TABLE staging.police_person;
ALTER TABLE staging.police_person_015 RENAME TO police_person;
