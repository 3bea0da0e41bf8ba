-- The big hotspot marts without primary-key indexes (issue 7's benchmark, issue 9): the ART
-- indexes cost more CPU than the rest of the insert (about 4 CPU-s to insert and 3 to commit per
-- million rows, on ~3 M mart rows per full build), as migrations 015 and 021 found for raw, staging
-- and core. Uniqueness per key (the old primary keys, below) is kept by construction:
-- skadestue.hotspots.build deletes the periods (and casualty_point injury years) it rebuilds and
-- writes one row per key from GROUP BYs on that key; tests/test_hotspots_incremental.py checks the
-- keys and compares incremental builds with full rebuilds. hotspot_period (6 rows) keeps its key.
--   hotspot_grid     (cell_id, kommunekode, period_start, period_end)
--   hotspot_junction (junction_id, period_start, period_end)
--   hotspot_segment  (kommunekode, vejkode, window_m, from_m, period_start, period_end)
--   casualty_point   (casualty_id)
-- The tables are copied whole (with the columns later migrations added), then the NOT NULL
-- constraints of migration 008 are put back.


CREATE TABLE marts.hotspot_grid_020 AS SELECT * FROM marts.hotspot_grid;
DROP TABLE marts.hotspot_grid;
ALTER TABLE marts.hotspot_grid_020 RENAME TO hotspot_grid;
ALTER TABLE marts.hotspot_grid ALTER COLUMN cell_id SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN cell_size_m SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN kommunekode SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN period_start SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN period_end SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN period_type SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN n_accidents SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN n_casualties SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN n_killed SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN n_serious SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN n_slight SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN n_unknown SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN n_police SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN n_er_only SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN n_pedestrian SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN n_cyclist SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN n_e_bike SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN n_moped SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN n_motorcycle SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN n_car SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN n_van SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN n_truck SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN n_bus SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN n_other SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN score SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN rule_flag SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN rank_in_kommune SET NOT NULL;
ALTER TABLE marts.hotspot_grid ALTER COLUMN geom SET NOT NULL;

CREATE TABLE marts.hotspot_junction_020 AS SELECT * FROM marts.hotspot_junction;
DROP TABLE marts.hotspot_junction;
ALTER TABLE marts.hotspot_junction_020 RENAME TO hotspot_junction;
ALTER TABLE marts.hotspot_junction ALTER COLUMN junction_id SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN kommunekode SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN period_start SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN period_end SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN period_type SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN n_accidents SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN n_casualties SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN n_killed SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN n_serious SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN n_slight SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN n_unknown SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN n_police SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN n_er_only SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN n_pedestrian SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN n_cyclist SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN n_e_bike SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN n_moped SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN n_motorcycle SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN n_car SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN n_van SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN n_truck SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN n_bus SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN n_other SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN score SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN rule_flag SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN rank_in_kommune SET NOT NULL;
ALTER TABLE marts.hotspot_junction ALTER COLUMN geom SET NOT NULL;

CREATE TABLE marts.hotspot_segment_020 AS SELECT * FROM marts.hotspot_segment;
DROP TABLE marts.hotspot_segment;
ALTER TABLE marts.hotspot_segment_020 RENAME TO hotspot_segment;
ALTER TABLE marts.hotspot_segment ALTER COLUMN kommunekode SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN vejkode SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN window_m SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN from_m SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN to_m SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN period_start SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN period_end SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN period_type SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN n_accidents SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN n_casualties SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN n_killed SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN n_serious SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN n_slight SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN n_unknown SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN n_police SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN n_er_only SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN n_pedestrian SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN n_cyclist SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN n_e_bike SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN n_moped SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN n_motorcycle SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN n_car SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN n_van SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN n_truck SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN n_bus SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN n_other SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN score SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN n_accidents_stretch SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN rule_flag SET NOT NULL;
ALTER TABLE marts.hotspot_segment ALTER COLUMN rank_in_kommune SET NOT NULL;

CREATE TABLE marts.casualty_point_020 AS SELECT * FROM marts.casualty_point;
DROP TABLE marts.casualty_point;
ALTER TABLE marts.casualty_point_020 RENAME TO casualty_point;
ALTER TABLE marts.casualty_point ALTER COLUMN casualty_id SET NOT NULL;
ALTER TABLE marts.casualty_point ALTER COLUMN injury_date SET NOT NULL;
ALTER TABLE marts.casualty_point ALTER COLUMN road_user SET NOT NULL;
ALTER TABLE marts.casualty_point ALTER COLUMN counterpart SET NOT NULL;
ALTER TABLE marts.casualty_point ALTER COLUMN severity SET NOT NULL;
ALTER TABLE marts.casualty_point ALTER COLUMN age_band SET NOT NULL;
ALTER TABLE marts.casualty_point ALTER COLUMN source SET NOT NULL;
