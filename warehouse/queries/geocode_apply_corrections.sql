-- Apply the manual corrections (registered as _geocode_corrections by
-- skadestue.geocode.review) to the geocode cache: texts match case- and space-insensitively;
-- a correction without a kommune hint applies to every hint, one with a hint overrides it.
UPDATE core.geocode_result AS g
SET x = c.cx, y = c.cy, quality = c.cquality, uncertainty_m = c.cuncertainty_m,
    method = c.method, matched = c.matched, kommunekode = NULL, candidates = NULL,
    kommunekode_polygon = NULL,
    reason = 'manual correction (corrections file line ' || c.line_no || ')'
FROM _geocode_corrections AS c
WHERE c.hint = ''
  AND array_to_string(string_split_regex(lower(trim(g.location_text)), '\s+'), ' ') = c.text_key;

UPDATE core.geocode_result AS g
SET x = c.cx, y = c.cy, quality = c.cquality, uncertainty_m = c.cuncertainty_m,
    method = c.method, matched = c.matched, kommunekode = NULL, candidates = NULL,
    kommunekode_polygon = NULL,
    reason = 'manual correction (corrections file line ' || c.line_no || ')'
FROM _geocode_corrections AS c
WHERE c.hint <> '' AND c.hint = g.kommunekode_hint
  AND array_to_string(string_split_regex(lower(trim(g.location_text)), '\s+'), ' ') = c.text_key;
