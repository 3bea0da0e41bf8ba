"""The linkage model as data: Fellegi-Sunter m and u probabilities set from domain knowledge.

The model is NOT trained by EM at every run: a night's data is small and EM on it is
unstable. The m probabilities (how often a field agrees in a TRUE police/ER pair) are these
priors unless a refitted model (model.py, MODEL_JSON) names a level; the u probabilities (how
often it agrees in a random, non-matching pair) below are starting values that each run
replaces by random sampling of its own data (splink_model.U_SAMPLE_PAIRS):

- cpr_pseudonym: the police record the CPR for some injured persons; when both have it the
  same person agrees ~99% of the time (typos). Two different people share it essentially
  never, but one person can have two accidents, so u is set at 1e-5 rather than ~0 and the
  date comparison carries the "same accident" evidence.
- injury_date: the ward's date is the date of the accident time, else of the arrival, so
  true pairs are mostly the same day (0.85), the next day after midnight (0.10), rarely 2-3
  or 4-7 days apart (late first visit). Two accidents of one person months apart must not
  link, so the "else" level has m = 1e-8 (it must outweigh an agreeing CPR and age). The u
  of each level is derived per run from the date span of the data (uniform days):
  u = days in the level / span (at least 30 days). Dates are compared as day numbers
  (``injury_day``, days since 1970-01-01, computed before Splink) so that every comparison
  and blocking rule is plain SQL that means the same on Splink's DuckDB and Spark backends.
- age: hospital age is CPR-derived, police age is typed: exact 0.85, +-1 0.10, +-3 0.03.
  Ages in the data spread over ~60 years: u = 0.025 / 0.05 / 0.10.
- sex: m 0.99 (typing errors), u 0.5.
- road_user: agreement in true pairs is ~94% (Kjærgaard & Lauritsen, Funen 2014-2021);
  "related" modes (bike/e-bike, moped/motorcycle, car/van/truck/bus) take most of the rest.
- place: ONE comparison for distance and kommunekode, because they are not independent
  (two points 100 m apart are in the same kommune). Distance in metres on EPSG:25832 when
  both are placed, else the kommunekode. Distance u is deliberately high, 1e-2 / 2e-2 / 5e-2
  (a random pair is < 100 m apart far less often than 1%): persons of one multi-casualty
  accident share date and place, so date and place are not independent evidence of "same
  PERSON"; sex (m 0.01 for a mismatch) and age must decide between co-victims.
- probability_two_random_records_match: about 60% of injured police persons are seen at one
  of the region's wards, uniformly over the ER events: lambda = 0.6 / n_er_events.
"""

from __future__ import annotations

import math
from typing import Any

#: Share of injured police persons expected to have an ER event in the data.
EXPECTED_POLICE_SEEN_IN_ER = 0.6

#: Road-user pairs that are "related" (the ward and the police classify differently).
RELATED_ROAD_USERS = (
    ("cyclist", "e_bike"),
    ("moped", "motorcycle"),
    ("moped", "cyclist"),
    ("moped", "e_bike"),
    ("car", "van"),
    ("van", "truck"),
    ("truck", "bus"),
    ("car", "other"),
)

#: Date-difference levels: (label, min and max absolute difference in days, m).
DATE_LEVELS: tuple[tuple[str, int, int, float], ...] = (
    ("same day", 0, 0, 0.85),
    ("1 day", 1, 1, 0.10),
    ("2-3 days", 2, 3, 0.03),
    ("4-7 days", 4, 7, 0.01),
)
DATE_ELSE_M = 1e-8

#: Blocking rules: only pairs caught by one of these are scored (all equi-joins, tight).
BLOCKING_RULES: tuple[str, ...] = (
    "l.cpr_pseudonym = r.cpr_pseudonym",
    "l.injury_date = r.injury_date AND l.sex = r.sex",
    "l.injury_date = r.injury_date AND l.kommunekode = r.kommunekode",
    "l.injury_date_next = r.injury_date AND l.sex = r.sex",
    "l.injury_date = r.injury_date_next AND l.sex = r.sex",
)

#: Columns both inputs carry (the Splink input schema). injury_day = days since 1970-01-01.
INPUT_COLUMNS: tuple[str, ...] = (
    "unique_id", "cpr_pseudonym", "injury_date", "injury_date_next", "injury_day", "age", "sex",
    "road_user", "kommunekode", "x", "y",
)


def _level(sql: str, label: str, m: float | None = None, u: float | None = None,
           null: bool = False) -> dict[str, Any]:
    """One Splink comparison level as a settings dict."""
    level: dict[str, Any] = {"sql_condition": sql, "label_for_charts": label}
    if null:
        level["is_null_level"] = True
    else:
        level["m_probability"] = m
        level["u_probability"] = u
    return level


