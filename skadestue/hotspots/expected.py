"""Observed versus expected for junctions and road stretches: empirical Bayes (EB).

Danish practice (Vejdirektoratet's *sorte pletter*) flags a site when it has significantly
more accidents than expected for comparable sites, not merely many accidents: a junction
of two busy roads with the usual number of accidents for its kind is not a black spot, a
quiet residential junction with many injured cyclists is. Traffic counts are not known
here, so the road class stands in for traffic:

1. **Comparable sites.** A junction's group is (best road class, best class among the other
   roads, legs 3 / 4+), from GeoDanmark's VEJKLASSE; a road window's group is its street's
   class. A group with fewer than ``MIN_SITES`` sites in the region is widened (drop the
   legs, then the second class), and what is still too small joins the most similar big
   group; ``road_class`` names the group used.
2. **Expected count** ``mu`` per site = class rate x area factor x exposure: a Poisson
   log-linear model with main effects for class and area, fitted by iterative
   proportional fitting on the totals of EVERY site (junctions and windows without
   accidents included). The area is the site's postcode (a town and its surroundings)
   when the gazetteer has postcodes and the area has >= ``MIN_SITES`` sites, else its
   kommune: the factor absorbs how busy a town is (a residential junction in Esbjerg sees
   more traffic than one in Sønderho) and how well a kommune is reported. Exposure is 1 per junction and the window's length / window_m per window
   (the last window of a street is shorter).
3. **Negative binomial** over-dispersion ``k`` by the method of moments over all sites of the
   layer and period: Var(X) = mu + mu^2 / k. No over-dispersion: Poisson (``k`` NULL).
4. **EB estimate** ``eb = w*mu + (1-w)*x`` with ``w = 1 / (1 + mu/k)``; ``excess_accidents =
   eb - mu`` (Hauer's potential for safety improvement, PSI); ``excess_score`` = excess x
   the site's severity-weighted score per accident (what the excess costs).
5. **Significance** ``excess_p = P(X >= x)``, X ~ NegBin(mu, k); Benjamini-Hochberg over all
   sites of the layer and period (``excess_q``); ``excess_flag`` = q < ``ALPHA`` and at least
   the rule-of-thumb minimum of accidents (VD's test also asks for a fixed minimum, so a
   quiet site is never flagged on one accident).

rank_in_kommune of junctions and windows orders by excess_flag, then excess_score, then the
plain score: the flagged sites (sorte pletter) first, by what their excess costs.

The build counts junction and window rows into temp tables (hs_junction_out, hs_segment_out,
the periods being built); ``update_expected`` fits the model on them and writes each layer's
rows into its mart once, with the EB columns and the rank (no UPDATE of the big tables).
"""

from __future__ import annotations

import logging

import duckdb
import numpy as np
import pandas as pd
from scipy.stats import nbinom, norm, poisson

from skadestue.config import HotspotSettings
from skadestue.db import query

log = logging.getLogger(__name__)

#: A comparable-site group needs at least this many sites in the region, else it is merged.
MIN_SITES = 20
#: False-discovery rate for excess_flag and gi_hot.
ALPHA = 0.05
ALL_SITES = "alle"
_RANK_NAMES = {
    1: "Motorvej", 2: "Trafikvej-Gennemfart", 3: "Trafikvej-Fordeling", 4: "Lokalvej-Primær",
    5: "Lokalvej-Sekundær", 6: "Lokalvej-Tertiær", 7: "Anden vej", 9: "Ukendt",
}
_TEMP = ("hs_class_name", "hs_segment_class", "hs_street_class", "hs_junction_class", "hs_eb_out",
         "hs_junction_area", "hs_street_area")


def benjamini_hochberg(p: np.ndarray, m: int | None = None) -> np.ndarray:
    """BH-adjusted q-values of ``p``; ``m`` hypotheses in all (the rest had p = 1)."""
    p = np.asarray(p, dtype=float)
    m = len(p) if m is None else max(int(m), len(p))
    if len(p) == 0:
        return p
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, len(p) + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(len(p))
    out[order] = np.minimum(q, 1.0)
    return out


