-- Core without primary-key indexes (issues 3 and 9), as migration 015 did for raw and staging:
-- the indexes made building core about 3x slower (1 M contacts: ~2.5 CPU-s more to insert,
-- ~3 s to delete) and a night's few deletes cost index maintenance. Uniqueness per record key
-- is kept by construction: skadestue.ingest.core.build_core inserts one row per key (the newest
-- delivery) after deleting the keys it rebuilds, and checks the rebuilt keys before it commits.
-- The tables are copied whole (whatever columns later migrations added), then the NOT NULL
-- constraints and defaults of migration 005 are put back.

CREATE TABLE core.er_contact_021 AS SELECT * FROM core.er_contact;
DROP TABLE core.er_contact;
ALTER TABLE core.er_contact_021 RENAME TO er_contact;
ALTER TABLE core.er_contact ALTER COLUMN sygehus SET NOT NULL;
ALTER TABLE core.er_contact ALTER COLUMN kontakt_id SET NOT NULL;
ALTER TABLE core.er_contact ALTER COLUMN delivery_id SET NOT NULL;
ALTER TABLE core.er_contact ALTER COLUMN ankomst SET NOT NULL;
ALTER TABLE core.er_contact ALTER COLUMN injury_date SET NOT NULL;
ALTER TABLE core.er_contact ALTER COLUMN road_user SET NOT NULL;
ALTER TABLE core.er_contact ALTER COLUMN counterpart SET NOT NULL;
ALTER TABLE core.er_contact ALTER COLUMN severity SET NOT NULL;
ALTER TABLE core.er_contact ALTER COLUMN geocode_quality SET DEFAULT 'none';
ALTER TABLE core.er_contact ALTER COLUMN geocode_quality SET NOT NULL;

CREATE TABLE core.police_accident_021 AS SELECT * FROM core.police_accident;
DROP TABLE core.police_accident;
ALTER TABLE core.police_accident_021 RENAME TO police_accident;
ALTER TABLE core.police_accident ALTER COLUMN uheld_id SET NOT NULL;
ALTER TABLE core.police_accident ALTER COLUMN delivery_id SET NOT NULL;
ALTER TABLE core.police_accident ALTER COLUMN uheldsdato SET NOT NULL;
ALTER TABLE core.police_accident ALTER COLUMN severity SET NOT NULL;
ALTER TABLE core.police_accident ALTER COLUMN geocode_quality SET DEFAULT 'none';
ALTER TABLE core.police_accident ALTER COLUMN geocode_quality SET NOT NULL;

CREATE TABLE core.police_person_021 AS SELECT * FROM core.police_person;
DROP TABLE core.police_person;
ALTER TABLE core.police_person_021 RENAME TO police_person;
ALTER TABLE core.police_person ALTER COLUMN uheld_id SET NOT NULL;
ALTER TABLE core.police_person ALTER COLUMN elementnr SET NOT NULL;
ALTER TABLE core.police_person ALTER COLUMN personnr SET NOT NULL;
ALTER TABLE core.police_person ALTER COLUMN delivery_id SET NOT NULL;
ALTER TABLE core.police_person ALTER COLUMN road_user SET NOT NULL;
ALTER TABLE core.police_person ALTER COLUMN counterpart SET NOT NULL;
ALTER TABLE core.police_person ALTER COLUMN severity SET NOT NULL;
