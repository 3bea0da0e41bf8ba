-- Linkage step 3: core.casualty, one row per ER injury event (source 'er', or 'both' when
-- linked to an injured police person) and one per unlinked injured police person.
-- geocode_uncertainty_m goes with the chosen place (NULL for the police's own X/Y).
-- Rules when linked:
--   casualty_id  the police person's ('P-<uheld_id>-<elementnr>-<personnr>')
--   date, hour   the police's (the police record the accident time; the ward the arrival)
--   place        the better placed of the two (rank A = police > B > C > none), police on ties
--   road_user,
--   counterpart  the police's unless 'unknown'
--   severity     'killed' if either says killed; else the hospital's when known (police
--                severity agrees with the hospital's only ~50% of the time), else the police's
--   age, sex     the hospital's (CPR-derived) when known, else the police's
-- Scope (skadestue.link.incremental): link_er_event / link_police_person hold the events and
-- police persons whose casualty is (re)built this run (all of them in a full relink, else the
-- affected ones and their link partners), link_pair every link, link_contact_event the contacts of
-- those events; link_casualty_drop the casualty ids to delete first, link_police_reset the
-- police persons whose casualty_id is cleared first.
DELETE FROM core.casualty WHERE casualty_id IN (SELECT casualty_id FROM link_casualty_drop);

INSERT INTO core.casualty (casualty_id, source, uheld_id, injury_date, injury_hour, kommunekode,
    x, y, geocode_quality, road_user, counterpart, severity, age_band, sex, link_probability,
    n_er_contacts, geocode_uncertainty_m)
WITH linked AS (
    SELECT e.*,
        p.police_key, p.casualty_id AS p_casualty_id, p.uheld_id AS p_uheld_id,
        p.injury_date AS p_injury_date, p.injury_hour AS p_injury_hour,
        p.kommunekode AS p_kommunekode, p.x AS p_x, p.y AS p_y,
        p.geocode_quality AS p_geocode_quality, p.geocode_rank AS p_geocode_rank,
        p.geocode_uncertainty_m AS p_geocode_uncertainty_m,
        p.road_user AS p_road_user, p.counterpart AS p_counterpart, p.severity AS p_severity,
        p.age AS p_age, p.sex AS p_sex,
        l.match_probability
    FROM link_er_event e
    LEFT JOIN link_pair l ON l.er_key = e.event_key
    LEFT JOIN link_police_person p ON p.police_key = l.police_key
),
er_rows AS (
    SELECT *,
        police_key IS NOT NULL AND p_x IS NOT NULL AND p_geocode_rank >= geocode_rank AS use_police_place
    FROM linked
)
SELECT
    coalesce(p_casualty_id, er_casualty_id)                                     AS casualty_id,
    CASE WHEN police_key IS NULL THEN 'er' ELSE 'both' END                      AS source,
    p_uheld_id                                                                  AS uheld_id,
    coalesce(p_injury_date, injury_date)                                        AS injury_date,
    coalesce(p_injury_hour, injury_hour)                                        AS injury_hour,
    coalesce(p_kommunekode, kommunekode)                                        AS kommunekode,
    CASE WHEN use_police_place THEN p_x ELSE x END                              AS x,
    CASE WHEN use_police_place THEN p_y ELSE y END                              AS y,
    CASE WHEN use_police_place THEN p_geocode_quality ELSE geocode_quality END  AS geocode_quality,
    CASE WHEN p_road_user IS NOT NULL AND p_road_user <> 'unknown' THEN p_road_user ELSE road_user END,
    CASE WHEN p_counterpart IS NOT NULL AND p_counterpart <> 'unknown' THEN p_counterpart ELSE counterpart END,
    CASE WHEN severity = 'killed' OR p_severity = 'killed' THEN 'killed'
         WHEN severity <> 'unknown' THEN severity
         ELSE coalesce(p_severity, 'unknown') END                               AS severity,
    __AGE_BAND_ER__                                                             AS age_band,
    coalesce(sex, p_sex)                                                        AS sex,
    match_probability                                                           AS link_probability,
    n_er_contacts,
    CASE WHEN use_police_place THEN p_geocode_uncertainty_m ELSE geocode_uncertainty_m END
FROM er_rows
UNION ALL
SELECT
    p.casualty_id, 'police', p.uheld_id, p.injury_date, p.injury_hour, p.kommunekode,
    p.x, p.y, p.geocode_quality, p.road_user, p.counterpart,
    CASE WHEN p.severity IN ('killed', 'serious', 'slight') THEN p.severity ELSE 'unknown' END,
    __AGE_BAND_POLICE__, p.sex, NULL, 0, p.geocode_uncertainty_m
FROM link_police_person p
WHERE p.police_key NOT IN (SELECT police_key FROM link_pair)
ORDER BY 1;

-- casualty_id on every contact of an event, and on every injured police person.
UPDATE core.er_contact AS c
SET casualty_id = coalesce(p.casualty_id, e.er_casualty_id)
FROM link_contact_event ce
JOIN link_er_event e USING (event_key)
LEFT JOIN link_pair l ON l.er_key = e.event_key
LEFT JOIN link_police_person p ON p.police_key = l.police_key
WHERE c.sygehus || '|' || c.kontakt_id = ce.contact_key;

UPDATE core.police_person SET casualty_id = NULL
WHERE uheld_id || '|' || elementnr || '|' || personnr IN (SELECT police_key FROM link_police_reset);

UPDATE core.police_person AS pp
SET casualty_id = p.casualty_id
FROM link_police_person p
WHERE pp.uheld_id = p.uheld_id AND pp.elementnr = p.elementnr AND pp.personnr = p.personnr;

-- Linked ER contacts that were unplaced or only uncertainly placed take the police's own
-- coordinates (geocode_quality 'police').
UPDATE core.er_contact AS c
SET x = p.x, y = p.y, geocode_quality = 'police', geocode_method = 'police',
    geocode_uncertainty_m = NULL
FROM link_contact_event ce
JOIN link_pair l ON l.er_key = ce.event_key
JOIN link_police_person p ON p.police_key = l.police_key
WHERE c.sygehus || '|' || c.kontakt_id = ce.contact_key
  AND p.geocode_quality = 'police'
  AND (c.geocode_quality IN ('none', 'C') OR c.x IS NULL);
