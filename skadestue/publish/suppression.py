"""Disclosure control for the lokalråd tier (outputs.md §2).

In every row that includes emergency-ward-only casualties (``n_er_only > 0``) each count
with a value from 1 to k-1 is suppressed: set to NULL, the row flagged ``suppressed`` and
the columns named in ``suppressed_columns``. Counts that add up (severity, road user and
source counts each sum to ``n_casualties``) get complementary suppression, so a suppressed
count cannot be recovered by subtraction. Derived values that would give a suppressed count
back are suppressed with it: ``score`` (from the severity counts), ``obs_exp_ratio``,
``poisson_p``, ``eb_accidents``, ``excess_accidents``, ``excess_p`` and ``excess_q`` (from
``n_accidents`` and the published ``expected_accidents``) and ``excess_score`` (both). Rows built from police-known casualties only keep
their counts: those are the police's own registrations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from skadestue.publish.layers import ROAD_USER_COUNTS, SEVERITY_COUNTS, SOURCE_COUNTS

#: Groups of counts that sum to n_casualties.
ADDITIVE_GROUPS = (SEVERITY_COUNTS, ROAD_USER_COUNTS, SOURCE_COUNTS)
#: Derived column -> the counts it reveals.
DERIVED = {
    "score": SEVERITY_COUNTS,
    "obs_exp_ratio": ("n_accidents",),
    "poisson_p": ("n_accidents",),
    "eb_accidents": ("n_accidents",),
    "excess_accidents": ("n_accidents",),
    "excess_p": ("n_accidents",),
    "excess_q": ("n_accidents",),
    "excess_score": ("n_accidents", *SEVERITY_COUNTS),
}


def primary_mask(values: np.ndarray, er_rows: np.ndarray, k: int) -> np.ndarray:
    """True where an ER-derived row shows a count from 1 to k-1."""
    return er_rows[:, None] & (values >= 1) & (values <= k - 1)


def complementary_mask(values: np.ndarray, mask: np.ndarray, columns: list[str]) -> np.ndarray:
    """Extend ``mask`` until no additive group (total + members) has exactly one hidden cell.

    The second cell hidden is the smallest non-zero shown member, else the total.
    """
    mask = mask.copy()
    idx = {c: i for i, c in enumerate(columns)}
    if "n_casualties" not in idx:
        return mask
    total = idx["n_casualties"]
    groups = [[idx[c] for c in g if c in idx] for g in ADDITIVE_GROUPS]
    for _ in range(len(columns) + 1):
        changed = False
        for members in groups:
            if not members:
                continue
            cells = [total, *members]
            lonely = mask[:, cells].sum(axis=1) == 1
            if not lonely.any():
                continue
            member_vals = values[:, members].astype(float)
            candidate = np.where(mask[:, members] | (member_vals == 0), np.inf, member_vals)
            best = candidate.argmin(axis=1)
            has_member = np.isfinite(candidate.min(axis=1))
            rows = np.flatnonzero(lonely & has_member)
            mask[rows, np.asarray(members)[best[rows]]] = True
            rows_total = np.flatnonzero(lonely & ~has_member & ~mask[:, total])
            mask[rows_total, total] = True
            changed = changed or len(rows) > 0 or len(rows_total) > 0
        if not changed:
            break
    return mask


def suppress_counts(frame: pd.DataFrame, count_columns: tuple[str, ...], k: int) -> pd.DataFrame:
    """A copy of ``frame`` with small ER-derived counts suppressed and flagged."""
    if k < 1:
        raise ValueError(f"publish.suppression_k must be at least 1, got {k}")
    out = frame.copy()
    columns = [c for c in count_columns if c in out.columns]
    values = out[columns].to_numpy(dtype=np.int64)
    er_rows = out["n_er_only"].to_numpy(dtype=np.int64) > 0
    mask = complementary_mask(values, primary_mask(values, er_rows, k), columns)
    hidden = pd.DataFrame(mask, columns=columns, index=out.index)
    for derived, sources in DERIVED.items():
        if derived in out.columns:
            hidden[derived] = hidden[[c for c in sources if c in columns]].any(axis=1)
    for col in columns:
        out[col] = out[col].astype("Int64").mask(hidden[col])
    for derived in DERIVED:
        if derived in hidden.columns:
            out[derived] = out[derived].astype(float).mask(hidden[derived])
    out["suppressed"] = hidden.any(axis=1)
    text = pd.Series("", index=out.index, dtype=object)
    for col in hidden.columns:
        text = text + np.where(hidden[col].to_numpy(), col + ",", "")
    out["suppressed_columns"] = text.str.rstrip(",").replace("", None)
    return out
