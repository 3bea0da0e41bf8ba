-- Observed versus expected for junctions and road stretches (empirical Bayes), the FDR
-- correction of Gi* on the grid, and the traffic-safety plan join (outputs.md §2, §4).
-- Filled by skadestue.hotspots.expected and skadestue.plan.

-- Gi*: Benjamini-Hochberg q over the cells tested (one-sided normal p of gi_z), and the flag.
ALTER TABLE marts.hotspot_grid ADD COLUMN gi_q DOUBLE;
ALTER TABLE marts.hotspot_grid ADD COLUMN gi_hot BOOLEAN;

-- Junctions: expected_accidents (existing column) is now the comparable-site expectation
-- mu = class rate x area factor (postcode area, else kommune) (Poisson log-linear main effects, fitted on every junction
-- including those without accidents); obs_exp_ratio and poisson_p follow it.
ALTER TABLE marts.hotspot_junction ADD COLUMN road_class VARCHAR;        -- comparable-site group
ALTER TABLE marts.hotspot_junction ADD COLUMN eb_accidents DOUBLE;       -- EB estimate w*mu + (1-w)*x
ALTER TABLE marts.hotspot_junction ADD COLUMN excess_accidents DOUBLE;   -- eb_accidents - expected_accidents (PSI)
ALTER TABLE marts.hotspot_junction ADD COLUMN excess_score DOUBLE;       -- excess_accidents x score per accident
ALTER TABLE marts.hotspot_junction ADD COLUMN excess_p DOUBLE;           -- P(X >= x), X ~ NegBin(mu, k)
ALTER TABLE marts.hotspot_junction ADD COLUMN excess_q DOUBLE;           -- Benjamini-Hochberg over all junctions
ALTER TABLE marts.hotspot_junction ADD COLUMN excess_flag BOOLEAN;       -- sort plet: q < alpha and x >= rule minimum

ALTER TABLE marts.hotspot_segment ADD COLUMN road_class VARCHAR;
ALTER TABLE marts.hotspot_segment ADD COLUMN expected_accidents DOUBLE;
ALTER TABLE marts.hotspot_segment ADD COLUMN obs_exp_ratio DOUBLE;
ALTER TABLE marts.hotspot_segment ADD COLUMN eb_accidents DOUBLE;
ALTER TABLE marts.hotspot_segment ADD COLUMN excess_accidents DOUBLE;
ALTER TABLE marts.hotspot_segment ADD COLUMN excess_score DOUBLE;
ALTER TABLE marts.hotspot_segment ADD COLUMN excess_p DOUBLE;
ALTER TABLE marts.hotspot_segment ADD COLUMN excess_q DOUBLE;
ALTER TABLE marts.hotspot_segment ADD COLUMN excess_flag BOOLEAN;

-- The comparable-site model of the last build, per layer, period and group, for review.
CREATE TABLE marts.hotspot_expected_model (
    layer           VARCHAR NOT NULL,        -- hotspot_junction | hotspot_segment_100 | ...
    period_start    DATE NOT NULL,
    period_end      DATE NOT NULL,
    road_class      VARCHAR NOT NULL,
    area            VARCHAR NOT NULL,        -- postcode area ('6700'), or 'kommune 0561' for the rest
    n_sites         DOUBLE NOT NULL,         -- junctions, or window lengths in windows
    n_accidents     BIGINT NOT NULL,
    expected_per_site DOUBLE NOT NULL,       -- mu of a site of this class in this area
    dispersion_k    DOUBLE,                  -- negative-binomial k of the layer/period (NULL: Poisson)
    PRIMARY KEY (layer, period_start, period_end, road_class, area)
);

-- Traffic-safety plan measures (skadestue plan import FILE), EPSG:25832.
CREATE SCHEMA IF NOT EXISTS plan;
CREATE TABLE plan.measure (
    tiltag_id       VARCHAR PRIMARY KEY,     -- the plan's own id
    navn            VARCHAR,
    type            VARCHAR,
    status          VARCHAR,                 -- planlagt | igang | udført (as delivered, lower case)
    year            INTEGER,                 -- year done (or planned)
    kommunekode     VARCHAR,
    source_file     VARCHAR NOT NULL,
    imported_at     TIMESTAMP NOT NULL DEFAULT current_timestamp,
    geom            GEOMETRY NOT NULL
);

-- plan_coverage (outputs.md §4): one row per hotspot (gap or covered) and per done measure.
CREATE TABLE marts.plan_coverage (
    row_type        VARCHAR NOT NULL,        -- hotspot | measure
    layer           VARCHAR,                 -- hotspot_junction | hotspot_segment | hotspot_grid
    hotspot_key     VARCHAR,                 -- junction_id | kommunekode|vejkode|window_m|from_m | cell_id
    junction_id     VARCHAR,
    cell_id         VARCHAR,
    vejkode         VARCHAR,
    window_m        INTEGER,
    from_m          INTEGER,
    to_m            INTEGER,
    kommunekode     VARCHAR,
    period_start    DATE,
    period_end      DATE,
    n_accidents     INTEGER,
    score           DOUBLE,
    rank_in_kommune INTEGER,
    tiltag_id       VARCHAR,                 -- nearest measure within the buffer (hotspot rows), the measure (measure rows)
    tiltag_navn     VARCHAR,
    tiltag_type     VARCHAR,
    tiltag_status   VARCHAR,
    tiltag_year     INTEGER,
    distance_m      DOUBLE,
    gap             BOOLEAN,                 -- hotspot rows: no measure within the buffer
    buffer_m        DOUBLE,
    years_before    INTEGER,                 -- measure rows: full years compared on each side
    before_start    DATE,
    before_end      DATE,
    after_start     DATE,
    after_end       DATE,
    n_casualties_before INTEGER,
    n_casualties_after  INTEGER,
    n_serious_before    INTEGER,             -- killed + serious
    n_serious_after     INTEGER,
    n_er_only_before    INTEGER,
    n_er_only_after     INTEGER,
    change_pct      DOUBLE,
    caveat          VARCHAR,
    geom            GEOMETRY
);