def _cpr() -> dict[str, Any]:
    return {
        "output_column_name": "cpr_pseudonym",
        "comparison_levels": [
            _level("cpr_pseudonym_l IS NULL OR cpr_pseudonym_r IS NULL", "CPR missing", null=True),
            _level("cpr_pseudonym_l = cpr_pseudonym_r", "same CPR", 0.99, 1e-5),
            _level("ELSE", "different CPR", 0.01, 1 - 1e-5),
        ],
    }


def _date(span_days: int) -> dict[str, Any]:
    span = max(int(span_days), 30)
    diff = "abs(injury_day_l - injury_day_r)"  # day numbers: no dialect-specific date function
    levels = [_level("injury_day_l IS NULL OR injury_day_r IS NULL", "date missing", null=True)]
    u_used = 0.0
    for label, lo, hi, m in DATE_LEVELS:
        days = (hi - lo + 1) * (1 if lo == 0 else 2)  # both directions
        u = min(days / span, 0.5)
        u_used += u
        levels.append(_level(f"{diff} BETWEEN {lo} AND {hi}", label, m, u))
    levels.append(_level("ELSE", "more than 7 days", DATE_ELSE_M, max(1 - u_used, 0.01)))
    return {"output_column_name": "injury_date", "comparison_levels": levels}


def _age() -> dict[str, Any]:
    diff = "abs(age_l - age_r)"
    return {
        "output_column_name": "age",
        "comparison_levels": [
            _level("age_l IS NULL OR age_r IS NULL", "age missing", null=True),
            _level("age_l = age_r", "same age", 0.85, 0.025),
            _level(f"{diff} <= 1", "age +-1", 0.10, 0.05),
            _level(f"{diff} <= 3", "age +-3", 0.03, 0.10),
            _level("ELSE", "age differs more", 0.01, 0.825),
        ],
    }


def _sex() -> dict[str, Any]:
    return {
        "output_column_name": "sex",
        "comparison_levels": [
            _level("sex_l IS NULL OR sex_r IS NULL", "sex missing", null=True),
            _level("sex_l = sex_r", "same sex", 0.99, 0.5),
            _level("ELSE", "different sex", 0.01, 0.5),
        ],
    }


def _road_user() -> dict[str, Any]:
    pairs = " OR ".join(
        f"(road_user_l = '{a}' AND road_user_r = '{b}') OR (road_user_l = '{b}' AND road_user_r = '{a}')"
        for a, b in RELATED_ROAD_USERS
    )
    return {
        "output_column_name": "road_user",
        "comparison_levels": [
            _level("road_user_l IS NULL OR road_user_r IS NULL", "road user unknown", null=True),
            _level("road_user_l = road_user_r", "same road user", 0.94, 0.25),
            _level(pairs, "related road user", 0.045, 0.10),
            _level("ELSE", "different road user", 0.015, 0.65),
        ],
    }


def _place() -> dict[str, Any]:
    both = "x_l IS NOT NULL AND y_l IS NOT NULL AND x_r IS NOT NULL AND y_r IS NOT NULL"
    dist = "sqrt(power(x_l - x_r, 2) + power(y_l - y_r, 2))"
    return {
        "output_column_name": "place",
        "comparison_levels": [
            _level(f"NOT ({both}) AND (kommunekode_l IS NULL OR kommunekode_r IS NULL)",
                   "place unknown", null=True),
            _level(f"{both} AND {dist} < 100", "< 100 m", 0.55, 1e-2),
            _level(f"{both} AND {dist} < 500", "< 500 m", 0.22, 2e-2),
            _level(f"{both} AND {dist} < 2000", "< 2 km", 0.13, 5e-2),
            _level(both, ">= 2 km", 0.10, 0.92),
            _level("kommunekode_l = kommunekode_r", "same kommune (unplaced)", 0.93, 0.15),
            _level("ELSE", "different kommune (unplaced)", 0.07, 0.85),
        ],
    }


def splink_settings(n_er_events: int, span_days: int) -> dict[str, Any]:
    """The Splink 5 settings dict for linking ER events to injured police persons."""
    lam = min(EXPECTED_POLICE_SEEN_IN_ER / max(n_er_events, 1), 0.5)
    return {
        "link_type": "link_only",
        "unique_id_column_name": "unique_id",
        "probability_two_random_records_match": lam,
        "blocking_rules_to_generate_predictions": list(BLOCKING_RULES),
        "comparisons": [_cpr(), _date(span_days), _age(), _sex(), _road_user(), _place()],
        "retain_matching_columns": False,
        "retain_intermediate_calculation_columns": False,
    }


def prior_log2_odds(n_er_events: int) -> float:
    """The prior match weight (log2 odds) used for a run of this size; for logs and docs."""
    lam = min(EXPECTED_POLICE_SEEN_IN_ER / max(n_er_events, 1), 0.5)
    return math.log2(lam / (1 - lam))
