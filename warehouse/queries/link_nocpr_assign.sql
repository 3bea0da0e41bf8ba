-- Linkage step 1b (cont.): person keys for CPR-less contacts from their components
-- (link_nocpr_person: contact_key, cpr_key = 'C|...' for CPR contacts else NULL, label).
-- A component with exactly one CPR person joins it; with none, it is named by its smallest
-- contact key; with several (ambiguous), each CPR-less contact only keeps the
-- CPR-less part of the component.
WITH comp AS (
    SELECT label,
        count(DISTINCT cpr_key) AS n_cpr,
        min(cpr_key) AS cpr_key,
        min(contact_key) FILTER (WHERE cpr_key IS NULL) AS first_key
    FROM link_nocpr_person
    GROUP BY label
)
UPDATE link_contact AS c
SET person_key = CASE WHEN comp.n_cpr = 1 THEN comp.cpr_key ELSE 'N|' || comp.first_key END
FROM link_nocpr_person p
JOIN comp USING (label)
WHERE c.contact_key = p.contact_key AND p.cpr_key IS NULL;
