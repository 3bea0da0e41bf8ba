"""Incremental linkage: a night re-links only what changed, with the same result as a full relink.

State (migration 022, schema ``link``, written in the linkage's one transaction):

- ``link.model``: the Splink model a night scores with, m (priors or model.json), u (random
  sampling), lambda and the date levels' u (from the data's size and date span), all frozen
  at training time. It is retrained (and everything relinked) only when it is missing, when
  ``ops.stage_state('link', 'model')`` is gone (``skadestue run --full``, ``state.forget``),
  when the settings fingerprint changes (link settings, priors, model.json, sampling, this
  module's STATE_VERSION), when ``mode='full'``, or when the number of ER events has drifted
  by more than ``RETRAIN_DRIFT`` (50 %) from the number it was trained on (lambda =
  0.6 / n_events would be off by more than that factor; a retrain re-scores every pair).
  There are no term-frequency adjustments in this model, so nothing else depends on the
  whole data: a pair's score is a function of its two records and the frozen model.
- ``link.contact``: per ER contact a hash of the columns the linkage reads (police-placed
  coordinates masked as link_contacts.sql masks them), its person key, its CPR-less
  same-person component and its event. ``link.er_event`` / ``link.police_person``: the fold
  and the injured police persons with a row hash. ``link.scored_pair``: every scored pair
  with probability >= min(review floor, threshold). ``link.pair``: last run's links.

A night:

1. Contacts whose hash changed, new, vanished, or whose ``casualty_id`` is NULL (core rows
   re-inserted by ingestion) are the seeds. The CPR-less same-person graph is re-opened only
   around them: the seeds, the contacts an edge joins to a seed (edges are only looked for
   among contacts of the same sex, age and road user arriving within return_visit_days), and
   every member of the old components of those. That set is closed (an edge between two
   unchanged contacts existed before, so both were in one old component), so its components
   are exactly those of a full run. Every person (old and new person key) of that set is
   re-folded into events from all its contacts.
2. Events and police persons are compared with the stored ones by row hash: new or changed
   ones are re-scored against the other side (Splink on the changed records plus those of the
   other side within a day or with the same CPR, a superset of the blocking rules); the pairs
   of changed or vanished records are deleted first.
3. One-to-one matching runs globally on the kept pairs (cheap: ~0.3 s at 500k contacts).
   Casualties are rebuilt only for the events and police persons that changed or whose link
   changed, plus their link partners; casualty ids are derived from keys, so unchanged
   casualties keep theirs. The review list and the dark figure are rebuilt globally from the
   kept state (about 1 s at national scale). Police positions for linked, badly placed ER
   contacts are (re)applied over all links (casualty.place_linked_contacts), so a contact
   another stage re-geocoded back to its old value gets it again.

An ER position the linkage took over from the police is read as unplaced from then on (as
link_contacts.sql always did), so such a contact's hash changes once after the night that
placed it and it is re-opened the next night: the first night after a full build re-opens all
of them (21,000 at national scale), an ordinary night those of the night before (a few dozen).

A full relink (``mode='relink'``, or any retrain) empties the state and runs the same code with
every record "changed", so incremental == full relink with the same model, exactly (tested in
tests/test_link_incremental.py). Versus a relink with a freshly trained model, scores move a
little with lambda, the date span and the sampled u; see the README for what that changed on
the demo.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field

import duckdb

from skadestue import state
from skadestue.config import Settings
from skadestue.link import prepare
from skadestue.link.model import trained_m
from skadestue.link.priors import splink_settings
from skadestue.link.splink_model import (
    _ER_INPUT, _POLICE_INPUT, REVIEW_MIN_PROBABILITY, U_SAMPLE_PAIRS, U_SAMPLE_SEED, match_one_to_one,
    score_with_model, train_model,
)
from skadestue.db import query

log = logging.getLogger(__name__)

STAGE = "link"
#: Bump when the meaning of the kept state changes: the next run retrains and relinks.
STATE_VERSION = 1
#: Retrain (and re-score every pair) when the number of ER events differs from the number the
#: model was trained on by more than this share.
RETRAIN_DRIFT = 0.5

_STATE_TABLES = ("link.contact", "link.er_event", "link.police_person", "link.scored_pair", "link.pair")

#: The core.er_contact columns link_contacts.sql reads, police-placed positions masked.
_CONTACT_HASH = """
SELECT sygehus || '|' || kontakt_id AS contact_key,
       hash(sygehus, kontakt_id, ankomst, ulykke_tid, injury_date, cpr_pseudonym, sex, age, road_user,
            counterpart, kommunekode, severity, diagnose, ulykkessted,
            CASE WHEN geocode_quality = 'police' THEN NULL ELSE x END,
            CASE WHEN geocode_quality = 'police' THEN NULL ELSE y END,
            CASE WHEN geocode_quality = 'police' THEN NULL ELSE geocode_quality END,
            CASE WHEN geocode_quality = 'police' THEN NULL ELSE geocode_uncertainty_m END) AS row_hash,
       casualty_id IS NULL AS unlinked
