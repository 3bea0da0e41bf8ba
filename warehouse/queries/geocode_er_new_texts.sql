-- Distinct (location text, kommune hint) pairs of core.er_contact not yet in the geocode cache.
SELECT DISTINCT coalesce(e.ulykkessted, '') AS location_text,
       coalesce(e.kommunekode, '') AS kommunekode_hint
FROM core.er_contact AS e
ANTI JOIN core.geocode_result AS g
  ON g.location_text = coalesce(e.ulykkessted, '')
 AND g.kommunekode_hint = coalesce(e.kommunekode, '')
