-- marts.hotspot_segment from hs_counts (unit_id = kommunekode|vejkode|window_m|from_m).
-- The rule of thumb counts accidents over the window period in the $stretch_m stretch
-- centred on the window (the window itself when it is at least that long).
INSERT INTO marts.hotspot_segment BY NAME
WITH stretch_window AS (
    SELECT DISTINCT unit_id, kommunekode, vejkode, window_m, from_m, to_m,
        greatest($stretch_m - window_m, 0) / 2 AS pad_m
    FROM hs_segment_assign
),
stretch AS (
    SELECT w.unit_id, count(DISTINCT c.accident_key) AS n_accidents_stretch
    FROM stretch_window AS w
    JOIN hs_snap AS s
        ON s.kommunekode = w.kommunekode AND s.vejkode = w.vejkode
        AND s.pos_m >= w.from_m - w.pad_m AND s.pos_m < w.to_m + w.pad_m
    JOIN hs_casualty AS c USING (casualty_id)
    JOIN hs_period AS p ON p.period_type = 'window'
        AND c.injury_date BETWEEN p.period_start AND p.period_end
    GROUP BY w.unit_id
),
piece AS (
    SELECT
        w.unit_id,
        ST_LineSubstring(
            p.geom,
            greatest(w.from_m - p.offset_m, 0) / p.len_m,
            least(w.to_m - p.offset_m, p.len_m) / p.len_m
        ) AS geom
    FROM stretch_window AS w
    JOIN hs_street_part AS p
        ON p.kommunekode = w.kommunekode AND p.vejkode = w.vejkode
        AND p.offset_m < w.to_m AND p.offset_m + p.len_m > w.from_m
),
window_geom AS (
    SELECT unit_id,
        CASE WHEN count(*) = 1 THEN any_value(geom) ELSE ST_Collect(list(geom)) END AS geom
    FROM piece
    GROUP BY unit_id
),
street AS (
    SELECT kommunekode, vejkode, any_value(vejnavn) AS vejnavn
    FROM hs_street_part
    GROUP BY ALL
)
SELECT
    k.* EXCLUDE (unit_id, kommunekode),
    w.kommunekode,
    w.vejkode,
    st.vejnavn,
    w.window_m,
    w.from_m,
    w.to_m,
    coalesce(r.n_accidents_stretch, 0) AS n_accidents_stretch,
    coalesce(r.n_accidents_stretch, 0) >= $rule_min_accidents AS rule_flag,
    row_number() OVER (
        PARTITION BY w.kommunekode, k.period_start, k.period_end, w.window_m
        ORDER BY k.score DESC, k.n_accidents DESC, w.vejkode, w.from_m
    ) AS rank_in_kommune,
    g.geom
FROM hs_counts AS k
JOIN stretch_window AS w ON w.unit_id = k.unit_id
LEFT JOIN stretch AS r ON r.unit_id = k.unit_id
LEFT JOIN window_geom AS g ON g.unit_id = k.unit_id
LEFT JOIN street AS st ON st.kommunekode = w.kommunekode AND st.vejkode = w.vejkode;