FROM core.er_contact
"""

TEMP_TABLES = ("link_contact_now", "link_seed", "link_scope", "link_n1", "link_closure", "link_c_result",
               "link_person", "link_fold_scope", "link_event_new", "link_er_changed", "link_er_gone",
               "link_police_now", "link_pol_changed", "link_pol_gone", "link_pol_old_ids", "link_er_in",
               "link_pol_in", "link_pair_diff", "link_casualty_drop", "link_police_reset",
               "link_nocpr_component", "link_contact", "link_contact_event", "link_er_event",
               "link_police_person", "link_candidate", "link_pair")


@dataclass
class RelinkStats:
    """What a night's linkage redid (for LinkReport and ops.run_stage)."""

    mode: str                 # full | relink | incremental | skipped
    model_trained: bool
    n_contacts_changed: int   # seeds: new, changed, vanished or unlinked contacts
    n_contacts_refolded: int
    n_er_events_rescored: int
    n_police_rescored: int
    n_pairs_scored: int       # pairs Splink scored this run
    n_casualties_rebuilt: int
    n_contacts: int
    n_er_events: int
    n_police: int
    n_candidates: int
    n_links: int
    #: Wall seconds per step (contacts, police, model, score, match, scope).
    step_seconds: dict = field(default_factory=dict)


