-- The dark figure, stratified (skadestue.link.darkfigure): besides the pooled Chapman
-- estimate of every stratum level, the strata actually used (stratum_level 'stratum':
-- kommune x road user x killed/non_fatal, sparse cells pooled into 'rest' cells) and their
-- sum (stratum_level 'total_stratified', the headline estimate, n_strata strata).
-- Estimates use one recapture sample: the police casualties with a CPR pseudonym when at
-- least half of them carry one ('police_cpr'), else all of them ('police_all').
ALTER TABLE marts.dark_figure ADD COLUMN n_police_cpr INTEGER;       -- police casualties with a CPR pseudonym
ALTER TABLE marts.dark_figure ADD COLUMN n_both_cpr INTEGER;         -- ... of them linked to an ER event
ALTER TABLE marts.dark_figure ADD COLUMN recapture_sample VARCHAR;   -- police_cpr | police_all
ALTER TABLE marts.dark_figure ADD COLUMN method VARCHAR;             -- pooled | stratum | stratified
ALTER TABLE marts.dark_figure ADD COLUMN is_lower_bound BOOLEAN;     -- pooled over strata the stratified total separates
ALTER TABLE marts.dark_figure ADD COLUMN n_strata INTEGER;           -- strata summed (1 unless 'stratified')
