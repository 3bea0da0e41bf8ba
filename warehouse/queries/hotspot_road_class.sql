-- Road class of every street and of every junction: the comparable-site groups of the
-- observed-versus-expected model (skadestue.hotspots.expected).
-- class_rank orders GeoDanmark's VEJKLASSE from the busiest (1) to the quietest (7); a
-- junction is (best class, best class among the OTHER roads, legs 3 or 4+), e.g.
-- 'Trafikvej-Fordeling / Lokalvej-Tertiær / 4+'. Roads without a class are 'Ukendt'.
CREATE OR REPLACE TEMP TABLE hs_class_name AS
SELECT * FROM (VALUES
    (1, 'Motorvej'), (2, 'Trafikvej-Gennemfart'), (3, 'Trafikvej-Fordeling'),
    (4, 'Lokalvej-Primær'), (5, 'Lokalvej-Sekundær'), (6, 'Lokalvej-Tertiær'),
    (7, 'Anden vej'), (9, 'Ukendt')
) AS t(class_rank, class_name);

CREATE OR REPLACE TEMP TABLE hs_segment_class AS
SELECT
    segment_id, kommunekode, vejkode, geom,
    CASE
        WHEN vejklasse IS NULL THEN 9
        WHEN lower(vejklasse) LIKE '%motor%' THEN 1
        WHEN lower(vejklasse) LIKE '%gennemfart%' THEN 2
        WHEN lower(vejklasse) LIKE 'trafikvej%' THEN 3
        WHEN lower(vejklasse) LIKE '%primær%' THEN 4
        WHEN lower(vejklasse) LIKE '%sekundær%' THEN 5
        WHEN lower(vejklasse) LIKE '%tertiær%' THEN 6
        ELSE 7
    END AS class_rank
FROM gazetteer.road_segment;

-- A street's class: the class of most of its length (ties: the busier).
CREATE OR REPLACE TEMP TABLE hs_street_class AS
SELECT s.kommunekode, s.vejkode, n.class_name AS road_class
FROM (
    SELECT kommunekode, vejkode,
           arg_min(class_rank, (-len_m, class_rank)) AS class_rank
    FROM (
        SELECT kommunekode, vejkode, class_rank, sum(ST_Length(geom)) AS len_m
        FROM hs_segment_class
        WHERE vejkode IS NOT NULL
        GROUP BY ALL
    )
    GROUP BY ALL
) AS s
JOIN hs_class_name AS n USING (class_rank);

-- Junction legs: the segment ends within 1.5 m of the junction point.
CREATE OR REPLACE TEMP TABLE hs_junction_class AS
WITH ends AS (
    SELECT kommunekode, vejkode, class_rank, ST_StartPoint(geom) AS pt FROM hs_segment_class
    UNION ALL
    SELECT kommunekode, vejkode, class_rank, ST_EndPoint(geom) FROM hs_segment_class
),
leg AS (
    SELECT j.junction_id, coalesce(e.vejkode, '?') AS road, e.class_rank
    FROM gazetteer.junction AS j
    JOIN ends AS e ON ST_DWithin(ST_Point(j.x, j.y), e.pt, 1.5)
),
road AS (
    SELECT junction_id, road, min(class_rank) AS class_rank, count(*) AS n_legs
    FROM leg GROUP BY ALL
),
agg AS (
    SELECT junction_id,
           list(class_rank ORDER BY class_rank, road) AS ranks,
           sum(n_legs) AS n_legs
    FROM road GROUP BY ALL
)
SELECT
    j.junction_id,
    coalesce(a.ranks[1], 9) AS major_rank,
    coalesce(a.ranks[2], a.ranks[1], 9) AS minor_rank,
    CASE WHEN coalesce(a.n_legs, 0) >= 4 THEN '4+' WHEN a.n_legs IS NULL THEN '?' ELSE '3' END AS legs
FROM gazetteer.junction AS j
LEFT JOIN agg AS a USING (junction_id);

-- The area each junction and street lies in: its postcode (a town and its surroundings),
-- where gazetteer.postcode is loaded; NULL otherwise (the kommune stands in).
CREATE OR REPLACE TEMP TABLE hs_junction_area AS
SELECT j.junction_id, min(p.postnr) AS postnr
FROM gazetteer.junction AS j
JOIN gazetteer.postcode AS p ON ST_Contains(p.geom, ST_Point(j.x, j.y))
GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE hs_street_area AS
SELECT s.kommunekode, s.vejkode, min(p.postnr) AS postnr
FROM gazetteer.street AS s
JOIN gazetteer.postcode AS p ON ST_Contains(p.geom, ST_Point(s.x, s.y))
WHERE s.x IS NOT NULL
GROUP BY ALL;
