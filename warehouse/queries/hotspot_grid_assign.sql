-- Each placed casualty with a kommune into its Det Danske Kvadratnet cell of every size in
-- hs_grid_size(size_m, label, unit_m): cell_id = label_{N0 / unit}_{E0 / unit}, northing
-- first, (E0, N0) the lower-left corner, e.g. 100m_61669_7288 and 1km_6166_728.
-- A casualty counts in a cell size only when its uncertainty is at most half the cell.
CREATE OR REPLACE TEMP TABLE hs_grid_assign AS
WITH corner AS (
    SELECT
        c.casualty_id,
        c.kommunekode,
        s.size_m,
        s.label,
        s.unit_m,
        (floor(c.x / s.size_m) * s.size_m)::BIGINT AS e0,
        (floor(c.y / s.size_m) * s.size_m)::BIGINT AS n0
    FROM hs_casualty AS c
    CROSS JOIN hs_grid_size AS s
    WHERE c.kommunekode IS NOT NULL AND c.uncertainty_m <= s.size_m / 2
)
SELECT
    casualty_id,
    kommunekode,
    size_m AS cell_size_m,
    e0,
    n0,
    label || '_' || (n0 // unit_m)::VARCHAR || '_' || (e0 // unit_m)::VARCHAR AS cell_id
FROM corner;
