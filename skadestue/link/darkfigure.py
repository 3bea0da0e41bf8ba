"""The dark figure (mørketal): how many traffic casualties neither register sees, estimated
by two-source capture-recapture on the linked casualties (domain.md §4).

Per stratum, with n1 casualties seen by an ER, n2 known to the police and m seen by both,
the Chapman estimator of the true number is

    N = (n1 + 1)(n2 + 1) / (m + 1) - 1,
    Var = (n1 + 1)(n2 + 1)(n1 - m)(n2 - m) / ((m + 1)^2 (m + 2)),

with Chao's log-normal 95 % interval for the unseen f0 = N - observed (so the interval never
goes below what was observed). Assumptions, stated in the published table's documentation:
- the two sources are independent within a stratum. In reality a casualty the police know
  is MORE likely to reach an ER (serious accidents), a positive dependence that makes N too
  small: read the estimate as a lower bound. Stratifying by road user x severity x kommune
  removes the part of the dependence that runs through those variables;
- a closed population over the period, and the linkage is right (a false link lowers N by
  making m too large; a missed link raises it) - hence precision first in the linker;
- severity is the casualty's (the hospital's when seen by an ER), so strata may differ
  slightly in how each source classifies a person.
A stratum's estimate is "reliable" when m >= 7 (Chapman is then nearly unbiased).
"""

from __future__ import annotations

import logging

import duckdb
import numpy as np
import pandas as pd

from skadestue.db import query

log = logging.getLogger(__name__)

#: Chapman is approximately unbiased from this many recaptures (linked casualties) on.
MIN_RELIABLE_BOTH = 7
#: Two-sided 95 % normal quantile.
Z95 = 1.959964


def chapman(n1: np.ndarray, n2: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chapman estimates with Chao's log-normal 95 % interval, element-wise.

    Returns (estimate, ci_low, ci_high). A stratum missing from one source (n1 or n2 = 0)
    has nothing to recapture: estimate NaN.
    """
    n1, n2, m = (np.asarray(a, dtype=float) for a in (n1, n2, m))
    if np.any(m > np.minimum(n1, n2)):
        raise ValueError("more linked casualties than one of the sources holds")
    est = (n1 + 1) * (n2 + 1) / (m + 1) - 1
    var = (n1 + 1) * (n2 + 1) * (n1 - m) * (n2 - m) / ((m + 1) ** 2 * (m + 2))
    observed = n1 + n2 - m
    f0 = np.maximum(est - observed, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.exp(Z95 * np.sqrt(np.log1p(np.where(f0 > 0, var / f0**2, 0.0))))
        low = np.where(f0 > 0, observed + f0 / c, observed)
        high = np.where(f0 > 0, observed + f0 * c, observed)
    empty = (n1 == 0) | (n2 == 0)
    return (np.where(empty, np.nan, est), np.where(empty, np.nan, low), np.where(empty, np.nan, high))


def dark_figure_frame(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The marts.dark_figure rows from core.casualty (every stratum level)."""
    df = con.execute(query("link_dark_figure_counts")).df()
    est, low, high = chapman(df["n_er"], df["n_police"], df["n_both"])
    df["n_observed"] = df["n_er"] + df["n_police"] - df["n_both"]
    df["estimate"], df["ci_low"], df["ci_high"] = est, low, high
    with np.errstate(divide="ignore", invalid="ignore"):
        df["police_known_share"] = df["n_police"] / est
        df["er_known_share"] = df["n_er"] / est
    df["reliable"] = df["n_both"] >= MIN_RELIABLE_BOTH
    return df


def build_dark_figure(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Rebuild marts.dark_figure; returns its rows."""
    df = dark_figure_frame(con)
    con.execute("DELETE FROM marts.dark_figure")
    con.register("link_dark_figure", df)
    try:
        con.execute(
            "INSERT INTO marts.dark_figure (stratum_level, kommunekode, road_user, severity, period_start, "
            "period_end, n_er, n_police, n_both, n_observed, estimate, ci_low, ci_high, police_known_share, "
            "er_known_share, reliable) SELECT stratum_level, kommunekode, road_user, severity, period_start, "
            "period_end, n_er, n_police, n_both, n_observed, estimate, ci_low, ci_high, police_known_share, "
            "er_known_share, reliable FROM link_dark_figure"
        )
    finally:
        con.unregister("link_dark_figure")
    total = df[df["stratum_level"] == "total"]
    if len(total):
        t = total.iloc[0]
        log.info("dark figure: %d observed casualties, Chapman estimate %.0f (95%% CI %.0f-%.0f)",
                 t["n_observed"], t["estimate"], t["ci_low"], t["ci_high"])
    return df


def stratified_total(df: pd.DataFrame, level: str = "road_user_severity") -> tuple[float, float, float]:
    """Sum of the stratum estimates of one level (a stratum seen by one source only counts
    what was observed), with an interval from the summed Chapman variances (normal
    approximation, clipped at the observed total). Stratifying removes the heterogeneity
    bias of the pooled estimate."""
    s = df[df["stratum_level"] == level]
    n1, n2, m = (s[c].to_numpy(dtype=float) for c in ("n_er", "n_police", "n_both"))
    est = np.where(np.isnan(s["estimate"].to_numpy(dtype=float)), s["n_observed"].to_numpy(dtype=float),
                   s["estimate"].to_numpy(dtype=float))
    var = np.where((n1 > 0) & (n2 > 0), (n1 + 1) * (n2 + 1) * (n1 - m) * (n2 - m) / ((m + 1) ** 2 * (m + 2)), 0.0)
    total, sd = float(est.sum()), float(np.sqrt(var.sum()))
    observed = float(s["n_observed"].sum())
    return total, max(total - Z95 * sd, observed), total + Z95 * sd


def police_known_share_by_road_user(df: pd.DataFrame) -> dict[str, float]:
    """Estimated share of casualties the police know, per road user (for the run summary)."""
    s = df[(df["stratum_level"] == "road_user") & df["estimate"].notna()]
    return {r: round(float(v), 3) for r, v in zip(s["road_user"], s["police_known_share"], strict=True)}
