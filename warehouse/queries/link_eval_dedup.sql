-- Evaluation (skadestue.link.evaluate): pairwise return-visit dedup. Two ER contacts are a
-- predicted pair when they share a casualty_id and a true pair when they share the truth's
-- event_id; pairs are counted per group as n(n-1)/2, never enumerated.
WITH er AS (
    SELECT c.casualty_id, t.event_id, c.cpr_pseudonym IS NOT NULL AS has_cpr
    FROM core.er_contact c
    JOIN eval_er_truth t USING (sygehus, kontakt_id)
),
pred AS (SELECT casualty_id, count(*) AS n FROM er GROUP BY casualty_id),
tru AS (SELECT event_id, count(*) AS n FROM er GROUP BY event_id),
both_ AS (SELECT casualty_id, event_id, count(*) AS n FROM er GROUP BY casualty_id, event_id)
SELECT
    (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM both_) AS tp,
    (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM pred)  AS predicted_pairs,
    (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM tru)   AS true_pairs;
