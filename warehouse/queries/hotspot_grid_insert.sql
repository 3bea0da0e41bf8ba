-- marts.hotspot_grid from hs_counts (unit_id = cell_id) and the cell corners, with the Gi*
-- columns from hs_gi on the window rows of the $gi_size_m grid (NULL elsewhere).
INSERT INTO marts.hotspot_grid BY NAME
WITH cell AS (
    SELECT DISTINCT cell_id, cell_size_m, e0, n0 FROM hs_grid_assign
)
SELECT
    k.* EXCLUDE (unit_id),
    g.cell_id,
    g.cell_size_m,
    bool_or(k.period_type = 'window' AND k.n_accidents >= $rule_min_accidents)
        OVER (PARTITION BY k.unit_id, k.kommunekode) AS rule_flag,
    row_number() OVER (
        PARTITION BY k.kommunekode, k.period_start, k.period_end, g.cell_size_m
        ORDER BY k.score DESC, k.n_accidents DESC, g.cell_id
    ) AS rank_in_kommune,
    CASE WHEN k.period_type = 'window' AND g.cell_size_m = $gi_size_m THEN gi.gi_z END AS gi_z,
    CASE WHEN k.period_type = 'window' AND g.cell_size_m = $gi_size_m THEN gi.gi_p END AS gi_p,
    CASE WHEN k.period_type = 'window' AND g.cell_size_m = $gi_size_m THEN gi.gi_q END AS gi_q,
    CASE WHEN k.period_type = 'window' AND g.cell_size_m = $gi_size_m THEN gi.gi_hot END AS gi_hot,
    ST_MakeEnvelope(g.e0, g.n0, g.e0 + g.cell_size_m, g.n0 + g.cell_size_m) AS geom
FROM hs_counts AS k
JOIN cell AS g ON g.cell_id = k.unit_id
LEFT JOIN hs_gi AS gi ON gi.cell_id = k.unit_id;
