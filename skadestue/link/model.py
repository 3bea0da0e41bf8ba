"""The trained linkage model: refit on demand, saved as JSON in the repo, loaded every night.

What is trained and what is not, and why:
- m probabilities (how often a level occurs in TRUE pairs) by Splink's EM, in two sessions
  so that every comparison is trained once while it is not blocked on: pairs blocked on the
  same injury date and sex (trains CPR, age, road user, place) and pairs blocked on the same
  CPR pseudonym (trains date, age, sex, road user, place). The date's "more than 7 days"
  level is pinned to the prior (1e-8): EM on same-CPR pairs would learn that one person's
  two accidents months apart are "matches" and then link them.
- u probabilities are NOT taken from the file: they are estimated every run by random
  sampling of that run's data (splink_model.U_SAMPLE_PAIRS), because they depend on the data's
  size and spread (a region vs the whole country); likewise the prior match probability.
The nightly run uses the m values of MODEL_JSON for every level it names (by comparison and
label) and the domain priors (priors.py) for the rest.

    python -m skadestue.link.model WAREHOUSE.duckdb [--out skadestue/link/model.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
from pathlib import Path
from typing import Any

import duckdb
from splink import DuckDBAPI, Linker

from skadestue.config import Settings
from skadestue.link.priors import DATE_ELSE_M, splink_settings

log = logging.getLogger(__name__)

MODEL_JSON = Path(__file__).with_name("model.json")
#: Trained m values are floored here: a level EM never saw in its sample (m = 0) would
#: otherwise forbid a link outright (e.g. a true pair whose road user was mistyped).
M_FLOOR = 0.005
#: EM sessions (blocking rules).
EM_BLOCKS = (
    "l.injury_date = r.injury_date AND l.sex = r.sex",
    "l.cpr_pseudonym = r.cpr_pseudonym",
)


def trained_m(path: Path = MODEL_JSON) -> dict[tuple[str, str], float]:
    """(comparison, level label) -> trained m from a saved model; empty when there is none."""
    if not Path(path).exists():
        return {}
    model = json.loads(Path(path).read_text(encoding="utf-8"))
    out: dict[tuple[str, str], float] = {}
    for comp in model.get("comparisons", []):
        for level in comp.get("comparison_levels", []):
            m = level.get("m_probability")
            if m is not None and not level.get("is_null_level"):
                out[(comp["output_column_name"], level["label_for_charts"])] = float(m)
    return out


def apply_trained_m(settings: dict[str, Any], m: dict[tuple[str, str], float]) -> dict[str, Any]:
    """A copy of a Splink settings dict with the trained m values put in (the date's
    'more than 7 days' level always keeps the prior)."""
    out = copy.deepcopy(settings)
    for comp in out["comparisons"]:
        for level in comp["comparison_levels"]:
            key = (comp["output_column_name"], level.get("label_for_charts"))
            if key in m and not level.get("is_null_level"):
                level["m_probability"] = max(m[key], M_FLOOR)
            if key == ("injury_date", "more than 7 days"):
                level["m_probability"] = DATE_ELSE_M
    return out


def fit_model(con: duckdb.DuckDBPyConnection, settings: Settings, out: Path = MODEL_JSON,
              u_pairs: float = 1e7) -> dict[str, Any]:
    """Fold ER events and collect injured police persons from the warehouse's core (as the
    nightly run does), train m by EM (u by random sampling first, which EM needs), pin the
    guard level, and save the model JSON to ``out``. Returns the saved model."""
    from skadestue.link.prepare import build_police_persons, fold_er_events
    from skadestue.link.splink_model import _ER_INPUT, _POLICE_INPUT, ER_DATASET, POLICE_DATASET, _input_table

    fold_er_events(con, settings)
    build_police_persons(con)
    er, police = _input_table(con, _ER_INPUT.format(src="link_er_event")), _input_table(con, _POLICE_INPUT.format(src="link_police_person"))
    if er.num_rows == 0 or police.num_rows == 0:
        raise ValueError("cannot fit the linkage model: no ER events or no injured police persons in core")
    span = con.execute("SELECT date_diff('day', min(injury_date), max(injury_date)) + 1 FROM link_er_event").fetchone()[0]
    splink_con = duckdb.connect(":memory:")
    try:
        db_api = DuckDBAPI(connection=splink_con)
        linker = Linker([db_api.register(er, dataset_display_name=ER_DATASET),
                         db_api.register(police, dataset_display_name=POLICE_DATASET)],
                        splink_settings(er.num_rows, int(span)), log_level=None)
        linker.training.estimate_u_using_random_sampling(max_pairs=u_pairs, seed=1)
        for rule in EM_BLOCKS:
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
        model = linker.misc.save_model_to_json(None)
    finally:
        splink_con.close()
        for name in ("link_contact", "link_contact_event", "link_er_event", "link_police_person"):
            con.execute(f"DROP TABLE IF EXISTS {name}")
    model = apply_trained_m(model, {})  # pin the guard level
    Path(out).write_text(json.dumps(model, indent=2, default=str) + "\n", encoding="utf-8")
    log.info("linkage model (%d ER events, %d police persons) saved to %s", er.num_rows, police.num_rows, out)
    return model


def main(argv: list[str] | None = None) -> None:
    """Refit the model on a warehouse: ``python -m skadestue.link.model WAREHOUSE``."""
    ap = argparse.ArgumentParser(description="Refit the ER<->police linkage model (m by EM) and save it as JSON.")
    ap.add_argument("warehouse", type=Path)
    ap.add_argument("--out", type=Path, default=MODEL_JSON)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    from skadestue.db import connect

    con = connect(str(args.warehouse), read_only=False)
    try:
        fit_model(con, Settings(), args.out)
    finally:
        con.close()


if __name__ == "__main__":
    main()
