"""Score the linkage against labelled data (the demo generator's truth).

ER<->police links are scored as distinct (true ER injury event, police person) pairs, split
by "CPR on both sides" and "no CPR on at least one side" (the stratum of a pair is read from
what the linker saw in core); return-visit dedup is scored pairwise over ER contacts
(same casualty_id vs same true event). Precision comes first: a false link hides a casualty
from the dark figure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import pandas as pd

from skadestue.db import query

_TRUTH_COLUMNS = ["sygehus", "kontakt_id", "event_id", "police_uheld_id", "police_elementnr", "police_personnr"]


@dataclass(frozen=True)
class Score:
    """Pair counts and the metrics derived from them."""

    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f1": round(self.f1, 4)}


@dataclass(frozen=True)
class LinkEvaluation:
    """Link scores by CPR stratum, and the return-visit dedup score."""

    links_cpr_both: Score
    links_no_cpr: Score
    links_all: Score
    dedup: Score

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {"links_cpr_both": self.links_cpr_both.as_dict(), "links_no_cpr": self.links_no_cpr.as_dict(),
                "links_all": self.links_all.as_dict(), "dedup": self.dedup.as_dict()}


def read_er_truth(truth_dir: Path) -> pd.DataFrame:
    """truth/er_truth.parquet, one row per delivered contact key (a correction is one key)."""
    er = pd.read_parquet(Path(truth_dir) / "er_truth.parquet", columns=_TRUTH_COLUMNS)
    return er.drop_duplicates(["sygehus", "kontakt_id"], keep="last").reset_index(drop=True)


def _score(pairs: pd.DataFrame) -> Score:
    """TP/FP/FN from a frame of pairs with boolean ``predicted`` and ``true_link``."""
    tp = int((pairs["predicted"] & pairs["true_link"]).sum())
    fp = int((pairs["predicted"] & ~pairs["true_link"]).sum())
    fn = int((~pairs["predicted"] & pairs["true_link"]).sum())
    return Score(tp, fp, fn)


def link_pairs(con: duckdb.DuckDBPyConnection, er_truth: pd.DataFrame) -> pd.DataFrame:
    """Predicted and true ER-event x police-person pairs (see link_eval_pairs.sql)."""
    con.register("eval_er_truth", er_truth)
    try:
        return con.execute(query("link_eval_pairs")).df()
    finally:
        con.unregister("eval_er_truth")


def dedup_score(con: duckdb.DuckDBPyConnection, er_truth: pd.DataFrame) -> Score:
    """Pairwise score of folding ER contacts into casualties (return visits, transfers)."""
    con.register("eval_er_truth", er_truth)
    try:
        tp, predicted, true = con.execute(query("link_eval_dedup")).fetchone()
    finally:
        con.unregister("eval_er_truth")
    return Score(int(tp), int(predicted) - int(tp), int(true) - int(tp))


def evaluate_linkage(con: duckdb.DuckDBPyConnection, truth_dir: Path) -> LinkEvaluation:
    """Score core.er_contact / core.police_person casualty ids against ``truth_dir``."""
    er_truth = read_er_truth(truth_dir)
    pairs = link_pairs(con, er_truth)
    cpr = pairs["cpr_both"].fillna(False).astype(bool)
    return LinkEvaluation(
        links_cpr_both=_score(pairs[cpr]),
        links_no_cpr=_score(pairs[~cpr]),
        links_all=_score(pairs),
        dedup=dedup_score(con, er_truth),
    )
