-- Linkage step 1a: every ER contact with a stable key, the CPR-person key (when a CPR
-- pseudonym is known) and a rank for its geocode quality (higher = better placed).
-- A position taken over from a linked police record by an earlier run (quality 'police')
-- is ignored, so re-running the linkage gives the same result as the first run.
-- __SCOPE__ is 'true' (every contact) or a filter to the contacts a night re-links
-- (skadestue.link.incremental).
CREATE OR REPLACE TEMP TABLE link_contact AS
WITH c AS (
    SELECT * REPLACE (
        CASE WHEN geocode_quality = 'police' THEN NULL ELSE x END AS x,
        CASE WHEN geocode_quality = 'police' THEN NULL ELSE y END AS y,
        CASE WHEN geocode_quality = 'police' THEN NULL ELSE geocode_uncertainty_m END AS geocode_uncertainty_m)
    FROM core.er_contact
    WHERE __SCOPE__
)
SELECT
    sygehus || '|' || kontakt_id                      AS contact_key,
    sygehus,
    kontakt_id,
    ankomst,
    ulykke_tid,
    injury_date,
    cpr_pseudonym,
    CASE WHEN cpr_pseudonym IS NOT NULL THEN 'C|' || cpr_pseudonym END AS person_key,
    sex,
    age,
    road_user,
    counterpart,
    kommunekode,
    severity,
    nullif(trim(diagnose), '')                        AS diagnose,
    x,
    y,
    CASE WHEN x IS NULL OR y IS NULL THEN 'none' ELSE geocode_quality END AS geocode_quality,
    geocode_uncertainty_m,
    CASE WHEN x IS NULL OR y IS NULL THEN 0
         WHEN geocode_quality IN ('A', 'police') THEN 4
         WHEN geocode_quality = 'B' THEN 3
         WHEN geocode_quality = 'C' THEN 2
         ELSE 1 END                                   AS geocode_rank,
    nullif(lower(trim(regexp_replace(coalesce(ulykkessted, ''), '\s+', ' ', 'g'))), '') AS place_text
FROM c;
