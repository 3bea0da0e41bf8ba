-- core.police_person from staging: the newest delivery of each (UHELDS_ID, ELEMENTNR, PERSONNR)
-- wins. Age from the CPR birth date at the accident date when both are known, else ALDER.
-- counterpart: the road user of the other element when the accident has exactly two
-- elements; with more, element 1's road user for persons outside element 1 and 'other' for
-- element 1; 'none' for single-element accidents. An element's road user is that of its
-- lowest-numbered person (the driver); pedestrians are elements too.
-- build_core deletes the rows it rebuilds first and puts its key filter in place of __KEYS__
-- (whole accidents: counterpart and age depend on the accident's other persons and its date).
INSERT INTO core.police_person BY NAME
WITH person AS (
    SELECT *
    FROM staging.police_person
    __KEYS__
    QUALIFY row_number() OVER (
        PARTITION BY uheld_id, elementnr, personnr ORDER BY delivery_seq DESC, line_no DESC) = 1
),
element AS (
    SELECT uheld_id, elementnr, arg_min(road_user, personnr) AS element_road_user
    FROM person
    GROUP BY uheld_id, elementnr
),
accident_elements AS (
    SELECT uheld_id, count(*) AS n_elements
    FROM element
    GROUP BY uheld_id
),
other_element AS (
    -- for two-element accidents: each element's single other element
    SELECT e.uheld_id, e.elementnr, o.element_road_user AS other_road_user
    FROM element e
    JOIN element o ON o.uheld_id = e.uheld_id AND o.elementnr <> e.elementnr
    JOIN accident_elements n ON n.uheld_id = e.uheld_id AND n.n_elements = 2
)
SELECT
    p.uheld_id, p.elementnr, p.personnr, p.delivery_id, p.transportmiddel, p.road_user,
    CASE
        WHEN n.n_elements = 1 THEN 'none'
        WHEN n.n_elements = 2 THEN o.other_road_user
        WHEN p.elementnr <> 1 THEN coalesce(e1.element_road_user, 'other')
        ELSE 'other'
    END AS counterpart,
    p.personart, p.skadesgrad, p.severity,
    CASE
        WHEN p.birth_date IS NOT NULL AND a.uheldsdato IS NOT NULL THEN
            date_diff('year', p.birth_date, a.uheldsdato)
            - CASE WHEN strftime(a.uheldsdato, '%m%d') < strftime(p.birth_date, '%m%d') THEN 1 ELSE 0 END
        ELSE p.age
    END AS age,
    p.sex, p.cpr_pseudonym, p.birth_date,
    CAST(NULL AS VARCHAR) AS casualty_id
FROM person p
JOIN accident_elements n USING (uheld_id)
LEFT JOIN other_element o ON o.uheld_id = p.uheld_id AND o.elementnr = p.elementnr
LEFT JOIN element e1 ON e1.uheld_id = p.uheld_id AND e1.elementnr = 1
LEFT JOIN core.police_accident a ON a.uheld_id = p.uheld_id;