def settings_fingerprint(settings: Settings) -> str:
    """Everything the kept state and model depend on besides the data."""
    salt = {
        "version": STATE_VERSION,
        "link": settings.link.model_dump(),
        "priors": splink_settings(1000, 365),
        "trained_m": sorted((f"{k[0]}|{k[1]}", v) for k, v in trained_m().items()),
        "u_pairs": U_SAMPLE_PAIRS, "u_seed": U_SAMPLE_SEED, "review_min": REVIEW_MIN_PROBABILITY,
        "same_place_m": prepare.SAME_PLACE_M, "new_place_m": prepare.NEW_PLACE_M,
    }
    return hashlib.sha256(json.dumps(salt, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _n(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return int(con.execute(sql).fetchone()[0])


def relink(con: duckdb.DuckDBPyConnection, settings: Settings, mode: str = "auto",
           run_id: str | None = None) -> RelinkStats:
    """Bring the linkage up to date (inside the caller's transaction). ``mode``: 'auto'
    (incremental when the state and model are valid), 'relink' (relink everything with the
    stored model), 'full' (retrain the model and relink everything)."""
    if mode not in ("auto", "relink", "full"):
        raise ValueError(f"link mode must be auto, relink or full, not {mode!r}")
    threads = settings.duckdb_threads
    threshold = float(settings.link.match_threshold)
    keep_min = min(REVIEW_MIN_PROBABILITY, threshold)
    fp = settings_fingerprint(settings)
    model_row = con.execute("SELECT settings_fp, model_json, n_er_events FROM link.model").fetchone()
    retrain = (mode == "full" or model_row is None or model_row[0] != fp
               or state.stored(con, STAGE, "model") != fp)
    everything = retrain or mode == "relink" or state.stored(con, STAGE, "state") != fp
    steps: dict[str, float] = {}
    clock = [time.perf_counter()]

    def mark(name: str) -> None:
        now = time.perf_counter()
        steps[name] = round(now - clock[0], 3)
        clock[0] = now

    if everything:
        for table in _STATE_TABLES:
            con.execute(f"DELETE FROM {table}")

    # 1. contacts: seeds, re-opened components, re-folded persons
    con.execute(f"CREATE OR REPLACE TEMP TABLE link_contact_now AS {_CONTACT_HASH}")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE link_seed AS
        SELECT coalesce(n.contact_key, o.contact_key) AS contact_key, n.contact_key IS NOT NULL AS present
        FROM link_contact_now n FULL OUTER JOIN link.contact o ON o.contact_key = n.contact_key
        WHERE n.contact_key IS NULL OR o.contact_key IS NULL OR n.row_hash <> o.row_hash OR n.unlinked""")
    n_seeds = _n(con, "SELECT count(*) FROM link_seed")
    n_refolded = 0
    if everything:
        n_refolded = _fold_all(con, settings)
    elif n_seeds:
        n_refolded = _fold_around_seeds(con, settings)
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE link_er_changed (event_key VARCHAR)")
        con.execute("CREATE OR REPLACE TEMP TABLE link_er_gone (event_key VARCHAR, er_casualty_id VARCHAR)")

    mark("contacts")
    # 2. police persons
    prepare.build_police_persons(con)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE link_police_now AS
        SELECT p.*, hash(p) AS row_hash FROM link_police_person p""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE link_pol_changed AS
        SELECT n.police_key FROM link_police_now n
        LEFT JOIN link.police_person o ON o.police_key = n.police_key AND o.row_hash = n.row_hash
        LEFT JOIN core.police_person c
          ON c.uheld_id = n.uheld_id AND c.elementnr = n.elementnr AND c.personnr = n.personnr
        WHERE o.police_key IS NULL OR c.casualty_id IS NULL""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE link_pol_gone AS
        SELECT o.police_key, o.casualty_id FROM link.police_person o
        WHERE o.police_key IN (SELECT police_key FROM link_pol_changed)
           OR NOT EXISTS (SELECT 1 FROM link_police_now n WHERE n.police_key = o.police_key)""")
    con.execute("DELETE FROM link.police_person WHERE police_key IN (SELECT police_key FROM link_pol_gone) "
                "OR police_key IN (SELECT police_key FROM link_pol_changed)")
    con.execute("INSERT INTO link.police_person BY NAME SELECT * FROM link_police_now "
                "WHERE police_key IN (SELECT police_key FROM link_pol_changed)")
    n_er_changed = _n(con, "SELECT count(*) FROM link_er_changed")
    n_er_gone = _n(con, "SELECT count(*) FROM link_er_gone")
    n_pol_changed = _n(con, "SELECT count(*) FROM link_pol_changed")
    n_pol_gone = _n(con, "SELECT count(*) FROM link_pol_gone")
    n_events = _n(con, "SELECT count(*) FROM link.er_event")
    n_police = _n(con, "SELECT count(*) FROM link.police_person")

    mark("police")
    # 3. the model
    if not retrain and model_row is not None and model_row[2] > 0 and \
            abs(n_events - model_row[2]) > RETRAIN_DRIFT * model_row[2]:
        log.info("ER events %d vs %d at training: retraining the linkage model", n_events, model_row[2])
        retrain = True
    if retrain:
        model = train_model(con, "link.er_event", "link.police_person", threads)
        con.execute("DELETE FROM link.model")
        if model is not None:
            con.execute("INSERT INTO link.model (settings_fp, model_json, n_er_events, n_police) VALUES (?, ?, ?, ?)",
                        [fp, json.dumps(model), n_events, n_police])
            state.record(con, STAGE, "model", fp, run_id)
        else:
            state.forget(con, STAGE, "model")
        if not everything:  # drift retrain: every pair and casualty again
            everything = True
            con.execute("DELETE FROM link.scored_pair")
    else:
        model = json.loads(model_row[1])

    mark("model")
    if not everything and not (n_er_changed or n_er_gone or n_pol_changed or n_pol_gone):
        stats = RelinkStats("skipped", False, n_seeds, n_refolded, 0, 0, 0, 0,
                            _n(con, "SELECT count(*) FROM core.er_contact"), n_events, n_police,
                            _n(con, f"SELECT count(*) FROM link.scored_pair WHERE match_probability >= {threshold!r}"),
                            _n(con, "SELECT count(*) FROM link.pair"), steps)
        state.record(con, STAGE, "state", fp, run_id)
        return stats

    # 4. scoring
    if everything:
        er_in, pol_in = "link.er_event", "link.police_person"
        keep_filter = "true"
        n_er_rescored, n_pol_rescored = n_events, n_police
    else:
        con.execute("DELETE FROM link.scored_pair WHERE er_key IN (SELECT event_key FROM link_er_changed) "
                    "OR er_key IN (SELECT event_key FROM link_er_gone) "
                    "OR police_key IN (SELECT police_key FROM link_pol_changed) "
                    "OR police_key IN (SELECT police_key FROM link_pol_gone)")
        # the changed records plus those of the other side they can be blocked with
        # (same CPR, or injury dates at most a day apart: a superset of every blocking rule)
        con.execute("""
            CREATE OR REPLACE TEMP TABLE link_er_in AS
            SELECT e.* FROM link.er_event e WHERE e.event_key IN (SELECT event_key FROM link_er_changed)
            UNION
            SELECT e.* FROM link.er_event e JOIN (
                SELECT p.cpr_pseudonym, p.injury_date FROM link.police_person p
                WHERE p.police_key IN (SELECT police_key FROM link_pol_changed)) c
              ON e.cpr_pseudonym = c.cpr_pseudonym
              OR e.injury_date BETWEEN c.injury_date - 1 AND c.injury_date + 1""")
        con.execute("""
            CREATE OR REPLACE TEMP TABLE link_pol_in AS
            SELECT p.* FROM link.police_person p WHERE p.police_key IN (SELECT police_key FROM link_pol_changed)
            UNION
            SELECT p.* FROM link.police_person p JOIN (
                SELECT e.cpr_pseudonym, e.injury_date FROM link.er_event e
                WHERE e.event_key IN (SELECT event_key FROM link_er_changed)) c
              ON p.cpr_pseudonym = c.cpr_pseudonym
              OR p.injury_date BETWEEN c.injury_date - 1 AND c.injury_date + 1""")
        er_in, pol_in = "link_er_in", "link_pol_in"
        keep_filter = ("(er_key IN (SELECT event_key FROM link_er_changed) "
                       "OR police_key IN (SELECT police_key FROM link_pol_changed))")
        n_er_rescored, n_pol_rescored = n_er_changed, n_pol_changed
    n_scored = 0
    if model is not None:
        pairs = score_with_model(con, model, _ER_INPUT.format(src=er_in), _POLICE_INPUT.format(src=pol_in), threads)
        n_scored = pairs.num_rows
        con.register("link_scored", pairs)
        try:
            con.execute(f"INSERT INTO link.scored_pair SELECT er_key, police_key, match_probability, match_weight "
                        f"FROM link_scored WHERE match_probability >= {keep_min!r} AND {keep_filter}")
        finally:
            con.unregister("link_scored")

    mark("score")
    # 5. one-to-one matching, globally
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE link_candidate AS
        SELECT * FROM link.scored_pair WHERE match_probability >= {threshold!r} ORDER BY er_key, police_key""")
    n_candidates = _n(con, "SELECT count(*) FROM link_candidate")
    n_links = match_one_to_one(con)

    mark("match")
    # 6. the scope of the casualty rebuild
    if everything:
        con.execute("CREATE OR REPLACE TEMP TABLE link_er_event AS SELECT * FROM link.er_event")
        con.execute("CREATE OR REPLACE TEMP TABLE link_police_person AS SELECT * FROM link.police_person")
        con.execute("CREATE OR REPLACE TEMP TABLE link_casualty_drop AS SELECT casualty_id FROM core.casualty")
        con.execute("CREATE OR REPLACE TEMP TABLE link_police_reset AS "
                    "SELECT uheld_id || '|' || elementnr || '|' || personnr AS police_key FROM core.police_person")
    else:
        con.execute("""
            CREATE OR REPLACE TEMP TABLE link_pair_diff AS
            (SELECT er_key, police_key, match_probability FROM link_pair
             EXCEPT SELECT er_key, police_key, match_probability FROM link.pair)
            UNION
            (SELECT er_key, police_key, match_probability FROM link.pair
             EXCEPT SELECT er_key, police_key, match_probability FROM link_pair)""")
        affected_er = ("(SELECT event_key FROM link_er_changed UNION SELECT event_key FROM link_er_gone "
                       "UNION SELECT er_key FROM link_pair_diff)")
        affected_pol = ("(SELECT police_key FROM link_pol_changed UNION SELECT police_key FROM link_pol_gone "
                        "UNION SELECT police_key FROM link_pair_diff)")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE link_er_event AS
            SELECT * FROM link.er_event
            WHERE event_key IN {affected_er}
               OR event_key IN (SELECT er_key FROM link_pair WHERE police_key IN {affected_pol})""")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE link_police_person AS
            SELECT * FROM link.police_person
            WHERE police_key IN {affected_pol}
               OR police_key IN (SELECT police_key FROM link_pair WHERE er_key IN {affected_er})""")
        con.execute("""
            CREATE OR REPLACE TEMP TABLE link_casualty_drop AS
            SELECT er_casualty_id AS casualty_id FROM link_er_event
            UNION SELECT er_casualty_id FROM link_er_gone
            UNION SELECT casualty_id FROM link_police_person
            UNION SELECT casualty_id FROM link_pol_gone""")
        con.execute("""
            CREATE OR REPLACE TEMP TABLE link_police_reset AS
            SELECT police_key FROM link_police_person UNION SELECT police_key FROM link_pol_gone""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE link_contact_event AS
        SELECT contact_key, event_key FROM link.contact
        WHERE event_key IN (SELECT event_key FROM link_er_event)""")
    n_rebuilt = _n(con, "SELECT (SELECT count(*) FROM link_er_event) + (SELECT count(*) FROM link_police_person)")
    con.execute("DELETE FROM link.pair")
    con.execute("INSERT INTO link.pair SELECT er_key, police_key, match_probability, match_weight FROM link_pair")
    state.record(con, STAGE, "state", fp, run_id)
    mark("scope")
    return RelinkStats(
        "full" if retrain else ("relink" if everything else "incremental"), retrain, n_seeds, n_refolded,
        n_er_rescored, n_pol_rescored, n_scored, n_rebuilt, _n(con, "SELECT count(*) FROM core.er_contact"),
        n_events, n_police, n_candidates, n_links, steps)


def _fold_all(con: duckdb.DuckDBPyConnection, settings: Settings) -> int:
    """Fold every contact (a full relink); the state tables are empty."""
    prepare.build_link_contacts(con)
    prepare._assign_nocpr_person_keys(con, settings.link.return_visit_days)
    prepare.fold_events(con, settings)
    con.execute("CREATE OR REPLACE TEMP TABLE link_c_result AS SELECT contact_key, person_key FROM link_contact")
    return _store_fold(con, person_scope=None)


def _fold_around_seeds(con: duckdb.DuckDBPyConnection, settings: Settings) -> int:
    """Re-open the CPR-less components around the seeds and re-fold their persons."""
    days = int(settings.link.return_visit_days)
    # contacts an edge could join to a present seed (edges need the same sex, age, road user
    # and arrivals within `days`), and the edges touching a seed
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE link_scope AS
        WITH s AS (
            SELECT c.sex, c.age, c.road_user, c.ankomst FROM core.er_contact c
            WHERE c.sygehus || '|' || c.kontakt_id IN (SELECT contact_key FROM link_seed WHERE present))
        SELECT contact_key FROM link_seed WHERE present
        UNION
        SELECT c.sygehus || '|' || c.kontakt_id FROM core.er_contact c
        JOIN s ON c.sex = s.sex AND c.age = s.age AND c.road_user = s.road_user
         AND c.ankomst BETWEEN s.ankomst - to_days({days}) AND s.ankomst + to_days({days})""")
    prepare.build_link_contacts(con, "link_scope")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE link_n1 AS SELECT key_a AS contact_key, key_b AS other FROM ("
        + query("link_nocpr_edges").replace("ORDER BY key_a, key_b", "").strip().rstrip(";")
        .replace("$return_visit_days", str(days)).replace("$same_place_m", repr(float(prepare.SAME_PLACE_M)))
        + ") e WHERE key_a IN (SELECT contact_key FROM link_seed) OR key_b IN (SELECT contact_key FROM link_seed)")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE link_closure AS
        WITH touched AS (
            SELECT contact_key FROM link_seed UNION SELECT contact_key FROM link_n1
            UNION SELECT other FROM link_n1),
        comps AS (
            SELECT DISTINCT component FROM link.contact
            WHERE component IS NOT NULL AND contact_key IN (SELECT contact_key FROM touched))
        SELECT contact_key FROM touched
        UNION SELECT contact_key FROM link.contact WHERE component IN (SELECT component FROM comps)""")
    # the components of the closed set, as a full run would find them
    prepare.build_link_contacts(con, "link_closure")
    prepare._assign_nocpr_person_keys(con, settings.link.return_visit_days)
    con.execute("CREATE OR REPLACE TEMP TABLE link_c_result AS SELECT contact_key, person_key FROM link_contact")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE link_person AS
        SELECT person_key FROM link.contact
        WHERE contact_key IN (SELECT contact_key FROM link_closure) AND person_key IS NOT NULL
        UNION SELECT person_key FROM link_c_result WHERE person_key IS NOT NULL""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE link_fold_scope AS
        SELECT contact_key FROM link_c_result
        UNION SELECT contact_key FROM link.contact
        WHERE person_key IN (SELECT person_key FROM link_person)
          AND contact_key NOT IN (SELECT contact_key FROM link_closure)""")
    prepare.build_link_contacts(con, "link_fold_scope")
    con.execute("UPDATE link_contact AS c SET person_key = r.person_key FROM link_c_result r "
                "WHERE c.contact_key = r.contact_key")
    con.execute("UPDATE link_contact AS c SET person_key = o.person_key FROM link.contact o "
                "WHERE c.contact_key = o.contact_key "
                "AND c.contact_key NOT IN (SELECT contact_key FROM link_c_result)")
    prepare.fold_events(con, settings)
    return _store_fold(con, person_scope="link_person")


