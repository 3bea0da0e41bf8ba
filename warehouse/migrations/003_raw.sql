-- Every delivered row as delivered (text), with its delivery and line. CPR is replaced by its
-- pseudonym as the row is read (plus the facts derived from it), and free text is redacted:
-- no CPR number is ever written to disk.
CREATE TABLE raw.er_contact (
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
    extra           JSON,                    -- unknown extra columns, as delivered
    PRIMARY KEY (delivery_id, line_no)
);

CREATE TABLE raw.police_accident (
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
    extra           JSON,
    PRIMARY KEY (delivery_id, line_no)
);

CREATE TABLE raw.police_person (
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
    extra           JSON,
    PRIMARY KEY (delivery_id, line_no)
);
