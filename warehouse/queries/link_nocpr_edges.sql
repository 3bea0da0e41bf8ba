-- Linkage step 1b: pairs (a, b) where a is a CPR-less ER contact and b another contact
-- (CPR-less, or carrying a CPR pseudonym: a transfer or return visit typed without the CPR)
-- that look like the same person in the same injury event: same sex, age and road user,
-- arrivals within $return_visit_days days, and the same place (both placed within
-- $same_place_m metres, or the same typed place text, or - when one is unplaced - the same
-- kommune and injury dates at most a day apart (CPR-less pairs only: too weak to join a CPR
-- person), or - when one has no place at all - the
-- same hospital and the same diagnosis, as a control visit has).
SELECT a.contact_key AS key_a, b.contact_key AS key_b
FROM link_contact a
JOIN link_contact b
  ON a.sex = b.sex
 AND a.age = b.age
 AND a.road_user = b.road_user
 AND a.contact_key <> b.contact_key
WHERE a.cpr_pseudonym IS NULL
  AND (b.cpr_pseudonym IS NOT NULL OR a.contact_key < b.contact_key)
  AND abs(epoch(b.ankomst) - epoch(a.ankomst)) <= $return_visit_days * 86400
  AND (
        (a.x IS NOT NULL AND b.x IS NOT NULL
         AND sqrt(power(a.x - b.x, 2) + power(a.y - b.y, 2)) <= $same_place_m)
     OR (a.place_text = b.place_text)
     OR ((a.x IS NULL OR b.x IS NULL)
         AND b.cpr_pseudonym IS NULL
         AND a.kommunekode = b.kommunekode
         AND abs(date_diff('day', a.injury_date, b.injury_date)) <= 1)
     OR ((a.x IS NULL AND a.place_text IS NULL OR b.x IS NULL AND b.place_text IS NULL)
         AND a.sygehus = b.sygehus
         AND a.diagnose = b.diagnose)
  )
ORDER BY key_a, key_b;
