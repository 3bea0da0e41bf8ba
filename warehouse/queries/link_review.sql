-- Clerical review list: scored pairs with $review_min <= probability < $review_max (near the
-- threshold on either side), and pairs above the threshold that lost a one-to-one conflict.
-- Read from the linkage's kept state (link.*, every scored pair so far) and this run's links.
DELETE FROM quality.link_review;

INSERT INTO quality.link_review (er_casualty_id, police_casualty_id, match_probability, match_weight,
    decision, cpr_agrees, er_injury_date, police_injury_date, er_sex, police_sex, er_age, police_age,
    er_road_user, police_road_user, er_kommunekode, police_kommunekode, distance_m)
SELECT
    e.er_casualty_id, p.casualty_id, s.match_probability, s.match_weight,
    CASE WHEN l.er_key IS NOT NULL THEN 'linked'
         WHEN s.match_probability < $threshold THEN 'below_threshold'
         ELSE 'lost_to_better_pair' END,
    e.cpr_pseudonym = p.cpr_pseudonym,
    e.injury_date, p.injury_date, e.sex, p.sex, e.age, p.age, e.road_user, p.road_user,
    e.kommunekode, p.kommunekode,
    sqrt(power(e.x - p.x, 2) + power(e.y - p.y, 2))
FROM link.scored_pair s
JOIN link.er_event e ON e.event_key = s.er_key
JOIN link.police_person p ON p.police_key = s.police_key
LEFT JOIN link_pair l ON l.er_key = s.er_key AND l.police_key = s.police_key
WHERE (s.match_probability >= $review_min AND s.match_probability < $review_max)
   OR (s.match_probability >= $threshold AND l.er_key IS NULL)
ORDER BY s.match_probability DESC, e.er_casualty_id, p.casualty_id;
