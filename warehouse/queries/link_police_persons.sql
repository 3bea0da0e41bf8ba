-- Linkage step 2: injured police persons (every severity but 'uninjured') with their
-- accident's date, hour and place. The police location is used when the accident has
-- coordinates that the geocoder did not flag as suspect; its quality is 'police' for the
-- police's own X/Y, else the quality of the geocoded police address.
CREATE OR REPLACE TEMP TABLE link_police_person AS
SELECT
    p.uheld_id || '|' || p.elementnr || '|' || p.personnr                    AS police_key,
    'P-' || p.uheld_id || '-' || p.elementnr || '-' || p.personnr            AS casualty_id,
    p.uheld_id,
    p.elementnr,
    p.personnr,
    p.cpr_pseudonym,
    p.age,
    p.sex,
    p.road_user,
    p.counterpart,
    p.severity,
    a.uheldsdato                                                             AS injury_date,
    hour(a.klokkeslaet)                                                      AS injury_hour,
    a.kommunekode,
    CASE WHEN a.xy_flag IS NULL THEN a.x END                                 AS x,
    CASE WHEN a.xy_flag IS NULL THEN a.y END                                 AS y,
    CASE WHEN a.xy_flag IS NOT NULL OR a.x IS NULL OR a.y IS NULL THEN 'none'
         WHEN a.geocode_quality IN ('A', 'B', 'C') THEN a.geocode_quality
         ELSE 'police' END                                                   AS geocode_quality,
    CASE WHEN a.xy_flag IS NULL AND a.geocode_quality IN ('A', 'B', 'C')
         THEN a.geocode_uncertainty_m END                                    AS geocode_uncertainty_m
FROM core.police_person p
JOIN core.police_accident a USING (uheld_id)
WHERE p.severity <> 'uninjured';

CREATE OR REPLACE TEMP TABLE link_police_person AS
SELECT *,
    CASE geocode_quality WHEN 'police' THEN 4 WHEN 'A' THEN 4 WHEN 'B' THEN 3 WHEN 'C' THEN 2
         ELSE 0 END AS geocode_rank
FROM link_police_person
ORDER BY police_key;
