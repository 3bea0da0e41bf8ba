-- The parts of each street's merged line, in order, with their offset along the street:
-- a street's chainage runs through its parts one after the other (a MULTILINESTRING street
-- with a gap keeps one position scale).
CREATE OR REPLACE TEMP TABLE hs_street_part AS
WITH part AS (
    SELECT s.kommunekode, s.vejkode, s.vejnavn, unnest(ST_Dump(s.geom)) AS d
    FROM gazetteer.street AS s
    WHERE s.geom IS NOT NULL AND s.kommunekode IS NOT NULL AND s.vejkode IS NOT NULL
),
line AS (
    SELECT kommunekode, vejkode, vejnavn, d.path AS path, d.geom AS geom, ST_Length(d.geom) AS len_m
    FROM part
    WHERE ST_GeometryType(d.geom) = 'LINESTRING' AND ST_Length(d.geom) > 0
)
SELECT
    *,
    coalesce(sum(len_m) OVER (
        PARTITION BY kommunekode, vejkode ORDER BY path
        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ), 0) AS offset_m
FROM line;
