-- Linkage step 1c: fold the contacts of one person into injury events. Contacts are taken
-- in arrival order; a contact arriving within $return_visit_days days of the FIRST contact
-- of the current event (a return visit, a transfer) belongs to that event, unless it looks
-- like a NEW injury of the same person, which starts a new event:
--   - it states an accident time whose date is more than a day from the event's injury date
--     (a control visit that states one repeats the original accident time), or
--   - at least two of: another road user (neither unknown), another diagnosis (both known),
--     both placed more than $new_place_m metres apart.
-- One difference alone is parsing noise (~3 % of true follow-ups differ in road user).
-- The event key is the key of its earliest contact.
CREATE OR REPLACE TEMP TABLE link_contact_event AS
WITH RECURSIVE ordered AS (
    SELECT
        contact_key, person_key, ankomst, ulykke_tid, injury_date, road_user, diagnose, x, y,
        row_number() OVER (PARTITION BY person_key ORDER BY ankomst, sygehus, kontakt_id) AS rn
    FROM link_contact
),
chain(person_key, rn, contact_key, event_key, event_start, ev_date, ev_road_user, ev_diagnose,
      ev_x, ev_y) AS (
    SELECT person_key, rn, contact_key, contact_key, ankomst, injury_date, road_user, diagnose, x, y
    FROM ordered
    WHERE rn = 1
    UNION ALL
    SELECT
        s.person_key, s.rn, s.contact_key,
        CASE WHEN s.same THEN s.event_key ELSE s.contact_key END,
        CASE WHEN s.same THEN s.event_start ELSE s.ankomst END,
        CASE WHEN s.same THEN s.ev_date ELSE s.injury_date END,
        CASE WHEN s.same AND s.ev_road_user <> 'unknown' THEN s.ev_road_user ELSE s.road_user END,
        CASE WHEN s.same THEN coalesce(s.ev_diagnose, s.diagnose) ELSE s.diagnose END,
        CASE WHEN s.same AND s.ev_x IS NOT NULL THEN s.ev_x ELSE s.x END,
        CASE WHEN s.same AND s.ev_x IS NOT NULL THEN s.ev_y ELSE s.y END
    FROM (
        SELECT o.*, c.event_key, c.event_start, c.ev_date, c.ev_road_user, c.ev_diagnose,
            c.ev_x, c.ev_y,
            o.ankomst <= c.event_start + to_days(CAST($return_visit_days AS INTEGER))
            AND NOT coalesce(abs(date_diff('day', CAST(o.ulykke_tid AS DATE), c.ev_date)) > 1, false)
            AND (CAST(coalesce(o.road_user <> 'unknown' AND c.ev_road_user <> 'unknown'
                               AND o.road_user <> c.ev_road_user, false) AS INTEGER)
               + CAST(coalesce(o.diagnose <> c.ev_diagnose, false) AS INTEGER)
               + CAST(coalesce(sqrt(power(o.x - c.ev_x, 2) + power(o.y - c.ev_y, 2)) > $new_place_m,
                               false) AS INTEGER)) < 2 AS same
        FROM chain c
        JOIN ordered o ON o.person_key = c.person_key AND o.rn = c.rn + 1
    ) s
)
SELECT contact_key, event_key FROM chain;

-- One row per injury event, its attributes taken over its contacts (earliest first):
-- the worst severity, the best-placed location, the first known value otherwise.
CREATE OR REPLACE TEMP TABLE link_er_event AS
WITH c AS (
    SELECT lc.*, ce.event_key,
        CASE lc.severity WHEN 'killed' THEN 4 WHEN 'serious' THEN 3 WHEN 'slight' THEN 2 ELSE 1 END
            AS severity_rank
    FROM link_contact lc
    JOIN link_contact_event ce USING (contact_key)
)
SELECT
    event_key,
    'E-' || substr(sha1(event_key), 1, 16)                                       AS er_casualty_id,
    count(*)                                                                     AS n_er_contacts,
    first(cpr_pseudonym ORDER BY ankomst, sygehus, kontakt_id) FILTER (WHERE cpr_pseudonym IS NOT NULL) AS cpr_pseudonym,
    min(injury_date)                                                             AS injury_date,
    coalesce(
        first(hour(ulykke_tid) ORDER BY ankomst, sygehus, kontakt_id) FILTER (WHERE ulykke_tid IS NOT NULL),
        first(hour(ankomst) ORDER BY ankomst, sygehus, kontakt_id))              AS injury_hour,
    first(sex ORDER BY ankomst, sygehus, kontakt_id) FILTER (WHERE sex IS NOT NULL) AS sex,
    first(age ORDER BY ankomst, sygehus, kontakt_id) FILTER (WHERE age IS NOT NULL) AS age,
    coalesce(
        first(road_user ORDER BY ankomst, sygehus, kontakt_id) FILTER (WHERE road_user <> 'unknown'),
        'unknown')                                                               AS road_user,
    coalesce(
        first(counterpart ORDER BY ankomst, sygehus, kontakt_id) FILTER (WHERE counterpart <> 'unknown'),
        'unknown')                                                               AS counterpart,
    CASE max(severity_rank) WHEN 4 THEN 'killed' WHEN 3 THEN 'serious' WHEN 2 THEN 'slight'
         ELSE 'unknown' END                                                      AS severity,
    first({'x': x, 'y': y, 'q': geocode_quality, 'rank': geocode_rank, 'k': kommunekode,
              'u': geocode_uncertainty_m}
          ORDER BY geocode_rank DESC, ankomst, sygehus, kontakt_id) FILTER (WHERE x IS NOT NULL) AS best_place,
    first(kommunekode ORDER BY ankomst, sygehus, kontakt_id) FILTER (WHERE kommunekode IS NOT NULL) AS first_kommunekode
FROM c
GROUP BY event_key;

CREATE OR REPLACE TEMP TABLE link_er_event AS
SELECT
    * EXCLUDE (best_place, first_kommunekode),
    best_place.x                                    AS x,
    best_place.y                                    AS y,
    coalesce(best_place.q, 'none')                  AS geocode_quality,
    coalesce(best_place.rank, 0)                    AS geocode_rank,
    best_place.u                                    AS geocode_uncertainty_m,
    coalesce(best_place.k, first_kommunekode)       AS kommunekode
FROM link_er_event
ORDER BY event_key;
