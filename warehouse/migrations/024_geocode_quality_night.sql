-- Geocoding and quality gates that cost what the night changed (issue 9).

-- The municipality polygon containing a cached point, computed once per cache row (not for every
-- contact every night): '' when no polygon contains it, NULL when not computed yet (new rows,
-- rows a correction moved). geocode_er_update fills it before copying the cache onto contacts.
ALTER TABLE core.geocode_result ADD COLUMN kommunekode_polygon VARCHAR;

-- True when core.er_contact.kommunekode was not stated by the ward but taken from the geocoded
-- point: the contact's cache key then stays (text, '') on later nights, when core keeps the row.
ALTER TABLE core.er_contact ADD COLUMN kommunekode_geocoded BOOLEAN;

-- Police accidents: hash of the geocode-relevant columns as the police stage left them, so a
-- night checks only the accidents that are new or changed since (NULL = not checked yet).
ALTER TABLE core.police_accident ADD COLUMN geocode_hash UBIGINT;

-- The review list, keyed like the cache (a kommune taken from the point is no hint).
CREATE OR REPLACE VIEW quality.geocode_review AS
SELECT g.location_text,
       g.kommunekode_hint,
       count(*) AS n_contacts,
       min(e.ankomst) AS first_seen,
       max(e.ankomst) AS last_seen,
       g.reason,
       g.candidates
FROM core.geocode_result AS g
JOIN core.er_contact AS e
  ON coalesce(e.ulykkessted, '') = g.location_text
 AND CASE WHEN e.kommunekode_geocoded THEN '' ELSE coalesce(e.kommunekode, '') END = g.kommunekode_hint
WHERE g.quality = 'none' AND trim(g.location_text) <> '' AND g.reason <> 'blank location text'
GROUP BY ALL
ORDER BY n_contacts DESC, g.location_text;

-- Quality gates at night: the row hashes (over a suite's columns) that passed the suite's
-- row-wise expectations in a run without a critical failure; the next night's gate checks only
-- rows whose hash is not here (skadestue.quality.incremental).
CREATE TABLE quality.validated_row (
    suite       VARCHAR NOT NULL,
    row_hash    UBIGINT NOT NULL
);
