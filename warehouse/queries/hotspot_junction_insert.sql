-- hs_junction_out: the junction rows of marts.hotspot_junction from hs_counts (unit_id =
-- junction_id), before the observed-vs-expected columns and rank_in_kommune
-- (skadestue.hotspots.expected writes them into the mart together).
CREATE OR REPLACE TEMP TABLE hs_junction_out AS
SELECT
    k.* EXCLUDE (unit_id),
    j.junction_id,
    array_to_string(j.vejnavne, ' / ') AS vejnavne,
    bool_or(k.period_type = 'window' AND k.n_accidents >= $rule_min_accidents)
        OVER (PARTITION BY k.unit_id) AS rule_flag,
    ST_Point(j.x, j.y) AS geom
FROM hs_counts AS k
JOIN gazetteer.junction AS j ON j.junction_id = k.unit_id;
