-- Each placed casualty to its NEAREST junction within $radius_m (ties: lowest junction_id),
-- so a casualty near two junctions is counted once. Casualties whose point may be further off
-- than the radius (e.g. placed on a street without a number) say nothing about a junction.
CREATE OR REPLACE TEMP TABLE hs_junction_assign AS
WITH junction AS (
    SELECT junction_id, kommunekode, ST_Point(x, y) AS pt
    FROM gazetteer.junction
    WHERE x IS NOT NULL AND y IS NOT NULL
)
SELECT
    c.casualty_id,
    j.junction_id,
    coalesce(j.kommunekode, c.kommunekode) AS kommunekode,
    ST_Distance(j.pt, c.pt) AS dist_m
FROM hs_casualty AS c
JOIN junction AS j ON ST_DWithin(j.pt, c.pt, $radius_m)
WHERE c.uncertainty_m <= $radius_m
QUALIFY row_number() OVER (PARTITION BY c.casualty_id ORDER BY dist_m, j.junction_id) = 1;
