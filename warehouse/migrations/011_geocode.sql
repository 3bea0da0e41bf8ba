-- Geocoder manual review (issue 4). Unplaced texts keep x/y NULL and quality 'none'; the
-- geocoder stores its best guesses with them so a person can fix them in the corrections file
-- (GeocodeSettings.corrections_file), which geocode_er_contacts re-applies on every run.

-- Up to 5 best candidates for an unplaced text: JSON list of {label, kommunekode, x, y, score}.
ALTER TABLE core.geocode_result ADD COLUMN candidates JSON;

-- The review list: every distinct unplaced (text, kommune hint) of the ER contacts that a person
-- could act on (blank texts are left out: there is nothing to read), most contacts first.
CREATE VIEW quality.geocode_review AS
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
 AND coalesce(e.kommunekode, '') = g.kommunekode_hint
WHERE g.quality = 'none' AND trim(g.location_text) <> '' AND g.reason <> 'blank location text'
GROUP BY ALL
ORDER BY n_contacts DESC, g.location_text;
