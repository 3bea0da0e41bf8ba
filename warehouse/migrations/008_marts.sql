-- Hotspot marts (outputs.md §2): the published layers before disclosure control.
-- Rebuilt each run by skadestue.hotspots.build_hotspots. Coordinates EPSG:25832 (metres).
-- Every hotspot row is one place x one period: period_type 'window' = the analysis window
-- (the last hotspot.period_years full calendar years), 'year' = one calendar year in it.

-- The periods of the last build and what was left out of the layers (and why).
CREATE TABLE marts.hotspot_period (
    period_start    DATE NOT NULL,
    period_end      DATE NOT NULL,
    period_type     VARCHAR NOT NULL,        -- window | year
    n_casualties    INTEGER NOT NULL,        -- casualties dated in the period
    n_placed        INTEGER NOT NULL,        -- with x/y and a kommunekode: in the hotspot layers
    n_unplaced      INTEGER NOT NULL,        -- x/y NULL: not in any hotspot layer
    n_no_kommune    INTEGER NOT NULL,        -- placed, but no kommunekode and outside every kommune
    n_on_junction   INTEGER NOT NULL,        -- placed casualties assigned to a junction
    n_on_road       INTEGER NOT NULL,        -- placed casualties snapped to a road (segments)
    built_at        TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (period_start, period_end)
);

CREATE TABLE marts.hotspot_grid (
    cell_id         VARCHAR NOT NULL,        -- Det Danske Kvadratnet: 100m_61669_7288, 1km_6166_728
    cell_size_m     INTEGER NOT NULL,
    kommunekode     VARCHAR NOT NULL,        -- of the casualties: a cell in two kommuner has two rows
    period_start    DATE NOT NULL,
    period_end      DATE NOT NULL,
    period_type     VARCHAR NOT NULL,
    n_accidents     INTEGER NOT NULL,        -- distinct coalesce(uheld_id, casualty_id)
    n_casualties    INTEGER NOT NULL,
    n_killed        INTEGER NOT NULL,
    n_serious       INTEGER NOT NULL,
    n_slight        INTEGER NOT NULL,
    n_unknown       INTEGER NOT NULL,
    n_police        INTEGER NOT NULL,        -- source police or both
    n_er_only       INTEGER NOT NULL,        -- source er
    n_pedestrian    INTEGER NOT NULL,
    n_cyclist       INTEGER NOT NULL,
    n_e_bike        INTEGER NOT NULL,
    n_moped         INTEGER NOT NULL,
    n_motorcycle    INTEGER NOT NULL,
    n_car           INTEGER NOT NULL,
    n_van           INTEGER NOT NULL,
    n_truck         INTEGER NOT NULL,
    n_bus           INTEGER NOT NULL,
    n_other         INTEGER NOT NULL,        -- other + unknown
    score           DOUBLE NOT NULL,         -- severity-weighted casualties (hotspot.weight_*)
    rule_flag       BOOLEAN NOT NULL,        -- >= rule_min_accidents in the cell over the window
    gi_z            DOUBLE,                  -- Getis-Ord Gi* z: 100 m cells, window period only
    gi_p            DOUBLE,                  -- its one-sided permutation p-value
    rank_in_kommune INTEGER NOT NULL,        -- per kommune, period, cell size: score, n_accidents, cell_id
    geom            GEOMETRY NOT NULL,       -- the cell polygon
    PRIMARY KEY (cell_id, kommunekode, period_start, period_end)
);

