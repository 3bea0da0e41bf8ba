-- Copy cached geocodes onto the ER contacts. A contact without a stated kommune takes the
-- kommune of the municipality polygon containing its point (else the matched street's).
UPDATE core.er_contact AS e
SET x = r.x,
    y = r.y,
    geocode_quality = r.quality,
    geocode_uncertainty_m = r.uncertainty_m,
    geocode_method = r.method,
    kommunekode = coalesce(e.kommunekode, r.kommunekode_polygon, r.kommunekode)
FROM (
    SELECT g.*, m.kommunekode AS kommunekode_polygon
    FROM core.geocode_result AS g
    LEFT JOIN gazetteer.municipality AS m
      ON g.x IS NOT NULL AND ST_Contains(m.geom, ST_Point(g.x, g.y))
    QUALIFY row_number() OVER (PARTITION BY g.location_text, g.kommunekode_hint
                               ORDER BY m.kommunekode) = 1
) AS r
WHERE r.location_text = coalesce(e.ulykkessted, '')
  AND r.kommunekode_hint = coalesce(e.kommunekode, '')
