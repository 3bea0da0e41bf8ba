"""The dark figure (mørketal): how many traffic casualties neither register sees, estimated
by two-source capture-recapture on the linked casualties (domain.md §4).

Per stratum, with n1 casualties seen by an ER, n2 known to the police and m seen by both,
the Chapman estimator of the true number (those seen by neither source included) is

    N = (n1 + 1)(n2 + 1) / (m + 1) - 1,
    Var = (n1 + 1)(n2 + 1)(n1 - m)(n2 - m) / ((m + 1)^2 (m + 2))      (Seber),

with Chao's log-normal 95 % interval for the unseen f0 = N - observed (so the interval never
goes below what was observed).

The headline estimate is STRATIFIED (stratum_level 'total_stratified'): the sum of Chapman
estimates over strata of kommune x road user x severity group, with the variance the sum of
the strata's variances and Chao's interval on the total. Pooling casualties whose capture
probabilities differ (cyclists vs car occupants, the killed vs the rest) makes a single
Chapman estimate biased; when both sources capture the same kinds of casualty more often
(the usual case) it is biased downward, so every pooled row is flagged ``is_lower_bound``.

Strata, and the collapsing rule for sparse ones (``collapse_strata``):
- severity is stratified as killed / non_fatal only. The police's serious/slight agrees with
  the hospital's in only about half of the cases (domain.md §4), and a casualty's severity
  comes from the hospital when an ER saw it and from the police otherwise, so a
  serious/slight split would put police-only casualties into strata by another yardstick
  than the others (in the demo that biases the total by about -0.7 %). Death is recorded
  alike by both;
- a kommune x road user x severity-group cell is a stratum of its own when it holds at least
  ``MIN_STRATUM_BOTH`` linked casualties (and its kommune is known); the other cells of the
  same road user and severity group are pooled into kommune 'rest'; a 'rest' pool still too
  sparse joins the pool of its severity group over all road users (road user 'rest'); what
  is still too sparse forms one last stratum ('rest', 'rest', 'rest');
- ER-only casualties the geocoder could not place (kommune unknown) are first spread over
  the kommune cells of their road user x severity group in proportion to the cells' placed
  ER casualties (the unplaced are taken to come from the kommuner like the placed). Pooling
  them into a 'rest' cell instead would scale thousands of them (national scale) by the
  capture rate of a few sparse kommuner: a needlessly wide interval.

The recapture sample is the police casualties whose police record carries a CPR pseudonym
(``recapture_sample`` 'police_cpr'): their links to an ER rest on the CPR, while a police
person without one can only be matched probabilistically, and every link missed there makes
m too small and N too large (in the demo the missed no-CPR links raised the total by 1-2 %,
more than its standard error). The police record the CPR for most people, and whether they
did is taken to be unrelated to whether the person went to an ER. n1 is still every ER
casualty, so N still counts everyone, with or without a CPR. Where fewer than
``MIN_CPR_SHARE`` of the police casualties carry a CPR pseudonym, all of them are used
('police_all').

Assumptions, stated in the published table's documentation:
- the two sources are independent within a stratum. In reality a casualty the police know
  is MORE likely to reach an ER (serious accidents), a positive dependence that makes N too
  small: read the estimate as a lower bound even when stratified;
- a closed population over the period, and the CPR-based links are right (a false link
  lowers N by making m too large; a missed link raises it);
- a casualty's stratum does not depend on which source saw it (hence killed/non_fatal).
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
#: A stratum of the stratified total needs this many recaptures (m). Below ~15 the Chapman
#: variance is too unstable for the summed interval (on demo-like populations the interval
#: covered the truth 89 % of the time with 7, 93 % with 15).
MIN_STRATUM_BOTH = 15
#: The police casualties with a CPR pseudonym are the recapture sample when at least this
#: share of them carry one.
MIN_CPR_SHARE = 0.5
#: Two-sided 95 % normal quantile.
Z95 = 1.959964
#: The pooled levels (one Chapman estimate over strata with different capture rates).
POOLED_LEVELS = ("total", "kommune", "road_user", "severity", "road_user_severity")
_COUNTS = ["n_er", "n_police", "n_both", "n_police_cpr", "n_both_cpr"]
_OUT_COLUMNS = [
    "stratum_level", "kommunekode", "road_user", "severity", "period_start", "period_end", "n_er", "n_police",
    "n_both", "n_observed", "estimate", "ci_low", "ci_high", "police_known_share", "er_known_share", "reliable",
    "n_police_cpr", "n_both_cpr", "recapture_sample", "method", "is_lower_bound", "n_strata",
]


def chapman_variance(n1: np.ndarray, n2: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Seber's variance of the Chapman estimate, element-wise."""
    n1, n2, m = (np.asarray(a, dtype=float) for a in (n1, n2, m))
    return (n1 + 1) * (n2 + 1) * (n1 - m) * (n2 - m) / ((m + 1) ** 2 * (m + 2))


