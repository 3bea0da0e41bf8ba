-- Are the marts built from the current core.casualty? (rows in core, rows in the mart,
-- core casualties missing from the mart)
SELECT
    (SELECT count(*) FROM core.casualty) AS n_core,
    (SELECT count(*) FROM marts.casualty_point) AS n_mart,
    (SELECT count(*) FROM core.casualty AS c
        ANTI JOIN marts.casualty_point AS m USING (casualty_id)) AS n_missing;
