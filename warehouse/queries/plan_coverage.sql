-- marts.plan_coverage (outputs.md §4) from the window period's hotspots and plan.measure.
-- Hotspot rows: the sites a plan should answer for, each with the nearest measure within
-- buffer_m (gap = none): junctions and road windows of the shortest length that are
-- significantly above expected (excess_flag, sorte pletter) or meet the rule of thumb and
-- rank in the kommune's top_n; 100 m cells with gi_hot and the rule of thumb in the top_n.
-- Measure rows: every measure done (status 'udført') in year Y with casualties within
-- buffer_m of it in up to max_years full years before Y and as many after Y (Y itself left
-- out as the building year), with the regression-to-the-mean caveat.
DELETE FROM marts.plan_coverage;

INSERT INTO marts.plan_coverage BY NAME
WITH win AS (
    SELECT period_start, period_end FROM marts.hotspot_period WHERE period_type = 'window'
),
hot AS (
    SELECT 'hotspot_junction' AS layer, junction_id AS hotspot_key, junction_id, NULL AS cell_id,
           NULL AS vejkode, NULL::INTEGER AS window_m, NULL::INTEGER AS from_m, NULL::INTEGER AS to_m,
           kommunekode, period_start, period_end, n_accidents, score, rank_in_kommune, geom
    FROM marts.hotspot_junction
    WHERE period_type = 'window' AND (coalesce(excess_flag, false) OR (rule_flag AND rank_in_kommune <= $top_n))
    UNION ALL
    SELECT 'hotspot_segment', concat_ws('|', kommunekode, vejkode, window_m, from_m), NULL, NULL,
           vejkode, window_m, from_m, to_m, kommunekode, period_start, period_end, n_accidents, score,
           rank_in_kommune, geom
    FROM marts.hotspot_segment
    WHERE period_type = 'window' AND geom IS NOT NULL
      AND (coalesce(excess_flag, false) OR (rule_flag AND rank_in_kommune <= $top_n))
      AND window_m = (SELECT min(window_m) FROM marts.hotspot_segment)
    UNION ALL
    SELECT 'hotspot_grid', cell_id || '|' || kommunekode, NULL, cell_id, NULL, NULL, NULL, NULL,
           kommunekode, period_start, period_end, n_accidents, score, rank_in_kommune, geom
    FROM marts.hotspot_grid
    WHERE period_type = 'window' AND coalesce(gi_hot, false) AND rule_flag AND rank_in_kommune <= $top_n
      AND cell_size_m = (SELECT min(cell_size_m) FROM marts.hotspot_grid)
),
near AS (
    SELECT h.layer, h.hotspot_key, m.tiltag_id, m.navn, m.type, m.status, m.year,
           ST_Distance(h.geom, m.geom) AS distance_m
    FROM hot AS h
    JOIN plan.measure AS m ON ST_DWithin(h.geom, m.geom, $buffer_m)
    QUALIFY row_number() OVER (PARTITION BY h.layer, h.hotspot_key ORDER BY distance_m, m.tiltag_id) = 1
)
SELECT
    'hotspot' AS row_type, h.* EXCLUDE (geom), h.geom,
    n.tiltag_id, n.navn AS tiltag_navn, n.type AS tiltag_type, n.status AS tiltag_status,
    n.year AS tiltag_year, n.distance_m, n.tiltag_id IS NULL AS gap, $buffer_m AS buffer_m
FROM hot AS h
LEFT JOIN near AS n USING (layer, hotspot_key);

INSERT INTO marts.plan_coverage BY NAME
WITH data_years AS (
    SELECT
        CASE WHEN month(min(injury_date)) = 1 AND day(min(injury_date)) = 1 THEN year(min(injury_date))
             ELSE year(min(injury_date)) + 1 END AS first_year,
        (SELECT year(period_end) FROM marts.hotspot_period WHERE period_type = 'window') AS last_year
    FROM core.casualty
),
done AS (
    SELECT m.*, least($max_years, m.year - d.first_year, d.last_year - m.year) AS n_years
    FROM plan.measure AS m, data_years AS d
    WHERE m.status = 'udført' AND m.year IS NOT NULL
),
spans AS (
    SELECT *,
        make_date(year - greatest(n_years, 0), 1, 1) AS before_start,
        make_date(year - 1, 12, 31) AS before_end,
        make_date(year + 1, 1, 1) AS after_start,
        make_date(year + greatest(n_years, 0), 12, 31) AS after_end
    FROM done
),
counts AS (
    SELECT s.tiltag_id,
        count(*) FILTER (WHERE c.injury_date BETWEEN s.before_start AND s.before_end) AS n_casualties_before,
        count(*) FILTER (WHERE c.injury_date BETWEEN s.after_start AND s.after_end) AS n_casualties_after,
        count(*) FILTER (WHERE c.injury_date BETWEEN s.before_start AND s.before_end
                         AND c.severity IN ('killed', 'serious')) AS n_serious_before,
        count(*) FILTER (WHERE c.injury_date BETWEEN s.after_start AND s.after_end
                         AND c.severity IN ('killed', 'serious')) AS n_serious_after,
        count(*) FILTER (WHERE c.injury_date BETWEEN s.before_start AND s.before_end
                         AND c.source = 'er') AS n_er_only_before,
        count(*) FILTER (WHERE c.injury_date BETWEEN s.after_start AND s.after_end
                         AND c.source = 'er') AS n_er_only_after
    FROM spans AS s
    JOIN core.casualty AS c
        ON c.x IS NOT NULL AND ST_DWithin(s.geom, ST_Point(c.x, c.y), $buffer_m)
        AND coalesce(c.geocode_uncertainty_m, 0) <= $buffer_m
    WHERE s.n_years >= 1
    GROUP BY s.tiltag_id
)
SELECT
    'measure' AS row_type, s.kommunekode, s.tiltag_id, s.navn AS tiltag_navn, s.type AS tiltag_type,
    s.status AS tiltag_status, s.year AS tiltag_year, $buffer_m AS buffer_m,
    CASE WHEN s.n_years >= 1 THEN s.n_years END AS years_before,
    CASE WHEN s.n_years >= 1 THEN s.before_start END AS before_start,
    CASE WHEN s.n_years >= 1 THEN s.before_end END AS before_end,
    CASE WHEN s.n_years >= 1 THEN s.after_start END AS after_start,
    CASE WHEN s.n_years >= 1 THEN s.after_end END AS after_end,
    CASE WHEN s.n_years >= 1 THEN coalesce(k.n_casualties_before, 0) END AS n_casualties_before,
    CASE WHEN s.n_years >= 1 THEN coalesce(k.n_casualties_after, 0) END AS n_casualties_after,
    CASE WHEN s.n_years >= 1 THEN coalesce(k.n_serious_before, 0) END AS n_serious_before,
    CASE WHEN s.n_years >= 1 THEN coalesce(k.n_serious_after, 0) END AS n_serious_after,
    CASE WHEN s.n_years >= 1 THEN coalesce(k.n_er_only_before, 0) END AS n_er_only_before,
    CASE WHEN s.n_years >= 1 THEN coalesce(k.n_er_only_after, 0) END AS n_er_only_after,
    CASE WHEN coalesce(k.n_casualties_before, 0) > 0
         THEN round(100.0 * (k.n_casualties_after - k.n_casualties_before) / k.n_casualties_before, 1) END
        AS change_pct,
    CASE WHEN s.n_years >= 1 THEN $caveat
         ELSE 'No full year of data on both sides of the measure year yet: no before/after comparison.'
    END AS caveat,
    s.geom
FROM spans AS s
LEFT JOIN counts AS k USING (tiltag_id);