def chao_interval(estimate: np.ndarray, variance: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chao's log-normal 95 % interval: log(f0) normal for the unseen f0 = estimate - observed."""
    estimate, variance, observed = (np.asarray(a, dtype=float) for a in (estimate, variance, observed))
    f0 = np.maximum(estimate - observed, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.exp(Z95 * np.sqrt(np.log1p(np.where(f0 > 0, variance / f0**2, 0.0))))
        low = np.where(f0 > 0, observed + f0 / c, observed)
        high = np.where(f0 > 0, observed + f0 * c, observed)
    nan = np.isnan(estimate)
    return np.where(nan, np.nan, low), np.where(nan, np.nan, high)


def chapman(n1: np.ndarray, n2: np.ndarray, m: np.ndarray,
            observed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chapman estimates with Chao's log-normal 95 % interval, element-wise.

    Returns (estimate, ci_low, ci_high). A stratum missing from one source (n1 or n2 = 0)
    has nothing to recapture: estimate NaN. ``observed`` (default n1 + n2 - m) is the floor
    of the interval: the casualties seen, when n2 is a subsample of the second source.
    """
    n1, n2, m = (np.asarray(a, dtype=float) for a in (n1, n2, m))
    if np.any(m > np.minimum(n1, n2)):
        raise ValueError("more linked casualties than one of the sources holds")
    est = (n1 + 1) * (n2 + 1) / (m + 1) - 1
    est = np.where((n1 == 0) | (n2 == 0), np.nan, est)
    seen = n1 + n2 - m if observed is None else np.asarray(observed, dtype=float)
    low, high = chao_interval(est, chapman_variance(n1, n2, m), seen)
    return est, low, high


def recapture_sample(counts: pd.DataFrame) -> str:
    """'police_cpr' when enough police casualties carry a CPR pseudonym, else 'police_all'."""
    total = counts[counts["stratum_level"] == "total"]
    if total.empty or total["n_police"].iloc[0] == 0:
        return "police_all"
    share = total["n_police_cpr"].iloc[0] / total["n_police"].iloc[0]
    return "police_cpr" if share >= MIN_CPR_SHARE else "police_all"


def _recapture(df: pd.DataFrame, sample: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n1, n2, m) of every row for the recapture sample."""
    n2, m = ("n_police_cpr", "n_both_cpr") if sample == "police_cpr" else ("n_police", "n_both")
    return tuple(df[c].to_numpy(dtype=float) for c in ("n_er", n2, m))


def _add_estimates(df: pd.DataFrame, sample: str) -> pd.DataFrame:
    """Chapman estimate and interval for every row (each row estimated on its own)."""
    out = df.copy()
    out["n_observed"] = out["n_er"] + out["n_police"] - out["n_both"]
    out["estimate"], out["ci_low"], out["ci_high"] = chapman(*_recapture(out, sample), observed=out["n_observed"])
    out["reliable"] = _recapture(out, sample)[2] >= MIN_RELIABLE_BOTH
    return out


def severity_group(severity: pd.Series) -> pd.Series:
    """killed / non_fatal: the only severity split both sources record alike."""
    return pd.Series(np.where(severity.to_numpy() == "killed", "killed", "non_fatal"), index=severity.index)


def _allocate_unknown_kommune(c: pd.DataFrame) -> pd.DataFrame:
    """Spread the casualties of unknown kommune (ER-only casualties the geocoder could not
    place) over the kommune cells of their road user x severity group, in proportion to the
    cells' placed ER casualties (counts become fractional). A group with no placed ER
    casualty keeps them as kommune 'unknown'."""
    unknown = c["kommunekode"] == "unknown"
    if not unknown.any():
        return c
    parent = ["road_user", "severity"]
    known = c[~unknown].copy()
    share = known["n_er"] / known.groupby(parent)["n_er"].transform("sum")
    spread = c[unknown].groupby(parent)[_COUNTS].sum()
    add = known[parent].join(spread, on=parent)[_COUNTS].mul(share, axis=0)
    ok = share.notna() & add.notna().all(axis=1)
    known.loc[ok, _COUNTS] = known.loc[ok, _COUNTS] + add[ok]
    placed = set(map(tuple, known.loc[ok, parent].drop_duplicates().to_numpy()))
    keep = c[unknown & ~pd.Series([tuple(v) in placed for v in c[parent].to_numpy()], index=c.index)]
    return pd.concat([known, keep])


def collapse_strata(cells: pd.DataFrame, min_both: int = MIN_STRATUM_BOTH, sample: str = "police_cpr") -> pd.DataFrame:
    """The strata of the stratified total from the kommune x road user x severity cells
    (stratum_level 'kommune_road_user_severity' rows), by the rule in the module docstring;
    a cell's size is its recapture count m (n_both_cpr or n_both, by ``sample``).

    Returns one row per stratum: kommunekode, road_user, severity (a group or 'rest'),
    period_start, period_end and the summed counts (fractional where casualties of unknown
    kommune were spread over the kommuner).
    """
    m_col = "n_both_cpr" if sample == "police_cpr" else "n_both"
    c = cells.assign(severity=severity_group(cells["severity"])).astype({col: float for col in _COUNTS})
    c = _allocate_unknown_kommune(c)
    key_k, key_r, key_s = c["kommunekode"].copy(), c["road_user"].copy(), c["severity"].copy()

    def pooled_m(mask: pd.Series) -> pd.Series:
        return c[m_col].where(mask, 0).groupby([key_k, key_r, key_s]).transform("sum")

    sparse = (pooled_m(pd.Series(True, index=c.index)) < min_both) | (c["kommunekode"] == "unknown")
    key_k[sparse] = "rest"
    sparse &= pooled_m(sparse) < min_both
    key_r[sparse] = "rest"
    sparse &= pooled_m(sparse) < min_both
    key_s[sparse] = "rest"
    grouped = c.assign(kommunekode=key_k, road_user=key_r, severity=key_s)
    agg = {col: "sum" for col in _COUNTS} | {"period_start": "min", "period_end": "max"}
    return grouped.groupby(["kommunekode", "road_user", "severity"], as_index=False).agg(agg)


def stratified_total(strata: pd.DataFrame, sample: str = "police_cpr") -> tuple[float, float, float]:
    """Sum of the strata's Chapman estimates (a stratum one source never saw counts what was
    observed), with Chao's log-normal interval from the summed Seber variances."""
    n1, n2, m = _recapture(strata, sample)
    observed = (strata["n_er"] + strata["n_police"] - strata["n_both"]).to_numpy(dtype=float)
    both_sources = (n1 > 0) & (n2 > 0)
    est = np.where(both_sources, (n1 + 1) * (n2 + 1) / (m + 1) - 1, observed)
    var = np.where(both_sources, chapman_variance(n1, n2, m), 0.0)
    low, high = chao_interval(est.sum(), var.sum(), observed.sum())
    return float(est.sum()), float(low), float(high)


def dark_figure_frame(con: duckdb.DuckDBPyConnection, min_both: int = MIN_STRATUM_BOTH,
                      sample: str | None = None) -> pd.DataFrame:
    """The marts.dark_figure rows from core.casualty: the pooled rows of every stratum
    level, the strata used, and the stratified total. ``sample`` forces the recapture
    sample ('police_cpr' / 'police_all'); by default it is chosen by ``MIN_CPR_SHARE``."""
    counts = con.execute(query("link_dark_figure_counts")).df()
    if counts.empty:
        return pd.DataFrame(columns=_OUT_COLUMNS)
    sample = sample or recapture_sample(counts)
    pooled = _add_estimates(counts, sample)
    pooled["method"], pooled["n_strata"] = "pooled", 1
    pooled["is_lower_bound"] = pooled["stratum_level"].isin(POOLED_LEVELS)

    strata = collapse_strata(counts[counts["stratum_level"] == "kommune_road_user_severity"], min_both, sample)
    strata = _add_estimates(strata, sample)
    est, low, high = stratified_total(strata, sample)
    sums = strata[_COUNTS + ["n_observed"]].sum().round()
    strata[_COUNTS + ["n_observed"]] = strata[_COUNTS + ["n_observed"]].round()  # stored as integers
    strata["stratum_level"], strata["method"], strata["is_lower_bound"], strata["n_strata"] = (
        "stratum", "stratum", False, 1)

    total = pd.DataFrame([{
        "stratum_level": "total_stratified", "kommunekode": "*", "road_user": "*", "severity": "*",
        "period_start": strata["period_start"].min(), "period_end": strata["period_end"].max(),
        **{col: int(sums[col]) for col in _COUNTS + ["n_observed"]},
        "estimate": est, "ci_low": low, "ci_high": high, "method": "stratified", "is_lower_bound": False,
        "n_strata": len(strata), "reliable": bool(strata["reliable"].all()),
    }])
    df = pd.concat([pooled, strata, total], ignore_index=True)
    df["recapture_sample"] = sample
    with np.errstate(divide="ignore", invalid="ignore"):
        df["police_known_share"] = df["n_police"] / df["estimate"]
        df["er_known_share"] = df["n_er"] / df["estimate"]
    return df[_OUT_COLUMNS]


def build_dark_figure(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Rebuild marts.dark_figure; returns its rows."""
    df = dark_figure_frame(con)
    con.execute("DELETE FROM marts.dark_figure")
    con.register("link_dark_figure", df)
    cols = ", ".join(_OUT_COLUMNS)
    try:
        con.execute(f"INSERT INTO marts.dark_figure ({cols}) SELECT {cols} FROM link_dark_figure")
    finally:
        con.unregister("link_dark_figure")
    t = total_row(df)
    if t is not None:
        pooled = df[df["stratum_level"] == "total"].iloc[0]
        log.info("dark figure: %d observed casualties, stratified Chapman estimate %.0f over %d strata "
                 "(95%% CI %.0f-%.0f, recapture sample %s); pooled %.0f (a lower bound)",
                 t["n_observed"], t["estimate"], t["n_strata"], t["ci_low"], t["ci_high"],
                 t["recapture_sample"], pooled["estimate"])
    return df


def total_row(df: pd.DataFrame) -> pd.Series | None:
    """The stratified total's row, or None when there is nothing to estimate."""
    t = df[df["stratum_level"] == "total_stratified"]
    return None if t.empty else t.iloc[0]


def police_known_share_by_road_user(df: pd.DataFrame) -> dict[str, float]:
    """Estimated share of casualties the police know, per road user (for the run summary)."""
    s = df[(df["stratum_level"] == "road_user") & df["estimate"].notna()]
    return {r: round(float(v), 3) for r, v in zip(s["road_user"], s["police_known_share"], strict=True)}
