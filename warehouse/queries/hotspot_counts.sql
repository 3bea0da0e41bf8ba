-- Counts per hotspot unit x period from hs_unit(unit_id, kommunekode, casualty_id):
-- the same columns for grid cells, junctions and road stretches.
CREATE OR REPLACE TEMP TABLE hs_counts AS
SELECT
    u.unit_id,
    u.kommunekode,
    p.period_start,
    p.period_end,
    p.period_type,
    count(DISTINCT c.accident_key)                                  AS n_accidents,
    count(*)                                                        AS n_casualties,
    count(*) FILTER (WHERE c.severity = 'killed')                   AS n_killed,
    count(*) FILTER (WHERE c.severity = 'serious')                  AS n_serious,
    count(*) FILTER (WHERE c.severity = 'slight')                   AS n_slight,
    count(*) FILTER (WHERE c.severity NOT IN ('killed', 'serious', 'slight')) AS n_unknown,
    count(*) FILTER (WHERE c.source IN ('police', 'both'))          AS n_police,
    count(*) FILTER (WHERE c.source = 'er')                         AS n_er_only,
    count(*) FILTER (WHERE c.road_user = 'pedestrian')              AS n_pedestrian,
    count(*) FILTER (WHERE c.road_user = 'cyclist')                 AS n_cyclist,
    count(*) FILTER (WHERE c.road_user = 'e_bike')                  AS n_e_bike,
    count(*) FILTER (WHERE c.road_user = 'moped')                   AS n_moped,
    count(*) FILTER (WHERE c.road_user = 'motorcycle')              AS n_motorcycle,
    count(*) FILTER (WHERE c.road_user = 'car')                     AS n_car,
    count(*) FILTER (WHERE c.road_user = 'van')                     AS n_van,
    count(*) FILTER (WHERE c.road_user = 'truck')                   AS n_truck,
    count(*) FILTER (WHERE c.road_user = 'bus')                     AS n_bus,
    count(*) FILTER (WHERE c.road_user NOT IN
        ('pedestrian', 'cyclist', 'e_bike', 'moped', 'motorcycle', 'car', 'van', 'truck', 'bus')) AS n_other,
    $weight_killed * n_killed + $weight_serious * n_serious
        + $weight_slight * n_slight + $weight_unknown * n_unknown  AS score
FROM hs_unit AS u
JOIN hs_casualty AS c USING (casualty_id)
JOIN hs_period AS p ON c.injury_date BETWEEN p.period_start AND p.period_end
GROUP BY ALL;
