-- hs_segment_out: the road-window rows of marts.hotspot_segment from hs_counts (unit_id =
-- kommunekode|vejkode|window_m|from_m), before the observed-vs-expected columns and
-- rank_in_kommune (skadestue.hotspots.expected writes them into the mart together).
-- The rule of thumb counts accidents over the window period in the $stretch_m stretch
-- centred on the window (the window itself when it is at least that long).
CREATE OR REPLACE TEMP TABLE hs_segment_out AS
WITH stretch_window AS (
    SELECT DISTINCT unit_id, kommunekode, vejkode, window_m, from_m, to_m,
        greatest($stretch_m - window_m, 0) / 2 AS pad_m
    FROM hs_segment_assign
),
-- the windows whose stretch may hold each snapped window-period casualty (at most
-- 1 + 2 * pad / window of them), then the exact test: an equi-join, not a range join of every
-- window with every casualty on the same street
snap_window AS (
    SELECT s.kommunekode, s.vejkode, s.pos_m, c.accident_key, w.window_m,
        greatest($stretch_m - w.window_m, 0) / 2 AS pad_m,
        unnest(range(
            (floor((s.pos_m - greatest($stretch_m - w.window_m, 0) / 2 - w.window_m) / w.window_m))::BIGINT,
            (floor((s.pos_m + greatest($stretch_m - w.window_m, 0) / 2) / w.window_m))::BIGINT + 1
        )) * w.window_m AS from_m
    FROM hs_snap AS s
    JOIN hs_casualty AS c USING (casualty_id)
    JOIN hs_period AS p ON p.period_type = 'window'
        AND c.injury_date BETWEEN p.period_start AND p.period_end
    CROSS JOIN hs_segment_window AS w
),
stretch AS (
    SELECT w.unit_id, count(DISTINCT s.accident_key) AS n_accidents_stretch
    FROM stretch_window AS w
    JOIN snap_window AS s
        ON s.kommunekode = w.kommunekode AND s.vejkode = w.vejkode
        AND s.window_m = w.window_m AND s.from_m = w.from_m
    WHERE s.pos_m >= w.from_m - w.pad_m AND s.pos_m < w.to_m + w.pad_m
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
    g.geom
FROM hs_counts AS k
JOIN stretch_window AS w ON w.unit_id = k.unit_id
LEFT JOIN stretch AS r ON r.unit_id = k.unit_id
LEFT JOIN window_geom AS g ON g.unit_id = k.unit_id
LEFT JOIN street AS st ON st.kommunekode = w.kommunekode AND st.vejkode = w.vejkode;
