-- One named street per (kommunekode, vejkode) from gazetteer.address and gazetteer.road_segment.
-- x/y: a point ON the street (the line's point closest to its centroid, else the address
-- closest to the median address). length_m: road length, else the extent of its addresses.
-- navn_norm is filled afterwards by Python (skadestue.geocode.normalise).
INSERT INTO gazetteer.street
WITH addr_stats AS (
    SELECT kommunekode, vejkode,
           mode(vejnavn) AS vejnavn,
           list(DISTINCT postnr ORDER BY postnr) FILTER (WHERE postnr IS NOT NULL) AS postnumre,
           count(*) AS n_addresses,
           median(x) AS mx, median(y) AS my,
           greatest(50.0, sqrt(power(max(x) - min(x), 2) + power(max(y) - min(y), 2))) AS extent_m
    FROM gazetteer.address
    GROUP BY kommunekode, vejkode
), addr AS (
    SELECT s.*,
           arg_min(a.x, power(a.x - s.mx, 2) + power(a.y - s.my, 2)) AS ax,
           arg_min(a.y, power(a.x - s.mx, 2) + power(a.y - s.my, 2)) AS ay
    FROM addr_stats s
    JOIN gazetteer.address a USING (kommunekode, vejkode)
    GROUP BY ALL
), roads AS (
    SELECT kommunekode, vejkode,
           mode(vejnavn) AS vejnavn,
           ST_LineMerge(ST_Union_Agg(geom)) AS geom,
           sum(length_m) AS length_m
    FROM gazetteer.road_segment
    WHERE vejkode IS NOT NULL
    GROUP BY kommunekode, vejkode
), joined AS (
    SELECT coalesce(a.kommunekode, r.kommunekode) AS kommunekode,
           coalesce(a.vejkode, r.vejkode) AS vejkode,
           coalesce(a.vejnavn, r.vejnavn) AS vejnavn,
           a.postnumre, a.ax, a.ay, a.extent_m, coalesce(a.n_addresses, 0) AS n_addresses,
           r.geom, r.length_m,
           ST_ClosestPoint(r.geom, ST_Centroid(r.geom)) AS on_line
    FROM addr a
    FULL OUTER JOIN roads r ON a.kommunekode = r.kommunekode AND a.vejkode = r.vejkode
)
SELECT kommunekode, vejkode, vejnavn, '' AS navn_norm, postnumre,
       coalesce(ST_X(on_line), ax) AS x,
       coalesce(ST_Y(on_line), ay) AS y,
       coalesce(length_m, extent_m) AS length_m,
       n_addresses, geom
FROM joined
WHERE vejnavn IS NOT NULL AND trim(vejnavn) <> '';
