-- marts.hotspot_period: per period, how many casualties there were and how many went into
-- the layers, so no casualty leaves the hotspot layers unaccounted for.
INSERT INTO marts.hotspot_period BY NAME
SELECT
    p.period_start,
    p.period_end,
    p.period_type,
    count(c.casualty_id) AS n_casualties,
    count(h.casualty_id) FILTER (WHERE h.kommunekode IS NOT NULL) AS n_placed,
    count(c.casualty_id) FILTER (WHERE h.casualty_id IS NULL) AS n_unplaced,
    count(h.casualty_id) FILTER (WHERE h.kommunekode IS NULL) AS n_no_kommune,
    count(j.casualty_id) AS n_on_junction,
    count(s.casualty_id) AS n_on_road
FROM hs_period AS p
LEFT JOIN core.casualty AS c ON c.injury_date BETWEEN p.period_start AND p.period_end
LEFT JOIN hs_casualty AS h ON h.casualty_id = c.casualty_id
LEFT JOIN hs_junction_assign AS j ON j.casualty_id = c.casualty_id
LEFT JOIN hs_snap AS s ON s.casualty_id = c.casualty_id
GROUP BY ALL;
