-- Copy cached geocodes onto the ER contacts. A contact without a stated kommune takes the
-- kommune of the municipality polygon containing its point (else the matched street's).
-- The polygon is looked up once per cache row (kommunekode_polygon, '' = none), and only the
-- contacts whose values differ from their cache row are written: a night touches the contacts
-- that are new or whose cache row changed, with the same result as rewriting them all.
UPDATE core.geocode_result AS g
SET kommunekode_polygon = coalesce(p.kommunekode, '')
FROM (
    SELECT r.location_text, r.kommunekode_hint, min(m.kommunekode) AS kommunekode
    FROM core.geocode_result AS r
    LEFT JOIN gazetteer.municipality AS m
      ON r.x IS NOT NULL AND ST_Contains(m.geom, ST_Point(r.x, r.y))
    WHERE r.kommunekode_polygon IS NULL
    GROUP BY r.location_text, r.kommunekode_hint
) AS p
WHERE g.location_text = p.location_text AND g.kommunekode_hint = p.kommunekode_hint;

-- stated: the ward's kommune (NULL when the geocoder set it); derived: the point's kommune.
-- kommunekode_geocoded is true or NULL (never false), so a contact that another stage moved
-- (linkage places unplaced contacts at the police's point) and this stage re-copies ends as a
-- fresh one does.
UPDATE core.er_contact AS e
SET x = r.x,
    y = r.y,
    geocode_quality = r.quality,
    geocode_uncertainty_m = r.uncertainty_m,
    geocode_method = r.method,
    kommunekode = coalesce(r.stated, r.derived),
    kommunekode_geocoded = CASE WHEN r.stated IS NULL AND r.derived IS NOT NULL THEN true END
FROM (
    SELECT e2.sygehus, e2.kontakt_id, g.x, g.y, g.quality, g.uncertainty_m, g.method,
           CASE WHEN e2.kommunekode_geocoded THEN NULL ELSE e2.kommunekode END AS stated,
           coalesce(nullif(g.kommunekode_polygon, ''), g.kommunekode) AS derived
    FROM core.er_contact AS e2
    JOIN core.geocode_result AS g
      ON g.location_text = coalesce(e2.ulykkessted, '')
     AND g.kommunekode_hint = CASE WHEN e2.kommunekode_geocoded THEN '' ELSE coalesce(e2.kommunekode, '') END
) AS r
WHERE r.sygehus = e.sygehus AND r.kontakt_id = e.kontakt_id
  AND (e.x IS DISTINCT FROM r.x OR e.y IS DISTINCT FROM r.y
       OR e.geocode_quality IS DISTINCT FROM r.quality
       OR e.geocode_uncertainty_m IS DISTINCT FROM r.uncertainty_m
       OR e.geocode_method IS DISTINCT FROM r.method
       OR e.kommunekode IS DISTINCT FROM coalesce(r.stated, r.derived))