def _store_fold(con: duckdb.DuckDBPyConnection, person_scope: str | None) -> int:
    """Write the re-folded contacts and events to link.*, leaving link_er_changed (new or
    changed events) and link_er_gone (old versions replaced or vanished)."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE link_event_new AS
        SELECT e.*, p.person_key, hash(e) AS row_hash
        FROM link_er_event e
        JOIN (SELECT ce.event_key, min(c.person_key) AS person_key
              FROM link_contact_event ce JOIN link_contact c USING (contact_key)
              GROUP BY ce.event_key) p USING (event_key)""")
    old = ("SELECT * FROM link.er_event" if person_scope is None else
           f"SELECT * FROM link.er_event WHERE person_key IN (SELECT person_key FROM {person_scope}) "
           "OR event_key IN (SELECT event_key FROM link_event_new)")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE link_er_gone AS
        SELECT o.event_key, o.er_casualty_id FROM ({old}) o
        WHERE NOT EXISTS (SELECT 1 FROM link_event_new n WHERE n.event_key = o.event_key AND n.row_hash = o.row_hash)""")
    # an event whose contacts are unchanged but not yet linked (casualty_id NULL) is re-built too
    con.execute("""
        CREATE OR REPLACE TEMP TABLE link_er_changed AS
        SELECT n.event_key FROM link_event_new n
        WHERE NOT EXISTS (SELECT 1 FROM link.er_event o WHERE o.event_key = n.event_key AND o.row_hash = n.row_hash)
           OR n.event_key IN (SELECT ce.event_key FROM link_contact_event ce
                              JOIN link_contact_now c USING (contact_key) WHERE c.unlinked)""")
    con.execute(f"DELETE FROM link.er_event WHERE event_key IN (SELECT event_key FROM ({old}))")
    con.execute("INSERT INTO link.er_event BY NAME SELECT * FROM link_event_new")
    con.execute("DELETE FROM link.contact WHERE contact_key IN (SELECT contact_key FROM link_seed) "
                "OR contact_key IN (SELECT contact_key FROM link_c_result)")
    con.execute("""
        INSERT INTO link.contact (contact_key, row_hash, person_key, component, event_key)
        SELECT r.contact_key, n.row_hash, r.person_key, comp.component, ce.event_key
        FROM link_c_result r
        JOIN link_contact_now n USING (contact_key)
        LEFT JOIN link_nocpr_component comp USING (contact_key)
        LEFT JOIN link_contact_event ce USING (contact_key)""")
    con.execute("""
        UPDATE link.contact AS o SET event_key = ce.event_key FROM link_contact_event ce
        WHERE o.contact_key = ce.contact_key AND o.event_key IS DISTINCT FROM ce.event_key""")
    return _n(con, "SELECT count(*) FROM link_contact")
