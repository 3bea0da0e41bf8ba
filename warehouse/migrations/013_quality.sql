-- Quality checks that need more than one column or table, as views the suites validate
-- (expectations/raw_er_timing.json, raw_police_counts.json, linked_share.json), and the
-- nightly trend of the key ratios so a drift shows up before it matters.

-- ER contacts with the hours from accident to arrival (NULL when the accident time is unknown).
CREATE VIEW quality.er_contact_timing AS
SELECT sygehus, kontakt_id, delivery_id, delivery_seq, ankomst, ulykke_tid,
       date_diff('minute', ulykke_tid, ankomst) / 60.0 AS hours_to_arrival
FROM staging.er_contact;

-- Police accidents' stated death/serious/slight counts next to the count of their person rows
-- (newest version of each accident and person, as build_core keeps them).
CREATE VIEW quality.police_accident_person_counts AS
WITH accident AS (
    SELECT * FROM staging.police_accident
    QUALIFY row_number() OVER (PARTITION BY uheld_id ORDER BY delivery_seq DESC) = 1
), person AS (
    SELECT * FROM staging.police_person
    QUALIFY row_number() OVER (PARTITION BY uheld_id, elementnr, personnr ORDER BY delivery_seq DESC) = 1
)
SELECT a.uheld_id, a.delivery_id,
       coalesce(a.antal_draebte, 0) AS antal_draebte,
       coalesce(a.antal_alv, 0) AS antal_alv,
       coalesce(a.antal_let, 0) AS antal_let,
       count(*) FILTER (WHERE p.severity = 'killed') AS n_killed_persons,
       count(*) FILTER (WHERE p.severity = 'serious') AS n_serious_persons,
       count(*) FILTER (WHERE p.severity = 'slight') AS n_slight_persons,
       count(p.uheld_id) AS n_persons
FROM accident a
LEFT JOIN person p ON p.uheld_id = a.uheld_id
GROUP BY ALL;

-- Share of ER-seen casualties that the police also reported: a sudden drop means a broken feed.
CREATE VIEW quality.casualty_link_share AS
SELECT count(*) FILTER (WHERE source IN ('er', 'both')) AS n_er_casualties,
       count(*) FILTER (WHERE source = 'both') AS n_linked,
       count(*) FILTER (WHERE source = 'both')
           / nullif(count(*) FILTER (WHERE source IN ('er', 'both')), 0) AS linked_share
FROM core.casualty;

-- Validation results per run and stage: how many expectations failed, critical ones apart.
CREATE VIEW quality.run_stage_summary AS
SELECT run_id, stage,
       count(*) AS n_expectations,
       count(*) FILTER (WHERE NOT success) AS n_failed,
       count(*) FILTER (WHERE NOT success AND critical) AS n_critical_failed,
       min(validated_at) AS validated_at
FROM quality.validation_result
GROUP BY ALL;

-- Key ratios per night, newest first. One row per run that stored ratios
-- (quality.run_ratio is filled by skadestue.quality.record_run_ratios after linkage).
CREATE TABLE quality.run_ratio (
    run_id          VARCHAR NOT NULL,
    ratio           VARCHAR NOT NULL,        -- placed_share | linked_share | quarantine_share |
                                             -- checks_quarantine_share | rows_<table>
    value           DOUBLE,
    recorded_at     TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (run_id, ratio)
);

CREATE VIEW quality.nightly_trend AS
SELECT run_id,
       min(recorded_at) AS recorded_at,
       max(value) FILTER (WHERE ratio = 'placed_share')      AS placed_share,
       max(value) FILTER (WHERE ratio = 'linked_share')      AS linked_share,
       max(value) FILTER (WHERE ratio = 'quarantine_share')  AS quarantine_share,
       max(value) FILTER (WHERE ratio = 'checks_quarantine_share') AS checks_quarantine_share,
       max(value) FILTER (WHERE ratio = 'rows_er_contact')     AS rows_er_contact,
       max(value) FILTER (WHERE ratio = 'rows_police_accident') AS rows_police_accident,
       max(value) FILTER (WHERE ratio = 'rows_police_person')  AS rows_police_person,
       max(value) FILTER (WHERE ratio = 'rows_casualty')       AS rows_casualty
FROM quality.run_ratio
GROUP BY run_id
ORDER BY recorded_at DESC;
