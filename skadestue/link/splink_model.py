"""Scoring ER events against injured police persons with Splink 5, and one-to-one matching.

Splink runs in its own in-memory DuckDB connection on Arrow copies of the two inputs, so
its intermediate ``__splink__*`` tables never reach the warehouse. The m probabilities are
the domain priors (``priors.py``) or a refitted model (``model.py``); the u probabilities are
estimated per run by random sampling.
"""

from __future__ import annotations

import logging
import os

import duckdb
import pyarrow as pa
from splink import DuckDBAPI, Linker

from skadestue.db import query
from skadestue.link.model import apply_trained_m, trained_m
from skadestue.link.priors import INPUT_COLUMNS, prior_log2_odds, splink_settings

log = logging.getLogger(__name__)

ER_DATASET = "er_event"
POLICE_DATASET = "police_person"
#: Pairs scored at least this (and below REVIEW_MAX_PROBABILITY) go to quality.link_review.
REVIEW_MIN_PROBABILITY = 0.5
REVIEW_MAX_PROBABILITY = 0.99
#: Random ER x police pairs sampled per run to estimate the u probabilities (0 = priors only).
U_SAMPLE_PAIRS = int(os.environ.get("SKADESTUE_LINK_U_PAIRS", "1000000"))
U_SAMPLE_SEED = 20240601

#: An ER point of quality C (a town, a long street: often km off) is no evidence of distance;
#: such events are compared on their kommune instead.
_ER_INPUT = """
SELECT event_key AS unique_id, cpr_pseudonym, injury_date,
       injury_date + 1 AS injury_date_next,
       date_diff('day', DATE '1970-01-01', injury_date) AS injury_day, age, sex,
       nullif(road_user, 'unknown') AS road_user, kommunekode,
       CASE WHEN geocode_quality <> 'C' THEN x END AS x,
       CASE WHEN geocode_quality <> 'C' THEN y END AS y
FROM link_er_event ORDER BY unique_id
"""
_POLICE_INPUT = """
SELECT police_key AS unique_id, cpr_pseudonym, injury_date,
       injury_date + 1 AS injury_date_next,
       date_diff('day', DATE '1970-01-01', injury_date) AS injury_day, age, sex,
       nullif(road_user, 'unknown') AS road_user, kommunekode, x, y
FROM link_police_person ORDER BY unique_id
"""


def _input_table(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """One Splink input as Arrow, with the columns in ``INPUT_COLUMNS`` order."""
    return con.execute(sql).to_arrow_table().select(list(INPUT_COLUMNS))


def score_pairs(con: duckdb.DuckDBPyConnection, match_threshold: float, threads: int = 2,
                review_min: float = REVIEW_MIN_PROBABILITY) -> int:
    """Score blocked ER-event x police-person pairs; keep those >= ``match_threshold`` in the
    temp table ``link_candidate(er_key, police_key, match_probability, match_weight)`` and
    those >= min(review_min, threshold) in ``link_scored_pair`` (for clerical review).

    Returns the number of candidate pairs kept.
    """
    er = _input_table(con, _ER_INPUT)
    police = _input_table(con, _POLICE_INPUT)
    for table in ("link_candidate", "link_scored_pair"):
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} (er_key VARCHAR, police_key VARCHAR, "
            "match_probability DOUBLE, match_weight DOUBLE)"
        )
    if er.num_rows == 0 or police.num_rows == 0:
        return 0
    span_days = con.execute(
        "SELECT date_diff('day', min(d), max(d)) + 1 FROM ("
        "SELECT injury_date AS d FROM link_er_event UNION ALL "
        "SELECT injury_date FROM link_police_person)"
    ).fetchone()[0]
    settings = apply_trained_m(splink_settings(er.num_rows, int(span_days)), trained_m())
    log.info("Splink: %d ER events x %d police persons, date span %d days, prior %.1f bits",
             er.num_rows, police.num_rows, span_days, prior_log2_odds(er.num_rows))
    pairs = _predict(er, police, settings, threads)
    con.register("link_scored", pairs)
    try:
        con.execute(
            "INSERT INTO link_scored_pair "
            "SELECT CASE WHEN source_dataset_l = ? THEN unique_id_l ELSE unique_id_r END, "
            "       CASE WHEN source_dataset_l = ? THEN unique_id_r ELSE unique_id_l END, "
            "       match_probability, match_weight "
            "FROM link_scored WHERE match_probability >= ? ORDER BY 1, 2",
            [ER_DATASET, ER_DATASET, min(float(review_min), float(match_threshold))],
        )
        con.execute(
            "INSERT INTO link_candidate SELECT * FROM link_scored_pair WHERE match_probability >= ? "
            "ORDER BY er_key, police_key",
            [float(match_threshold)],
        )
    finally:
        con.unregister("link_scored")
    n = int(con.execute("SELECT count(*) FROM link_candidate").fetchone()[0])
    log.info("Splink scored %d pairs, %d at or above %.2f", pairs.num_rows, n, match_threshold)
    return n


