-- marts.hotspot_junction from hs_counts (unit_id = junction_id). expected_accidents is the
-- mean number of accidents per gazetteer junction of the kommune in the same period.
INSERT INTO marts.hotspot_junction BY NAME
WITH n_junction AS (
    SELECT kommunekode, count(*) AS n FROM gazetteer.junction GROUP BY kommunekode
),
kommune_total AS (
    SELECT kommunekode, period_start, period_end, sum(n_accidents) AS total
    FROM hs_counts
    GROUP BY ALL
)
SELECT
    k.* EXCLUDE (unit_id),
    j.junction_id,
    array_to_string(j.vejnavne, ' / ') AS vejnavne,
    bool_or(k.period_type = 'window' AND k.n_accidents >= $rule_min_accidents)
        OVER (PARTITION BY k.unit_id) AS rule_flag,
    t.total / greatest(coalesce(nj.n, 0), 1) AS expected_accidents,
    k.n_accidents / (t.total / greatest(coalesce(nj.n, 0), 1)) AS obs_exp_ratio,
    row_number() OVER (
        PARTITION BY k.kommunekode, k.period_start, k.period_end
        ORDER BY k.score DESC, k.n_accidents DESC, j.junction_id
    ) AS rank_in_kommune,
    ST_Point(j.x, j.y) AS geom
FROM hs_counts AS k
JOIN gazetteer.junction AS j ON j.junction_id = k.unit_id
JOIN kommune_total AS t
    ON t.kommunekode = k.kommunekode
    AND t.period_start = k.period_start AND t.period_end = k.period_end
LEFT JOIN n_junction AS nj ON nj.kommunekode = k.kommunekode;
