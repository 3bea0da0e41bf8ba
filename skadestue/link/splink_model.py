"""Scoring ER events against injured police persons with Splink 5, and one-to-one matching.

Splink runs in its own in-memory DuckDB connection on Arrow copies of the two inputs, so
its intermediate ``__splink__*`` tables never reach the warehouse. The m probabilities are
the domain priors (``priors.py``) or a refitted model (``model.py``); the u probabilities are
estimated per run by random sampling.
"""

from __future__ import annotations

import copy
import logging
import os

import duckdb
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
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
FROM {src} ORDER BY unique_id
"""
_POLICE_INPUT = """
SELECT police_key AS unique_id, cpr_pseudonym, injury_date,
       injury_date + 1 AS injury_date_next,
       date_diff('day', DATE '1970-01-01', injury_date) AS injury_day, age, sex,
       nullif(road_user, 'unknown') AS road_user, kommunekode, x, y
FROM {src} ORDER BY unique_id
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
    er = _input_table(con, _ER_INPUT.format(src="link_er_event"))
    police = _input_table(con, _POLICE_INPUT.format(src="link_police_person"))
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


def train_model(con: duckdb.DuckDBPyConnection, er_src: str, police_src: str, threads: int = 2) -> dict | None:
    """The full Splink model for this data: priors or trained m (model.json), lambda and the
    date levels' u from the data's size and span, u of the other levels by random sampling
    (U_SAMPLE_PAIRS, seeded). ``er_src``/``police_src`` name relations shaped like
    link_er_event / link_police_person. None when a side is empty (nothing to score)."""
    er = _input_table(con, _ER_INPUT.format(src=er_src))
    police = _input_table(con, _POLICE_INPUT.format(src=police_src))
    if er.num_rows == 0 or police.num_rows == 0:
        return None
    span_days = con.execute(
        f"SELECT date_diff('day', min(d), max(d)) + 1 FROM (SELECT injury_date AS d FROM {er_src} "
        f"UNION ALL SELECT injury_date FROM {police_src})"
    ).fetchone()[0]
    settings = apply_trained_m(splink_settings(er.num_rows, int(span_days)), trained_m())
    log.info("Splink model: %d ER events x %d police persons, date span %d days, prior %.1f bits",
             er.num_rows, police.num_rows, span_days, prior_log2_odds(er.num_rows))
    splink_con = duckdb.connect(":memory:")
    try:
        splink_con.execute(f"SET threads={max(int(threads), 1)}")
        db_api = DuckDBAPI(connection=splink_con)
        linker = Linker([db_api.register(er, dataset_display_name=ER_DATASET),
                         db_api.register(police, dataset_display_name=POLICE_DATASET)], settings, log_level=None)
        if U_SAMPLE_PAIRS > 0:
            _quiet_splink()
            linker.training.estimate_u_using_random_sampling(max_pairs=U_SAMPLE_PAIRS, seed=U_SAMPLE_SEED)
        return linker.misc.save_model_to_json(None)
    finally:
        splink_con.close()


def score_with_model(con: duckdb.DuckDBPyConnection, model: dict, er_sql: str, police_sql: str,
                     threads: int = 2) -> pa.Table:
    """Score the blocked pairs of two Splink inputs with a stored model (no training): Arrow
    (er_key, police_key, match_probability, match_weight). A pair's score depends only on its
    two records and the model, so scoring a subset gives the same numbers as scoring all."""
    er = _input_table(con, er_sql)
    police = _input_table(con, police_sql)
    empty = pa.table({"er_key": pa.array([], pa.string()), "police_key": pa.array([], pa.string()),
                      "match_probability": pa.array([], pa.float64()), "match_weight": pa.array([], pa.float64())})
    if er.num_rows == 0 or police.num_rows == 0:
        return empty
    splink_con = duckdb.connect(":memory:")
    try:
        splink_con.execute(f"SET threads={max(int(threads), 1)}")
        db_api = DuckDBAPI(connection=splink_con)
        linker = Linker([db_api.register(er, dataset_display_name=ER_DATASET),
                         db_api.register(police, dataset_display_name=POLICE_DATASET)],
                        copy.deepcopy(model), log_level=None)
        pairs = linker.inference.predict(warning_mode="never").as_pyarrow_table()
    finally:
        splink_con.close()
    if pairs.num_rows == 0:
        return empty
    left_er = pa.compute.equal(pairs.column("source_dataset_l"), ER_DATASET)
    return pa.table({
        "er_key": pa.compute.if_else(left_er, pairs.column("unique_id_l"), pairs.column("unique_id_r")),
        "police_key": pa.compute.if_else(left_er, pairs.column("unique_id_r"), pairs.column("unique_id_l")),
        "match_probability": pairs.column("match_probability").cast(pa.float64()),
        "match_weight": pairs.column("match_weight").cast(pa.float64()),
    })


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
