-- One round of greedy one-to-one matching: among the accepted candidate pairs whose ER
-- event and police person are both still free, take the pairs that are each other's best
-- (highest match weight; ties broken by key, so the result does not depend on row order).
-- Repeated until a round adds nothing; equivalent to "highest probability wins".
INSERT INTO link_pair
WITH free AS (
    SELECT c.*
    FROM link_candidate c
    WHERE c.er_key NOT IN (SELECT er_key FROM link_pair)
      AND c.police_key NOT IN (SELECT police_key FROM link_pair)
),
ranked AS (
    SELECT *,
        row_number() OVER (PARTITION BY er_key ORDER BY match_weight DESC, police_key) AS best_for_er,
        row_number() OVER (PARTITION BY police_key ORDER BY match_weight DESC, er_key) AS best_for_police
    FROM free
)
SELECT er_key, police_key, match_probability, match_weight
FROM ranked
WHERE best_for_er = 1 AND best_for_police = 1
ORDER BY er_key;
