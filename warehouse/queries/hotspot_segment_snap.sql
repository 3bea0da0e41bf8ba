-- Each placed casualty snapped to the nearest street part within $snap_m (ties: lowest
-- kommunekode, vejkode, part), with its position in metres along the street. Only casualties
-- placed to within $max_uncertainty_m: a street-only placement cannot say where on the street.
CREATE OR REPLACE TEMP TABLE hs_snap AS
SELECT
    c.casualty_id,
    p.kommunekode,
    p.vejkode,
    p.offset_m + ST_LineLocatePoint(p.geom, c.pt) * p.len_m AS pos_m,
    ST_Distance(p.geom, c.pt) AS dist_m
FROM hs_casualty AS c
JOIN hs_street_part AS p ON ST_DWithin(p.geom, c.pt, $snap_m)
WHERE c.uncertainty_m <= $max_uncertainty_m
QUALIFY row_number() OVER (
    PARTITION BY c.casualty_id ORDER BY dist_m, p.kommunekode, p.vejkode, p.path
) = 1;