def _predict(er: pa.Table, police: pa.Table, settings: dict, threads: int) -> pa.Table:
    """Run Splink's predict on a private in-memory DuckDB; every scored pair as Arrow."""
    splink_con = duckdb.connect(":memory:")
    try:
        splink_con.execute(f"SET threads={max(int(threads), 1)}")
        return predict_pairs(DuckDBAPI(connection=splink_con), er, police, settings).as_pyarrow_table().select(
            ["source_dataset_l", "unique_id_l", "source_dataset_r", "unique_id_r",
             "match_probability", "match_weight"]
        )
    finally:
        splink_con.close()


def predict_pairs(db_api, er, police, settings: dict):
    """Score ER events against police persons on any Splink backend; Splink's predictions.

    ``db_api`` is a Splink database API (``DuckDBAPI``, ``SparkAPI``, ...), ``er``/``police``
    tables that backend can register (Arrow or pandas for DuckDB; pandas or Spark DataFrames
    for Spark) with the columns ``INPUT_COLUMNS``; ``settings`` from ``priors.splink_settings``
    (plain SQL, the same on every backend). With U_SAMPLE_PAIRS > 0 the u probabilities are
    first estimated from random ER x police pairs of this data (seeded), so place, kommune,
    age etc. carry the right weight at any scale (a region vs the whole country); the m
    probabilities stay the domain priors (or the refitted model's)."""
    sdf_er = db_api.register(er, dataset_display_name=ER_DATASET)
    sdf_police = db_api.register(police, dataset_display_name=POLICE_DATASET)
    linker = Linker([sdf_er, sdf_police], settings, log_level=None)
    if U_SAMPLE_PAIRS > 0:
        _quiet_splink()
        linker.training.estimate_u_using_random_sampling(max_pairs=U_SAMPLE_PAIRS, seed=U_SAMPLE_SEED)
    return linker.inference.predict(warning_mode="never")


def match_one_to_one(con: duckdb.DuckDBPyConnection) -> int:
    """Greedy one-to-one matching of ``link_candidate`` into ``link_pair``: each police
    person links to at most one ER event and vice versa, the highest weight wins."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE link_pair (er_key VARCHAR, police_key VARCHAR, "
        "match_probability DOUBLE, match_weight DOUBLE)"
    )
    sql = query("link_one_to_one_round")
    total = 0
    while True:
        added = con.execute(sql).fetchone()[0]
        if not added:
            break
        total += int(added)
    log.info("one-to-one matching kept %d links", total)
    return total


def build_review_list(con: duckdb.DuckDBPyConnection, match_threshold: float,
                      review_min: float = REVIEW_MIN_PROBABILITY,
                      review_max: float = REVIEW_MAX_PROBABILITY) -> int:
    """Rebuild quality.link_review: pairs near the threshold (linked or not) and pairs above
    it that lost a one-to-one conflict, with the compared values a clerk needs."""
    sql = (query("link_review").replace("$review_min", repr(float(review_min)))
           .replace("$review_max", repr(float(review_max))).replace("$threshold", repr(float(match_threshold))))
    con.execute(sql)
    n = int(con.execute("SELECT count(*) FROM quality.link_review").fetchone()[0])
    log.info("%d pairs listed for clerical review", n)
    return n


def _quiet_splink() -> None:
    """Splink's training logs every level at INFO; keep the run log readable."""
    logging.getLogger("splink").setLevel(logging.ERROR)
