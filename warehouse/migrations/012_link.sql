-- The dark figure (mørketal): capture-recapture estimates of the true number of traffic
-- casualties from the two sources (ER and police), per stratum. Rebuilt each run by
-- skadestue.link.darkfigure.build_dark_figure (after linkage). See that module for the
-- assumptions (source independence within a stratum: the estimate is a lower bound).
CREATE TABLE marts.dark_figure (
    stratum_level   VARCHAR NOT NULL,        -- total | road_user | severity | kommune | road_user_severity | kommune_road_user_severity
    kommunekode     VARCHAR NOT NULL,        -- '*' = all
    road_user       VARCHAR NOT NULL,        -- '*' = all
    severity        VARCHAR NOT NULL,        -- '*' = all
    period_start    DATE NOT NULL,
    period_end      DATE NOT NULL,
    n_er            INTEGER NOT NULL,        -- casualties seen by an ER (source er or both)
    n_police        INTEGER NOT NULL,        -- casualties known to the police (police or both)
    n_both          INTEGER NOT NULL,        -- linked: seen by both
    n_observed      INTEGER NOT NULL,        -- n_er + n_police - n_both
    estimate        DOUBLE,                  -- Chapman estimate of all casualties
    ci_low          DOUBLE,                  -- 95 % log-normal interval (Chao), >= n_observed
    ci_high         DOUBLE,
    police_known_share DOUBLE,               -- n_police / estimate
    er_known_share  DOUBLE,                  -- n_er / estimate
    reliable        BOOLEAN NOT NULL,        -- n_both >= 7 (Chapman nearly unbiased)
    built_at        TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (stratum_level, kommunekode, road_user, severity)
);

-- ER-event x police-person pairs near the match threshold, for clerical review. Rebuilt each
-- run by the linkage (skadestue.link): keys and compared values only, never a CPR number.
CREATE TABLE quality.link_review (
    er_casualty_id  VARCHAR NOT NULL,        -- the ER event's own id ('E-...'), even when linked
    police_casualty_id VARCHAR NOT NULL,     -- 'P-<uheld_id>-<elementnr>-<personnr>'
    match_probability DOUBLE NOT NULL,
    match_weight    DOUBLE NOT NULL,
    decision        VARCHAR NOT NULL,        -- linked | below_threshold | lost_to_better_pair
    cpr_agrees      BOOLEAN,                 -- NULL when a side has no CPR pseudonym
    er_injury_date  DATE,
    police_injury_date DATE,
    er_sex          VARCHAR,
    police_sex      VARCHAR,
    er_age          INTEGER,
    police_age      INTEGER,
    er_road_user    VARCHAR,
    police_road_user VARCHAR,
    er_kommunekode  VARCHAR,
    police_kommunekode VARCHAR,
    distance_m      DOUBLE,                  -- NULL unless both are placed
    built_at        TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (er_casualty_id, police_casualty_id)
);
