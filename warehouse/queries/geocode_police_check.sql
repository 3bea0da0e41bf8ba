-- Police X/Y against the stated kommune's polygon (within $tolerance metres, for the coarse
-- DAGI boundaries): inside as delivered, inside when X and Y are swapped, or inside Denmark.
-- Only accidents not checked yet, or changed since ($geocode_hash: what the check left).
WITH a AS (
    SELECT p.uheld_id, p.kommunekode, p.vejnavn, p.husnr, p.krydsende_vej, p.x, p.y,
           m.geom AS kom_geom
    FROM core.police_accident AS p
    LEFT JOIN gazetteer.municipality AS m USING (kommunekode)
    WHERE p.geocode_hash IS NULL OR p.geocode_hash <> $geocode_hash
)
SELECT uheld_id, kommunekode, vejnavn, husnr, krydsende_vej, x, y,
       x IS NOT NULL AND y IS NOT NULL AND isfinite(x) AND isfinite(y) AS has_xy,
       kom_geom IS NOT NULL AS has_polygon,
       CASE WHEN kom_geom IS NOT NULL AND x IS NOT NULL AND y IS NOT NULL
            THEN ST_DWithin(kom_geom, ST_Point(x, y), $tolerance) END AS inside,
       CASE WHEN kom_geom IS NOT NULL AND x IS NOT NULL AND y IS NOT NULL
            THEN ST_DWithin(kom_geom, ST_Point(y, x), $tolerance) END AS swapped_inside,
       CASE WHEN x IS NOT NULL AND y IS NOT NULL
            THEN EXISTS (SELECT 1 FROM gazetteer.municipality AS m2
                         WHERE ST_DWithin(m2.geom, ST_Point(a.x, a.y), $tolerance)) END AS in_denmark
FROM a
