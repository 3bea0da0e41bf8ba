-- Injured police persons whose accident row is missing: they cannot become casualties
-- (no date, no place), so they go to quarantine.
SELECT p.uheld_id, p.elementnr, p.personnr, p.delivery_id
FROM core.police_person p
ANTI JOIN core.police_accident a USING (uheld_id)
WHERE p.severity <> 'uninjured'
ORDER BY p.uheld_id, p.elementnr, p.personnr;
