-- core.er_contact from staging: the newest delivery of each (sygehus, kontakt_id) wins.
-- Geocode and casualty columns start empty; the geocode and link stages fill them.
-- skadestue.ingest.core.build_core deletes the rows it rebuilds first (all of them, or the keys
-- delivered since core was last built) and puts its key filter in place of __KEYS__.
-- Most keys have one staging row: only the corrected ones are ranked (a window over every
-- row sorts them all, about twice the cost).
INSERT INTO core.er_contact BY NAME
WITH delivered AS NOT MATERIALIZED (
    SELECT * FROM staging.er_contact
    __KEYS__
),
corrected AS (
    SELECT sygehus, kontakt_id FROM delivered GROUP BY sygehus, kontakt_id HAVING count(*) > 1
),
newest AS (
    SELECT * FROM delivered ANTI JOIN corrected USING (sygehus, kontakt_id)
    UNION ALL
    (SELECT * FROM delivered SEMI JOIN corrected USING (sygehus, kontakt_id)
     QUALIFY row_number() OVER (PARTITION BY sygehus, kontakt_id ORDER BY delivery_seq DESC, line_no DESC) = 1)
)
SELECT
    sygehus, kontakt_id, delivery_id, ankomst, ulykke_tid, injury_date,
    cpr_pseudonym, birth_date, sex, age, road_user, counterpart, ulykkessted,
    kommunekode, diagnose, bidiagnoser, afslutning, severity,
    CAST(NULL AS DOUBLE) AS x,
    CAST(NULL AS DOUBLE) AS y,
    'none' AS geocode_quality,
    CAST(NULL AS DOUBLE) AS geocode_uncertainty_m,
    CAST(NULL AS VARCHAR) AS geocode_method,
    CAST(NULL AS VARCHAR) AS casualty_id
FROM newest;
