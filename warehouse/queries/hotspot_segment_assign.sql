-- Each snapped casualty into its fixed window of every length in hs_segment_window(window_m):
-- from_m = floor(pos / w) * w, to_m = from_m + w.
CREATE OR REPLACE TEMP TABLE hs_segment_assign AS
SELECT
    s.casualty_id,
    s.kommunekode,
    s.vejkode,
    s.pos_m,
    w.window_m,
    (floor(s.pos_m / w.window_m) * w.window_m)::INTEGER AS from_m,
    (floor(s.pos_m / w.window_m) * w.window_m)::INTEGER + w.window_m AS to_m,
    concat_ws('|', s.kommunekode, s.vejkode, w.window_m, from_m) AS unit_id
FROM hs_snap AS s
CROSS JOIN hs_segment_window AS w;
