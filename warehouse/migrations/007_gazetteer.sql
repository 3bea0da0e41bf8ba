-- Reference geodata for the offline geocoder and the hotspot layers (inputs.md §3).
-- Filled by geodata.importer.import_geodata, which replaces every table on each import.
-- All geometries and coordinates are EPSG:25832 (x = easting, y = northing), 2-D.

-- DAGI kommuner, dissolved: one row per municipality.
CREATE TABLE gazetteer.municipality (
    kommunekode     VARCHAR PRIMARY KEY,     -- 4 digits, '0561'
    navn            VARCHAR,
    geom            GEOMETRY                 -- (multi)polygon
);

-- DAGI postnumre, dissolved: one row per postcode.
CREATE TABLE gazetteer.postcode (
    postnr          VARCHAR PRIMARY KEY,     -- '6700'
    navn            VARCHAR,
    geom            GEOMETRY
);

-- DAR/DAWA access addresses (adgangsadresser) with their access point.
CREATE TABLE gazetteer.address (
    id              VARCHAR PRIMARY KEY,     -- DAWA UUID
    kommunekode     VARCHAR NOT NULL,
    vejkode         VARCHAR NOT NULL,        -- 4 digits
    vejnavn         VARCHAR,
    husnr           VARCHAR,                 -- as published: '12', '12B'
    husnr_tal       INTEGER,                 -- numeric part of husnr (12)
    husnr_bogstav   VARCHAR,                 -- letter part, upper case ('B'), '' if none
    postnr          VARCHAR,
    postnrnavn      VARCHAR,
    supplerendebynavn VARCHAR,
    x               DOUBLE NOT NULL,
    y               DOUBLE NOT NULL
);

-- Road centre lines (GeoDanmark / DAWA vejmidte), Z dropped.
CREATE TABLE gazetteer.road_segment (
    segment_id      VARCHAR PRIMARY KEY,
    kommunekode     VARCHAR NOT NULL,
    vejkode         VARCHAR,
    vejnavn         VARCHAR,
    vejklasse       VARCHAR,
    startknude      VARCHAR,
    slutknude       VARCHAR,
    length_m        DOUBLE,
    geom            GEOMETRY                 -- linestring
);

-- One named street per (kommunekode, vejkode), from addresses and road segments.
CREATE TABLE gazetteer.street (
    kommunekode     VARCHAR NOT NULL,
    vejkode         VARCHAR NOT NULL,
    vejnavn         VARCHAR NOT NULL,
    navn_norm       VARCHAR NOT NULL,        -- skadestue.geocode.normalise(vejnavn)
    postnumre       VARCHAR[],               -- postcodes of its addresses (or of its line)
    x               DOUBLE,                  -- a point on the street
    y               DOUBLE,
    length_m        DOUBLE,                  -- road length, else extent of its addresses
    n_addresses     INTEGER NOT NULL DEFAULT 0,
    geom            GEOMETRY,                -- merged centre line; NULL when no road data
    PRIMARY KEY (kommunekode, vejkode)
);

-- Nodes shared by differently named / coded roads. junction_id is derived from the position,
-- so it is stable across re-imports of the same data: 'J<kommunekode>_<round x>_<round y>'.
CREATE TABLE gazetteer.junction (
    junction_id     VARCHAR PRIMARY KEY,
    kommunekode     VARCHAR NOT NULL,
    x               DOUBLE NOT NULL,
    y               DOUBLE NOT NULL,
    vejnavne        VARCHAR[],               -- the distinct road names meeting here (sorted)
    vejkoder        VARCHAR[],               -- the distinct vejkoder meeting here (sorted)
    n_roads         INTEGER NOT NULL,
    node_id         VARCHAR                  -- STARTKNUDE/SLUTKNUDE id, NULL when snapped
);

-- Optional place names / landmarks (CSV name, x, y).
CREATE TABLE gazetteer.place (
    navn            VARCHAR NOT NULL,
    navn_norm       VARCHAR NOT NULL,
    kommunekode     VARCHAR,
    x               DOUBLE NOT NULL,
    y               DOUBLE NOT NULL
);

-- One row per import: what was loaded, so the geocode cache is cleared only on change.
CREATE TABLE gazetteer.import_log (
    imported_at     TIMESTAMP NOT NULL DEFAULT current_timestamp,
    fingerprint     VARCHAR NOT NULL,        -- sha256 over the input files
    sources         JSON,
    counts          JSON
);
