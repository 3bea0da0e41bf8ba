-- Distinct (location text, kommune hint) pairs of core.er_contact not yet in the geocode cache.
-- The hint is the ward's stated kommune; a kommune the geocoder took from the point is no hint.
SELECT DISTINCT coalesce(e.ulykkessted, '') AS location_text,
       CASE WHEN e.kommunekode_geocoded THEN '' ELSE coalesce(e.kommunekode, '') END AS kommunekode_hint
FROM core.er_contact AS e
ANTI JOIN core.geocode_result AS g
  ON g.location_text = coalesce(e.ulykkessted, '')
 AND g.kommunekode_hint = CASE WHEN e.kommunekode_geocoded THEN '' ELSE coalesce(e.kommunekode, '') END
