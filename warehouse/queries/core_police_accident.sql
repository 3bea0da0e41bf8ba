-- core.police_accident from staging: the newest delivery of each UHELDS_ID wins.
-- The police's own X/Y are kept with geocode_quality 'police'; xy_flag is set by geocoding.
-- build_core deletes the rows it rebuilds first and puts its key filter in place of __KEYS__.
INSERT INTO core.police_accident BY NAME
SELECT
    uheld_id, delivery_id, uheldsdato, klokkeslaet, uheldsart, kode_uheldssituation,
    kommunekode, vejnavn, husnr, krydsende_vej, vejkode, km_m, antal_draebte, antal_alv,
    antal_let, sprit, lys, vejrforhold, severity, x, y,
    CASE WHEN x IS NOT NULL AND y IS NOT NULL THEN 'police' ELSE 'none' END AS geocode_quality,
    CAST(NULL AS DOUBLE) AS geocode_uncertainty_m,
    CAST(NULL AS VARCHAR) AS xy_flag
FROM staging.police_accident
__KEYS__
QUALIFY row_number() OVER (PARTITION BY uheld_id ORDER BY delivery_seq DESC, line_no DESC) = 1;
