-- How far off a casualty's point may be (metres): the geocoder's uncertainty for ER-placed
-- casualties, NULL for police X/Y. The hotspot layers only count a casualty in a unit it
-- can be placed in (a street-only placement is no evidence about a junction).
ALTER TABLE core.casualty ADD COLUMN geocode_uncertainty_m DOUBLE;