def gi_fdr(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(q, hot) for Gi* z-values: BH over the one-sided normal p of each tested cell.

    The permutation p (gi_p) moves in steps of 1/(permutations+1), too coarse for an FDR
    over thousands of cells, so the correction uses the analytic normal p of z.
    """
    z = np.asarray(z, dtype=float)
    q = np.full(len(z), np.nan)
    ok = np.isfinite(z)
    q[ok] = benjamini_hochberg(norm.sf(z[ok]))
    return q, ok & (z > 0) & (q < ALPHA)


def fit_groups(groups: pd.DataFrame, iterations: int = 100) -> np.ndarray:
    """Per-unit expectation of each (road_class, area) row of ``groups`` (columns
    road_class, area, n_sites, n_accidents): class rate x area factor, the Poisson
    main-effects fit (iterative proportional fitting of both margins)."""
    cls = pd.factorize(groups["road_class"])[0]
    kom = pd.factorize(groups["area"])[0]
    n = groups["n_sites"].to_numpy(dtype=float)
    t = groups["n_accidents"].to_numpy(dtype=float)
    t_cls = np.bincount(cls, t)
    t_kom = np.bincount(kom, t)
    a = np.ones(cls.max() + 1)
    b = np.ones(kom.max() + 1)
    for _ in range(iterations):
        a = np.divide(t_cls, np.bincount(cls, n * b[kom]), out=np.zeros_like(t_cls), where=t_cls > 0)
        denom = np.bincount(kom, n * a[cls])
        b_new = np.divide(t_kom, denom, out=np.zeros_like(t_kom), where=denom > 0)
        if np.allclose(b_new, b, rtol=1e-10, atol=0):
            b = b_new
            break
        b = b_new
    return a[cls] * b[kom]


def dispersion_k(groups: pd.DataFrame, rate: np.ndarray, sites: pd.DataFrame) -> float:
    """Method-of-moments k of Var = mu + mu^2/k over every site (zeros included); inf if none.

    ``groups`` has n_sites_e2 (sum of squared exposures), ``sites`` (nonzero sites) has mu, x.
    """
    sum_mu2 = float((rate**2 * groups["n_sites_e2"].to_numpy(dtype=float)).sum())
    if sum_mu2 <= 0:
        return np.inf
    mu, x = sites["mu"].to_numpy(), sites["x"].to_numpy(dtype=float)
    # sum over all sites of (x - mu)^2 - x; a zero site contributes mu^2
    excess_var = float(((x - mu) ** 2 - x - mu**2).sum()) + sum_mu2
    inv_k = excess_var / sum_mu2
    return np.inf if inv_k <= 1e-9 else 1.0 / inv_k


def eb_columns(sites: pd.DataFrame, k: float, n_hypotheses: int, rule_min: int) -> pd.DataFrame:
    """EB estimate, excess, NB p/q and flag for ``sites`` (columns mu, x, score)."""
    mu = sites["mu"].to_numpy()
    x = sites["x"].to_numpy(dtype=float)
    if np.isfinite(k):
        w = k / (k + mu)
        p = nbinom.sf(x - 1, k, k / (k + mu))
    else:
        w = np.ones(len(mu))
        p = poisson.sf(x - 1, mu)
    p = np.where(mu > 0, p, np.where(x > 0, 0.0, 1.0))
    eb = w * mu + (1 - w) * x
    out = pd.DataFrame(index=sites.index)
    out["expected_accidents"] = mu
    out["obs_exp_ratio"] = np.where(mu > 0, x / np.where(mu > 0, mu, 1), np.nan)
    out["poisson_p"] = np.where(mu > 0, poisson.sf(x - 1, np.where(mu > 0, mu, 1)), np.where(x > 0, 0.0, 1.0))
    out["eb_accidents"] = eb
    out["excess_accidents"] = eb - mu
    out["excess_score"] = (eb - mu) * sites["score"].to_numpy() / np.maximum(x, 1)
    out["excess_p"] = p
    out["excess_q"] = benjamini_hochberg(p, n_hypotheses)
    out["excess_flag"] = (out["excess_q"].to_numpy() < ALPHA) & (x >= rule_min)
    return out


def pool_small_groups(keys: pd.DataFrame, levels: list[pd.Series], weight: pd.Series) -> pd.Series:
    """The group each site is compared in.

    ``levels``: labels per site from the finest to the coarsest (e.g. class pair + legs,
    class pair, best class). A site takes the finest label whose group, counting only the
    sites not placed at a finer level, weighs >= MIN_SITES. What is left joins the big group
    whose mean ``keys`` (class ranks) are nearest, ties to the larger.
    """
    chosen = pd.Series(None, index=weight.index, dtype=object)
    for labels in levels:
        left = chosen.isna()
        size = weight[left].groupby(labels[left]).transform("sum")
        take = size.index[size >= MIN_SITES]
        chosen[take] = labels[take]
    left = chosen.isna()
    if not left.any():
        return chosen
    if not (~left).any():
        return pd.Series(ALL_SITES, index=weight.index, dtype=object)
    big = keys[~left].assign(w=weight[~left], g=chosen[~left]).groupby("g")
    centre = big[list(keys.columns)].mean()
    size = big["w"].sum()
    for label, frame in keys[left].groupby(levels[0][left]):
        dist = np.abs(centre.to_numpy(dtype=float) - frame.iloc[0].to_numpy(dtype=float))
        order = np.lexsort((-size.reindex(centre.index).to_numpy(), *dist.T[::-1]))
        chosen[frame.index] = centre.index[order[0]]
    return chosen


def site_area(postnr: pd.Series, kommunekode: pd.Series, weight: pd.Series) -> pd.Series:
    """The postcode, or 'kommune <code>' where there is none or its sites weigh < MIN_SITES."""
    area = postnr.astype(object).where(postnr.notna(), None)
    size = weight.groupby(area.fillna("")).transform("sum")
    rest = "kommune " + kommunekode.astype(str)
    return area.where(area.notna() & (size >= MIN_SITES), rest)


def _junction_classes(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every gazetteer junction: junction_id, kommunekode, area, road_class (pooled)."""
    j = con.execute(
        "SELECT c.junction_id, j.kommunekode, c.major_rank, c.minor_rank, c.legs, a.postnr "
        "FROM hs_junction_class AS c JOIN gazetteer.junction AS j USING (junction_id) "
        "LEFT JOIN hs_junction_area AS a USING (junction_id) ORDER BY c.junction_id"
    ).df()
    j["area"] = site_area(j["postnr"], j["kommunekode"], pd.Series(1.0, index=j.index))
    pair = j["major_rank"].map(_RANK_NAMES) + " / " + j["minor_rank"].map(_RANK_NAMES)
    keys = pd.DataFrame({"major": j["major_rank"], "minor": j["minor_rank"],
                         "legs": j["legs"].map({"3": 3, "4+": 4}).fillna(2)})
    levels = [pair + " / " + j["legs"], pair, j["major_rank"].map(_RANK_NAMES)]
    j["road_class"] = pool_small_groups(keys, levels, pd.Series(1.0, index=j.index))
    return j[["junction_id", "area", "road_class"]]


def _street_windows(con: duckdb.DuckDBPyConnection, windows: list[int]) -> pd.DataFrame:
    """Per street and window length: exposure (length / window), sum of squared window
    exposures and the number of windows, with the street's road class (collapsed).
    Rows and sums in a fixed order, so the model's float sums are the same in every build."""
    streets = con.execute(
        """
        SELECT p.kommunekode, p.vejkode, sum(p.len_m ORDER BY p.path) AS length_m,
               coalesce(any_value(c.road_class), 'Ukendt') AS street_class,
               any_value(a.postnr) AS postnr
        FROM hs_street_part AS p
        LEFT JOIN hs_street_class AS c USING (kommunekode, vejkode)
        LEFT JOIN hs_street_area AS a USING (kommunekode, vejkode)
        GROUP BY ALL
        ORDER BY p.kommunekode, p.vejkode
        """
    ).df()
    frames = []
    for w in windows:
        f = streets.copy()
        f["window_m"] = w
        ratio = f["length_m"].to_numpy() / w
        full = np.floor(ratio)
        frac = ratio - full
        f["n_sites"] = ratio
        f["n_sites_e2"] = full + frac**2
        f["n_windows"] = full + (frac > 1e-9)
        f["area"] = site_area(f["postnr"], f["kommunekode"], f["n_sites"])
        rank = f["street_class"].map({v: k for k, v in _RANK_NAMES.items()}).fillna(9)
        f["road_class"] = pool_small_groups(pd.DataFrame({"rank": rank}), [f["street_class"]], f["n_sites"])
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def _fit_part(
    sites: pd.DataFrame, groups: pd.DataFrame, n_hypotheses: int, rule_min: int
) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """Fit one layer part x period: the EB columns for ``sites`` and the model rows."""
    observed = sites.groupby(["road_class", "area"], as_index=False)["x"].sum()
    groups = groups.merge(observed, on=["road_class", "area"], how="left")
    groups["n_accidents"] = groups["x"].fillna(0).astype(np.int64)
    rate = fit_groups(groups) if groups["n_accidents"].sum() > 0 else np.zeros(len(groups))
    groups["expected_per_site"] = rate
    sites = sites.merge(groups[["road_class", "area", "expected_per_site"]],
                        on=["road_class", "area"], how="left")
    sites["mu"] = sites["expected_per_site"].fillna(0) * sites["exposure"]
    k = dispersion_k(groups, rate, sites)
    cols = eb_columns(sites, k, n_hypotheses, rule_min)
    return pd.concat([sites, cols], axis=1), groups, k


def update_expected(con: duckdb.DuckDBPyConnection, hs: HotspotSettings) -> dict[str, float]:
    """Write marts.hotspot_junction / hotspot_segment from hs_junction_out / hs_segment_out
    with their observed-vs-expected columns and rank_in_kommune, and the periods' rows of
    marts.hotspot_expected_model. Returns k per part and period."""
    con.execute(query("hotspot_road_class"))
    dispersion: dict[str, float] = {}
    try:
        junctions = _junction_classes(con)
        rows = con.execute(
            "SELECT junction_id, period_start, period_end, n_accidents AS x, score "
            "FROM hs_junction_out ORDER BY junction_id, period_start, period_end"
        ).df()
        groups_all = junctions.groupby(["road_class", "area"], as_index=False).agg(n_sites=("junction_id", "size"))
        groups_all["n_sites_e2"] = groups_all["n_sites"]
        rows = rows.merge(junctions, on="junction_id", how="left")
        rows["exposure"] = 1.0
        out = []
        for (start, end), part in rows.groupby(["period_start", "period_end"]):
            fitted, groups, k = _fit_part(part.reset_index(drop=True), groups_all.copy(), len(junctions),
                                          hs.rule_min_accidents)
            out.append(fitted)
            _store_model(con, "hotspot_junction", start, end, groups, k)
            dispersion[f"hotspot_junction {start:%Y}-{end:%Y}"] = k
        _write_back(con, "hotspot_junction", out, ["junction_id"])

        windows = sorted({int(w) for w in hs.segment_windows_m})
        streets = _street_windows(con, windows)
        seg = con.execute(
            "SELECT kommunekode, vejkode, window_m, from_m, to_m, period_start, period_end, "
            "n_accidents AS x, score FROM hs_segment_out "
            "ORDER BY kommunekode, vejkode, window_m, from_m, period_start, period_end"
        ).df()
        seg = seg.merge(streets[["kommunekode", "vejkode", "window_m", "length_m", "road_class", "area"]],
                        on=["kommunekode", "vejkode", "window_m"], how="left")
        length = seg["length_m"].fillna(seg["to_m"]).to_numpy()
        seg["exposure"] = np.clip((np.minimum(seg["to_m"], length) - seg["from_m"]) / seg["window_m"], 0.05, 1.0)
        out = []
        for (w, start, end), part in seg.groupby(["window_m", "period_start", "period_end"]):
            sw = streets[streets["window_m"] == w]
            groups = sw.groupby(["road_class", "area"], as_index=False).agg(
                n_sites=("n_sites", "sum"), n_sites_e2=("n_sites_e2", "sum"))
            fitted, groups, k = _fit_part(part.reset_index(drop=True), groups, int(sw["n_windows"].sum()),
                                          hs.rule_min_accidents)
            out.append(fitted)
            _store_model(con, f"hotspot_segment_{w}", start, end, groups, k)
            dispersion[f"hotspot_segment_{w} {start:%Y}-{end:%Y}"] = k
        _write_back(con, "hotspot_segment", out, ["kommunekode", "vejkode", "window_m", "from_m"])
    finally:
        for name in _TEMP:
            con.execute(f"DROP TABLE IF EXISTS temp.{name}")
    return dispersion


def _store_model(con, layer: str, start, end, groups: pd.DataFrame, k: float) -> None:
    frame = groups[["road_class", "area", "n_sites", "n_accidents", "expected_per_site"]].copy()
    frame.insert(0, "layer", layer)
    frame.insert(1, "period_start", start)
    frame.insert(2, "period_end", end)
    frame["dispersion_k"] = k if np.isfinite(k) else None
    con.register("hs_model_frame", frame)
    try:
        con.execute("INSERT INTO marts.hotspot_expected_model BY NAME SELECT * FROM hs_model_frame")
    finally:
        con.unregister("hs_model_frame")


_EB_COLUMNS = ("road_class", "expected_accidents", "obs_exp_ratio", "eb_accidents", "excess_accidents",
               "excess_score", "excess_p", "excess_q", "excess_flag")


#: rank_in_kommune: sorte pletter first, then by severity-weighted excess, then score.
_RANK = {
    "hotspot_junction": (
        "PARTITION BY o.kommunekode, o.period_start, o.period_end ORDER BY e.excess_flag DESC, "
        "e.excess_score DESC NULLS LAST, o.score DESC, o.n_accidents DESC, o.junction_id"
    ),
    "hotspot_segment": (
        "PARTITION BY o.kommunekode, o.period_start, o.period_end, o.window_m ORDER BY e.excess_flag DESC, "
        "e.excess_score DESC NULLS LAST, o.score DESC, o.n_accidents DESC, o.vejkode, o.from_m"
    ),
}
_OUT = {"hotspot_junction": "hs_junction_out", "hotspot_segment": "hs_segment_out"}


def _write_back(con: duckdb.DuckDBPyConnection, table: str, frames: list[pd.DataFrame], keys: list[str]) -> None:
    """INSERT marts.<table>: the layer's temp rows joined on ``keys`` + the period with the EB
    columns of ``frames``, ranked within kommune and period."""
    columns = list(_EB_COLUMNS) + (["poisson_p"] if table == "hotspot_junction" else [])
    if not frames:
        return
    frame = pd.concat(frames, ignore_index=True)[[*keys, "period_start", "period_end", *columns]]
    con.register("hs_eb_frame", frame)
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE hs_eb_out AS SELECT * FROM hs_eb_frame")
    finally:
        con.unregister("hs_eb_frame")
    on = " AND ".join(f"o.{c} = e.{c}" for c in [*keys, "period_start", "period_end"])
    eb = ", ".join(f"e.{c}" for c in columns)
    con.execute(
        f"INSERT INTO marts.{table} BY NAME "
        f"SELECT o.*, {eb}, row_number() OVER ({_RANK[table]}) AS rank_in_kommune "
        f"FROM {_OUT[table]} AS o LEFT JOIN hs_eb_out AS e ON {on}"
    )
