-- Evaluation (skadestue.link.evaluate): ER-event x police-person pairs, predicted by the
-- linkage (same casualty_id) and true (the demo truth), each with its CPR stratum.
-- Inputs: eval_er_truth (sygehus, kontakt_id, event_id, police_uheld_id, police_elementnr,
-- police_personnr) registered by the caller. Only rows that reached core count: a
-- quarantined contact or an uninjured police person cannot be linked.
WITH er AS (
    SELECT t.event_id, c.casualty_id, c.cpr_pseudonym IS NOT NULL AS has_cpr,
           t.police_uheld_id, t.police_elementnr, t.police_personnr
    FROM core.er_contact c
    JOIN eval_er_truth t USING (sygehus, kontakt_id)
),
event_cpr AS (
    SELECT event_id, bool_or(has_cpr) AS er_has_cpr FROM er GROUP BY event_id
),
injured AS (
    SELECT uheld_id, elementnr, personnr, casualty_id, cpr_pseudonym IS NOT NULL AS police_has_cpr
    FROM core.police_person
    WHERE severity <> 'uninjured'
),
predicted AS (
    SELECT DISTINCT er.event_id, p.uheld_id, p.elementnr, p.personnr, p.police_has_cpr
    FROM er JOIN injured p ON p.casualty_id = er.casualty_id
),
truth AS (
    SELECT DISTINCT er.event_id, p.uheld_id, p.elementnr, p.personnr, p.police_has_cpr
    FROM er JOIN injured p
      ON p.uheld_id = er.police_uheld_id AND p.elementnr = er.police_elementnr
     AND p.personnr = er.police_personnr
)
SELECT
    coalesce(pr.event_id, tr.event_id)                        AS event_id,
    coalesce(pr.uheld_id, tr.uheld_id)                        AS uheld_id,
    pr.event_id IS NOT NULL                                   AS predicted,
    tr.event_id IS NOT NULL                                   AS true_link,
    ec.er_has_cpr AND coalesce(pr.police_has_cpr, tr.police_has_cpr) AS cpr_both
FROM predicted pr
FULL OUTER JOIN truth tr
  ON pr.event_id = tr.event_id AND pr.uheld_id = tr.uheld_id
 AND pr.elementnr = tr.elementnr AND pr.personnr = tr.personnr
JOIN event_cpr ec ON ec.event_id = coalesce(pr.event_id, tr.event_id);
