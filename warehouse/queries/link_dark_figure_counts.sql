-- Dark figure inputs: casualties per stratum and source, at every stratum level at once
-- (GROUPING SETS); '*' stands for "all" in a level that does not split by that column.
-- n_police_cpr / n_both_cpr count the police casualties whose police record carries a CPR
-- pseudonym (and of them those linked to an ER event): the recapture sample whose links
-- rest on the CPR, not on the probabilistic match (see skadestue.link.darkfigure).
WITH cas AS (
    SELECT c.casualty_id, c.source, c.injury_date, coalesce(c.kommunekode, 'unknown') AS kommunekode,
           c.road_user, c.severity, coalesce(p.police_cpr, false) AS police_cpr
    FROM core.casualty c
    LEFT JOIN (SELECT casualty_id, bool_or(cpr_pseudonym IS NOT NULL) AS police_cpr
               FROM core.police_person WHERE casualty_id IS NOT NULL GROUP BY casualty_id) p
        USING (casualty_id)
)
SELECT
    CASE grouping(kommunekode, road_user, severity)
        WHEN 7 THEN 'total' WHEN 3 THEN 'kommune' WHEN 5 THEN 'road_user' WHEN 6 THEN 'severity'
        WHEN 4 THEN 'road_user_severity' WHEN 0 THEN 'kommune_road_user_severity' END AS stratum_level,
    CASE WHEN grouping(kommunekode) = 1 THEN '*' ELSE kommunekode END                AS kommunekode,
    CASE WHEN grouping(road_user) = 1 THEN '*' ELSE road_user END                    AS road_user,
    CASE WHEN grouping(severity) = 1 THEN '*' ELSE severity END                      AS severity,
    min(injury_date)                                                                 AS period_start,
    max(injury_date)                                                                 AS period_end,
    count(*) FILTER (WHERE source IN ('er', 'both'))                                 AS n_er,
    count(*) FILTER (WHERE source IN ('police', 'both'))                             AS n_police,
    count(*) FILTER (WHERE source = 'both')                                          AS n_both,
    count(*) FILTER (WHERE source IN ('police', 'both') AND police_cpr)              AS n_police_cpr,
    count(*) FILTER (WHERE source = 'both' AND police_cpr)                           AS n_both_cpr
FROM cas
GROUP BY GROUPING SETS (
    (), (kommunekode), (road_user), (severity), (road_user, severity),
    (kommunekode, road_user, severity))
HAVING count(*) > 0
ORDER BY ALL;