CREATE TABLE marts.hotspot_junction (
    junction_id     VARCHAR NOT NULL,
    vejnavne        VARCHAR,                 -- 'Storegade / Jernbanegade'
    kommunekode     VARCHAR NOT NULL,        -- of the junction
    period_start    DATE NOT NULL,
    period_end      DATE NOT NULL,
    period_type     VARCHAR NOT NULL,
    n_accidents     INTEGER NOT NULL,
    n_casualties    INTEGER NOT NULL,
    n_killed        INTEGER NOT NULL,
    n_serious       INTEGER NOT NULL,
    n_slight        INTEGER NOT NULL,
    n_unknown       INTEGER NOT NULL,
    n_police        INTEGER NOT NULL,
    n_er_only       INTEGER NOT NULL,
    n_pedestrian    INTEGER NOT NULL,
    n_cyclist       INTEGER NOT NULL,
    n_e_bike        INTEGER NOT NULL,
    n_moped         INTEGER NOT NULL,
    n_motorcycle    INTEGER NOT NULL,
    n_car           INTEGER NOT NULL,
    n_van           INTEGER NOT NULL,
    n_truck         INTEGER NOT NULL,
    n_bus           INTEGER NOT NULL,
    n_other         INTEGER NOT NULL,
    score           DOUBLE NOT NULL,
    rule_flag       BOOLEAN NOT NULL,        -- >= rule_min_accidents within junction_radius_m over the window
    expected_accidents DOUBLE,               -- mean accidents per gazetteer junction in the kommune, same period
    obs_exp_ratio   DOUBLE,                  -- n_accidents / expected_accidents
    poisson_p       DOUBLE,                  -- P(X >= n_accidents), X ~ Poisson(expected_accidents)
    rank_in_kommune INTEGER NOT NULL,
    geom            GEOMETRY NOT NULL,       -- the junction point
    PRIMARY KEY (junction_id, period_start, period_end)
);

CREATE TABLE marts.hotspot_segment (
    kommunekode     VARCHAR NOT NULL,        -- of the road (gazetteer.street)
    vejkode         VARCHAR NOT NULL,
    vejnavn         VARCHAR,
    window_m        INTEGER NOT NULL,        -- 100 | 500 (hotspot.segment_windows_m)
    from_m          INTEGER NOT NULL,        -- along the street's merged line
    to_m            INTEGER NOT NULL,
    period_start    DATE NOT NULL,
    period_end      DATE NOT NULL,
    period_type     VARCHAR NOT NULL,
    n_accidents     INTEGER NOT NULL,
    n_casualties    INTEGER NOT NULL,
    n_killed        INTEGER NOT NULL,
    n_serious       INTEGER NOT NULL,
    n_slight        INTEGER NOT NULL,
    n_unknown       INTEGER NOT NULL,
    n_police        INTEGER NOT NULL,
    n_er_only       INTEGER NOT NULL,
    n_pedestrian    INTEGER NOT NULL,
    n_cyclist       INTEGER NOT NULL,
    n_e_bike        INTEGER NOT NULL,
    n_moped         INTEGER NOT NULL,
    n_motorcycle    INTEGER NOT NULL,
    n_car           INTEGER NOT NULL,
    n_van           INTEGER NOT NULL,
    n_truck         INTEGER NOT NULL,
    n_bus           INTEGER NOT NULL,
    n_other         INTEGER NOT NULL,
    score           DOUBLE NOT NULL,
    n_accidents_stretch INTEGER NOT NULL,    -- accidents in the rule_stretch_m stretch centred on the window, over the window period
    rule_flag       BOOLEAN NOT NULL,        -- n_accidents_stretch >= rule_min_accidents
    rank_in_kommune INTEGER NOT NULL,        -- per kommune, period, window_m
    geom            GEOMETRY,                -- the piece of road
    PRIMARY KEY (kommunekode, vejkode, window_m, from_m, period_start, period_end)
);

-- One row per casualty, for the road engineers' tier. No birth date, pseudonym, contact id
-- or free text: only what the published layer may show.
CREATE TABLE marts.casualty_point (
    casualty_id     VARCHAR PRIMARY KEY,
    injury_date     DATE NOT NULL,
    injury_hour     INTEGER,
    road_user       VARCHAR NOT NULL,
    counterpart     VARCHAR NOT NULL,
    severity        VARCHAR NOT NULL,
    age_band        VARCHAR NOT NULL,
    sex             VARCHAR,
    source          VARCHAR NOT NULL,
    kommunekode     VARCHAR,
    x               DOUBLE,
    y               DOUBLE,
    geom            GEOMETRY                 -- NULL when not placed
);
