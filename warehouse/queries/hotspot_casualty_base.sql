-- Placed casualties (x/y known) dated in the periods being built (hs_period) with their
-- accident key and kommune: the input of every hotspot layer. An accident is the police uheld_id, or for ER-only casualties the casualty.
-- A casualty without kommunekode takes the kommune whose boundary holds its point.
-- uncertainty_m: how far off the point may be (NULL: police X/Y, taken as exact); each layer
-- only counts casualties placed precisely enough for its units.
CREATE OR REPLACE TEMP TABLE hs_casualty AS
WITH placed AS (
    SELECT
        c.casualty_id,
        coalesce(c.uheld_id, c.casualty_id) AS accident_key,
        c.injury_date,
        c.kommunekode,
        c.x,
        c.y,
        c.severity,
        c.road_user,
        c.source,
        coalesce(c.geocode_uncertainty_m, 0) AS uncertainty_m,
        ST_Point(c.x, c.y) AS pt
    FROM core.casualty AS c
    WHERE c.x IS NOT NULL AND c.y IS NOT NULL
      AND c.injury_date BETWEEN (SELECT min(period_start) FROM hs_period) AND (SELECT max(period_end) FROM hs_period)
),
from_boundary AS (
    SELECT p.casualty_id, min(m.kommunekode) AS kommunekode
    FROM placed AS p
    JOIN gazetteer.municipality AS m ON ST_Intersects(m.geom, p.pt)
    WHERE p.kommunekode IS NULL
    GROUP BY p.casualty_id
)
SELECT p.* REPLACE (coalesce(p.kommunekode, b.kommunekode) AS kommunekode)
FROM placed AS p
LEFT JOIN from_boundary AS b USING (casualty_id);
