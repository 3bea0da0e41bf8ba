-- Typed and normalised rows, every version of every record (corrections included).
-- Vocabularies: sex M|K; road_user/counterpart as in outputs.md §1 (counterpart adds
-- 'none' for single-party accidents and 'fixed_object'); severity killed|serious|slight|unknown.
CREATE TABLE staging.er_contact (
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
    severity        VARCHAR NOT NULL,
    PRIMARY KEY (sygehus, kontakt_id, delivery_seq)
);

CREATE TABLE staging.police_accident (
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
    severity        VARCHAR NOT NULL,        -- from UHELDSART / counts
    PRIMARY KEY (uheld_id, delivery_seq)
);

CREATE TABLE staging.police_person (
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
    birth_date      DATE,
    PRIMARY KEY (uheld_id, elementnr, personnr, delivery_seq)
);
