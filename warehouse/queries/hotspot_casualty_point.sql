-- marts.casualty_point: every casualty with only the columns the engineers' tier may show,
-- for the injury years in hs_point_year(part) ('none': no date) that are being rewritten.
INSERT INTO marts.casualty_point BY NAME
SELECT
    casualty_id, injury_date, injury_hour, road_user, counterpart, severity, age_band, sex,
    source, kommunekode, x, y,
    CASE WHEN x IS NOT NULL AND y IS NOT NULL THEN ST_Point(x, y) END AS geom
FROM core.casualty
WHERE coalesce(year(injury_date)::VARCHAR, 'none') IN (SELECT part FROM hs_point_year);
