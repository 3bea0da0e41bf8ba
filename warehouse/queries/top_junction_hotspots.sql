-- The operator summary's top junction hotspots: the multi-year window, best score first.
SELECT kommunekode, junction_id, vejnavne,
       strftime(period_start, '%Y') || '–' || strftime(period_end, '%Y') AS period,
       n_accidents, n_casualties, round(score, 1) AS score,
       CASE WHEN rule_flag THEN 'yes' ELSE '' END AS rule
FROM marts.hotspot_junction
WHERE period_type = 'window'
ORDER BY score DESC, n_accidents DESC, junction_id
LIMIT ?
