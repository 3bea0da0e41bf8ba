-- The plain alternative to the Splink linker (bench_link.py): exact rules only.
-- 1. Dedup: contacts of one CPR pseudonym arriving within 30 days of the previous one are one
--    casualty; a CPR-less contact is its own casualty.
CREATE OR REPLACE TEMP TABLE x_contact AS
WITH c AS (
    SELECT sygehus || '|' || kontakt_id AS contact_key, *,
        lag(ankomst) OVER (PARTITION BY cpr_pseudonym ORDER BY ankomst, sygehus, kontakt_id) AS prev
    FROM core.er_contact
),
g AS (
    SELECT *, sum(CASE WHEN cpr_pseudonym IS NULL OR prev IS NULL OR ankomst > prev + INTERVAL 30 DAY
                       THEN 1 ELSE 0 END)
              OVER (PARTITION BY cpr_pseudonym ORDER BY ankomst, sygehus, kontakt_id) AS episode
    FROM c
)
SELECT *, first_value(contact_key) OVER (PARTITION BY coalesce(cpr_pseudonym, contact_key), episode
                                         ORDER BY ankomst, sygehus, kontakt_id) AS event_key
FROM g;

CREATE OR REPLACE TEMP TABLE x_event AS
SELECT event_key, any_value(cpr_pseudonym) AS cpr_pseudonym, min(injury_date) AS injury_date,
    first(sex ORDER BY ankomst) AS sex, first(age ORDER BY ankomst) AS age,
    first(kommunekode ORDER BY ankomst) AS kommunekode, first(road_user ORDER BY ankomst) AS road_user
FROM x_contact GROUP BY event_key;

CREATE OR REPLACE TEMP TABLE x_police AS
SELECT p.uheld_id || '|' || p.elementnr || '|' || p.personnr AS police_key,
    'P-' || p.uheld_id || '-' || p.elementnr || '-' || p.personnr AS casualty_id,
    p.cpr_pseudonym, a.uheldsdato AS injury_date, p.sex, p.age, a.kommunekode, p.road_user
FROM core.police_person p JOIN core.police_accident a USING (uheld_id)
WHERE p.severity <> 'uninjured';

-- 2. Links: same CPR and dates at most a day apart; else same date, sex, age, kommune and
--    road user. A rule's pair is kept only when it is unique both ways.
CREATE OR REPLACE TEMP TABLE x_link AS
WITH a AS (
    SELECT e.event_key, p.police_key FROM x_event e JOIN x_police p
      ON e.cpr_pseudonym = p.cpr_pseudonym AND abs(date_diff('day', e.injury_date, p.injury_date)) <= 1
    QUALIFY count(*) OVER (PARTITION BY e.event_key) = 1 AND count(*) OVER (PARTITION BY p.police_key) = 1
)
SELECT * FROM a;

INSERT INTO x_link
SELECT e.event_key, p.police_key
FROM (SELECT * FROM x_event WHERE event_key NOT IN (SELECT event_key FROM x_link)) e
JOIN (SELECT * FROM x_police WHERE police_key NOT IN (SELECT police_key FROM x_link)) p
  ON e.injury_date = p.injury_date AND e.sex = p.sex AND e.age = p.age
 AND e.kommunekode = p.kommunekode AND e.road_user = p.road_user
QUALIFY count(*) OVER (PARTITION BY e.event_key) = 1 AND count(*) OVER (PARTITION BY p.police_key) = 1;

-- 3. casualty ids.
UPDATE core.er_contact AS c
SET casualty_id = coalesce(p.casualty_id, 'E-' || x.event_key)
FROM x_contact x
LEFT JOIN x_link l USING (event_key)
LEFT JOIN x_police p USING (police_key)
WHERE c.sygehus = x.sygehus AND c.kontakt_id = x.kontakt_id;

UPDATE core.police_person AS pp
SET casualty_id = p.casualty_id
FROM x_police p
WHERE pp.uheld_id || '|' || pp.elementnr || '|' || pp.personnr = p.police_key;
