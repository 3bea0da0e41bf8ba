-- Junctions: road-segment end nodes shared by differently named (or coded) roads.
-- Nodes are the STARTKNUDE/SLUTKNUDE ids where present, else end points snapped to 1 m.
-- junction_id is derived from the rounded position, so it is stable across re-imports.
INSERT INTO gazetteer.junction
WITH ends AS (
    SELECT kommunekode, vejkode, vejnavn, startknude AS knude,
           ST_X(ST_StartPoint(geom)) AS x, ST_Y(ST_StartPoint(geom)) AS y
    FROM gazetteer.road_segment
    UNION ALL
    SELECT kommunekode, vejkode, vejnavn, slutknude,
           ST_X(ST_EndPoint(geom)), ST_Y(ST_EndPoint(geom))
    FROM gazetteer.road_segment
), keyed AS (
    SELECT *,
           coalesce(nullif(trim(knude), ''),
                    'xy_' || CAST(round(x) AS BIGINT) || '_' || CAST(round(y) AS BIGINT)) AS node_key
    FROM ends
    WHERE x IS NOT NULL
), nodes AS (
    SELECT node_key,
           min(kommunekode) AS kommunekode,
           avg(x) AS x, avg(y) AS y,
           list(DISTINCT vejnavn ORDER BY vejnavn) FILTER (WHERE vejnavn IS NOT NULL) AS vejnavne,
           list(DISTINCT vejkode ORDER BY vejkode) FILTER (WHERE vejkode IS NOT NULL) AS vejkoder,
           count(DISTINCT coalesce(lower(vejnavn), kommunekode || ':' || vejkode)) AS n_roads
    FROM keyed
    GROUP BY node_key
    HAVING count(DISTINCT coalesce(lower(vejnavn), kommunekode || ':' || vejkode)) >= 2
), ided AS (
    SELECT *,
           'J' || kommunekode || '_' || CAST(round(x) AS BIGINT) || '_' || CAST(round(y) AS BIGINT)
               AS base_id,
           row_number() OVER (
               PARTITION BY kommunekode, CAST(round(x) AS BIGINT), CAST(round(y) AS BIGINT)
               ORDER BY node_key) AS rn
    FROM nodes
)
SELECT CASE WHEN rn = 1 THEN base_id ELSE base_id || '_' || rn END AS junction_id,
       kommunekode, x, y, coalesce(vejnavne, []), coalesce(vejkoder, []), n_roads,
       CASE WHEN node_key LIKE 'xy\_%' ESCAPE '\' THEN NULL ELSE node_key END AS node_id
FROM ided;
