"""The vectorised fast path of the matcher: parsed addresses resolved in bulk (issue 4).

Most ward texts are a street, a house number and perhaps a postcode, town or kommune hint,
spelt exactly or with case/punctuation/abbreviation/aa-å differences. For those the per-text
matcher (:func:`skadestue.geocode.match.match_parsed`) spends its time in Python bookkeeping;
here the same decisions are taken for a whole batch at once:

* the search area is the first scope of :meth:`Gazetteer.scopes` (postcode, town, kommune
  hint, else everywhere), decided per distinct value;
* street candidates come from one merge of the batch's exact keys (``_a_key``) with the
  gazetteer's key table, filtered to the scope; rows without an exact hit try the folded key
  (``compact``) the same way;
* house numbers are found with one ``searchsorted`` over a composite (street, number, letter)
  key of the address index, first occurrence as in :meth:`AddressArrays.find`;
* quality, uncertainty, method, label and notes follow ``_match_address`` rule for rule.

A row is answered here only when the per-text path is certain to take the same branch: an
address-like text whose name has an exact or folded hit in the first scope and whose number
exists on at least one candidate street. Everything else (typos -> rapidfuzz, nearest
number, streets without addresses, junctions, street-only, landmarks ...) is returned as
"not handled" and goes through ``match_parsed`` unchanged. ``tests/test_geocode_fast.py``
runs both paths on the accuracy set and asserts identical answers.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from skadestue.config import GeocodeSettings
from skadestue.geocode.normalise import _PUNCT, _SPACE, STRAY_WORDS, compact

log = logging.getLogger(__name__)

_POS_SHIFT = 26           # composite key: pos << 26 | (tal + 1) << 6 | letter code
_TAL_MAX = (1 << 20) - 2
_LETTER_MAX = 63


@dataclass
class FastIndex:
    """Gazetteer-wide arrays for the fast path (built once, before any fork)."""

    a_keys: pd.DataFrame          # ka, pos (ascending pos within a key)
    b_keys: pd.DataFrame          # kb, pos
    street_postnr: pd.DataFrame   # pos, postnr
    kommune: np.ndarray           # kommunekode per street position (object)
    vejnavn: np.ndarray           # street name per street position (object)
    has_addr: np.ndarray          # street position has at least one address
    akey: np.ndarray              # sorted unique composite address keys
    afirst: np.ndarray            # address row of the first occurrence of each key
    letter_code: dict[str, int]   # letter -> category code in the address index
    usable: bool                  # False when the index does not fit the composite key


def build_index(gaz, cached: tuple[np.ndarray, np.ndarray, bool] | None = None) -> FastIndex:
    """The fast path's lookup arrays for a loaded :class:`Gazetteer` (vectorised).

    ``cached``: (akey, afirst, usable) as an earlier call built them for the same gazetteer
    (:mod:`skadestue.geocode.cache`), so the composite address keys are not sorted again."""
    from skadestue.geocode.match import _a_key

    names = gaz.col["vejnavn"]
    key_a = {n: _a_key(n) for n in set(names)}     # the very function the gazetteer used
    n = len(names)
    a_keys = pd.DataFrame({"ka": [key_a[v] for v in names], "pos": np.arange(n, dtype=np.int64)})
    b_keys = pd.DataFrame({"kb": gaz.col["key_b"], "pos": np.arange(n, dtype=np.int64)})
    sp = pd.DataFrame({"pos": np.arange(n, dtype=np.int64), "postnr": gaz.col["postnumre"]})
    sp = sp.explode("postnr").dropna()
    sp["postnr"] = sp["postnr"].astype(str)
    sp["pos"] = sp["pos"].astype(np.int64)
    ai = gaz.addresses
    start = np.asarray(ai.start, dtype=np.int64)
    has_addr = start[1:] > start[:-1]
    codes, cats = ai._cats["husnr_bogstav"]
    usable = (n < (1 << (63 - _POS_SHIFT))) and len(cats) <= _LETTER_MAX + 1
    if cached is not None:
        akey, afirst, usable = cached
    elif usable and len(ai):
        pos_of_row = np.repeat(np.arange(n, dtype=np.int64), np.diff(start))
        tal = ai.tal
        ok = (tal >= 0) & (tal <= _TAL_MAX)
        key = (pos_of_row << _POS_SHIFT) | ((tal + 1) << 6) | codes.astype(np.int64)
        rows = np.flatnonzero(ok)
        key = key[rows]
        # first occurrence of each key in index order, as AddressArrays.find returns it
        uniq, first = np.unique(key, return_index=True)
        akey, afirst = uniq, rows[first]
    else:
        akey, afirst = np.empty(0, np.int64), np.empty(0, np.int64)
    letter_code = {str(c): i for i, c in enumerate(cats)}
    return FastIndex(a_keys, b_keys, sp.reset_index(drop=True),
                     np.asarray(gaz.col["kommunekode"], dtype=object), np.asarray(names, dtype=object),
                     has_addr, akey, afirst, letter_code, usable)


_STRAY_PREFIX = re.compile(
    "^(?:(?:" + "|".join(re.escape(w) for w in sorted(STRAY_WORDS, key=len, reverse=True)) + ") )+")


def a_keys(names) -> dict[str, str]:
    """``{name: _a_key(name)}`` for many names at once (pandas string ops, the same regexes
    as :func:`skadestue.geocode.normalise.simplify` and ``strip_stray_words``)."""
    ser = pd.Series(np.asarray(names, dtype=object), dtype=object)
    if ser.empty:
        return {}
    k = (ser.str.normalize("NFC").str.lower().str.replace("_", " ", regex=False)
         .str.replace(_PUNCT, " ", regex=True).str.replace("/", " ", regex=False)
         .str.replace("-", " ", regex=False).str.replace(_SPACE, " ", regex=True).str.strip()
         .str.replace(_STRAY_PREFIX, "", regex=True))
    return dict(zip(ser.tolist(), k.tolist()))


def _scope_columns(gaz, rows: pd.DataFrame) -> pd.DataFrame:
    """First scope per row, exactly as Gazetteer.scopes orders them."""
    def nonempty(values: pd.Series, lookup) -> pd.Series:
        uniq = pd.unique(values)
        m = {v: bool(v) and bool(lookup(v)) for v in uniq}
        return values.map(m).astype(bool)

    p_ok = nonempty(rows["postnr"], lambda v: gaz.by_postnr.get(v))
    t_ok = nonempty(rows["town"], gaz.town_scope)
    h_ok = nonempty(rows["hint"], lambda v: gaz.by_kommune.get(v))
    kind = np.select([p_ok, t_ok, h_ok], ["postnr", "town", "kommune"], "everywhere")
    stated = (rows["postnr"] != "") | (rows["town"] != "") | (rows["hint"] != "")
    out = rows.assign(scope=kind, capped=(kind == "everywhere") & stated.to_numpy())
    return out


def _in_scope(gaz, fi: FastIndex, cand: pd.DataFrame) -> np.ndarray:
    """Whether each (row, street position) candidate lies in the row's first scope."""
    scope = cand["scope"].to_numpy()
    pos = cand["pos"].to_numpy()
    ok = scope == "everywhere"
    k = scope == "kommune"
    ok[k] = fi.kommune[pos[k]] == cand["hint"].to_numpy()[k]
    p = np.flatnonzero(scope == "postnr")
    if len(p):
        sub = pd.DataFrame({"i": p, "pos": pos[p], "postnr": cand["postnr"].to_numpy()[p]})
        hit = sub.merge(fi.street_postnr, on=["pos", "postnr"], how="inner")["i"].to_numpy()
        ok[hit] = True
    t = np.flatnonzero(scope == "town")
    if len(t):
        towns = cand["town"].to_numpy()[t]
        sets = {v: gaz.town_scope(v) for v in pd.unique(towns)}
        ok[t] = np.fromiter((q in sets[v] for v, q in zip(towns, pos[t])), bool, len(t))
    return ok


def _candidates(gaz, fi: FastIndex, rows: pd.DataFrame) -> pd.DataFrame:
    """(rid, pos, level) of the in-scope streets of each row: exact key first, else folded."""
    cols = ["rid", "scope", "hint", "postnr", "town"]
    a = rows[[*cols, "ka"]].merge(fi.a_keys, on="ka", how="inner")
    a = a[_in_scope(gaz, fi, a)]
    a["level"] = "A"
    rest = rows[~rows["rid"].isin(a["rid"])]
    if len(rest):
        kb_map = {s: compact(s) for s in pd.unique(rest["street"])}
        rest = rest.assign(kb=rest["street"].map(kb_map))
        b = rest[[*cols, "kb"]].merge(fi.b_keys, on="kb", how="inner")
        b = b[_in_scope(gaz, fi, b)]
        b["level"] = "B"
        a = pd.concat([a.drop(columns="ka"), b.drop(columns="kb")], ignore_index=True)
    else:
        a = a.drop(columns="ka")
    return a[["rid", "pos", "level"]].sort_values(["rid", "pos"], kind="stable")


def fast_match(gaz, parsed: list, hints: list[str], settings: GeocodeSettings
               ) -> dict[int, tuple]:
    """Answer what the fast path can of ``parsed`` (ParsedLocation per (text, hint) pair).

    Returns {position in ``parsed``: (x, y, kommunekode, quality, uncertainty_m, method,
    matched, reason)}; positions not in the dict go through ``match_parsed``.
    """
    fi = getattr(gaz, "_fast_index", None)
    if fi is None:
        fi = gaz._fast_index = build_index(gaz)
    if not fi.usable:
        return {}
    take = [j for j, p in enumerate(parsed)
            if p.kind in ("address", "house_near") and p.street and p.husnr is not None]
    if not take:
        return {}
    streets = [parsed[j].street for j in take]
    ka_map = a_keys(pd.unique(pd.Series(streets, dtype=object)))
    rows = pd.DataFrame({
        "rid": np.asarray(take, dtype=np.int64),
        "street": streets,
        "ka": [ka_map[s] for s in streets],
        "husnr": np.asarray([parsed[j].husnr for j in take], dtype=np.int64),
        "letter": [parsed[j].letter or "" for j in take],
        "postnr": [parsed[j].postnr or "" for j in take],
        "town": [parsed[j].town or "" for j in take],
        "hint": [hints[j] or "" for j in take],
        "near": [parsed[j].kind == "house_near" for j in take],
    })
    rows = rows[rows["ka"] != ""]
    rows = _scope_columns(gaz, rows)
    cand = _candidates(gaz, fi, rows)
    if cand.empty:
        return {}
    # house numbers: composite key lookup, first occurrence in the street's slice
    r = rows.set_index("rid")
    husnr = r["husnr"].reindex(cand["rid"]).to_numpy()
    letter = r["letter"].reindex(cand["rid"]).map(fi.letter_code).to_numpy()
    pos = cand["pos"].to_numpy()
    valid = ~pd.isna(letter) & (husnr >= 0) & (husnr <= _TAL_MAX)
    key = np.where(valid, (pos << _POS_SHIFT) | ((np.clip(husnr, 0, _TAL_MAX) + 1) << 6)
                   | np.where(valid, letter, 0).astype(np.int64), -1)
    at = np.searchsorted(fi.akey, key)
    at_c = np.minimum(at, max(len(fi.akey) - 1, 0))
    found = valid & (len(fi.akey) > 0) & (fi.akey[at_c] == key) if len(fi.akey) else np.zeros(len(key), bool)
    kglob = np.where(found, fi.afirst[at_c], -1) if len(fi.akey) else np.full(len(key), -1)
    cand = cand.assign(has_addr=fi.has_addr[pos], k=kglob, hit=kglob >= 0)
    g = cand.groupby("rid", sort=True)
    agg = pd.DataFrame({
        "level": g["level"].first(),
        "n_idx": g.size(),
        "n_streets": g["has_addr"].sum(),
        "n_exact": g["hit"].sum(),
    })
    agg = agg[(agg["n_streets"] > 0) & (agg["n_exact"] > 0)]
    if agg.empty:
        return {}
    exact = cand[cand["k"] >= 0]
    exact = exact[exact["rid"].isin(agg.index)]
    first = exact.groupby("rid", sort=True).first()
    agg["pos"] = first["pos"]
    agg["k"] = first["k"]
    ai = gaz.addresses
    # spread of several exact hits: the largest pairwise distance, as Gazetteer.spread
    spread = pd.Series(0.0, index=agg.index)
    multi = agg.index[agg["n_exact"] > 1]
    if len(multi):
        em = exact[exact["rid"].isin(multi)]
        kk = em["k"].to_numpy()
        pts = pd.DataFrame({"rid": em["rid"].to_numpy(), "x": ai.x[kk], "y": ai.y[kk]})
        pairs = pts.merge(pts, on="rid")
        dx = pairs["x_x"].to_numpy() - pairs["x_y"].to_numpy()
        dy = pairs["y_x"].to_numpy() - pairs["y_y"].to_numpy()
        pairs["d"] = np.sqrt(dx ** 2 + dy ** 2)
        spread.loc[multi] = pairs.groupby("rid")["d"].max().reindex(multi).to_numpy()
    agg["spread"] = spread
    r = r.loc[agg.index]
    return _answers(gaz, fi, agg, r, exact, settings)


_Q = np.array(["A", "B", "C", "none"], dtype=object)
_QI = {"A": 0, "B": 1, "C": 2, "none": 3}


def _answers(gaz, fi: FastIndex, agg: pd.DataFrame, r: pd.DataFrame, exact: pd.DataFrame,
             s: GeocodeSettings) -> dict[int, tuple]:
    """Quality, uncertainty, method, label and notes per handled row (see _match_address)."""
    ai = gaz.addresses
    n_exact = agg["n_exact"].to_numpy()
    spread = agg["spread"].to_numpy()
    too_far = (n_exact > 1) & (spread > s.ambiguous_max_spread_m)
    cand_cap = np.where(n_exact > 1, 2, 0)
    cand_cap = np.where((n_exact < agg["n_streets"].to_numpy()) & (agg["n_idx"].to_numpy() > 1),
                        2, cand_cap)
    level = agg["level"].map(_QI).to_numpy()
    cap = np.where(r["capped"].to_numpy(), 2, 0)
    q = np.maximum.reduce([level, cap, cand_cap])
    unc = np.where(q == 1, 15.0, 5.0)
    near = r["near"].to_numpy()
    unc = np.where(near, np.maximum(unc, 20.0), unc)
    extra = np.where(n_exact > 1, spread / 2, 0.0)
    unc = np.maximum(unc, extra)
    k = agg["k"].to_numpy()
    pos = agg["pos"].to_numpy()
    tal = ai.tal[k]
    bogstav = ai._strings("husnr_bogstav", k)
    postnr = ai._strings("postnr", k)
    postnrnavn = ai._strings("postnrnavn", k)
    vejnavn = fi.vejnavn[pos]
    kommune_all = fi.kommune
    husnr = np.where(tal >= 0, tal.astype(str).astype(object) + bogstav, bogstav)
    label = pd.Series(vejnavn + " " + husnr + ", " + postnr + " " + postnrnavn,
                      dtype=object).str.strip(" ,").tolist()
    note = np.where(agg["level"].to_numpy() == "B", "spelling/abbreviation", "").astype(object)
    capped = r["capped"].to_numpy()
    if capped.any():
        postnr_t, town_t, hint_t = r["postnr"].to_numpy(), r["town"].to_numpy(), r["hint"].to_numpy()
        for j in np.flatnonzero(capped).tolist():
            stated = " / ".join(p for p in (postnr_t[j], town_t[j],
                                            hint_t[j] and f"kommune {hint_t[j]}") if p) or "stated area"
            note[j] = "; ".join(n for n in (note[j], f"found only outside {stated}") if n)
    cands = np.where(n_exact > 1, n_exact.astype(str).astype(object) + " candidates", "")
    reason = ["; ".join(n for n in pair if n) or None for pair in zip(note.tolist(), cands.tolist())]
    rids = agg.index.tolist()
    if too_far.any():
        far = agg.index[too_far]
        ex = exact[exact["rid"].isin(far)]
        koms = (pd.DataFrame({"rid": ex["rid"].to_numpy(), "k": kommune_all[ex["pos"].to_numpy()]})
                .drop_duplicates().sort_values(["rid", "k"]).groupby("rid")["k"].agg(", ".join))
        for j in np.flatnonzero(too_far).tolist():
            reason[j] = (f"ambiguous: the name is found {n_exact[j]} places "
                         f"(kommuner {koms[rids[j]]}) up to {spread[j]:.0f} m apart")
    x, y = ai.x[k].tolist(), ai.y[k].tolist()
    kom = kommune_all[pos].tolist()
    quality = _Q[q].tolist()
    method = np.where(near, "house_near", "address").tolist()
    unc_l = unc.tolist()
    out: dict[int, tuple] = {}
    for j, rid in enumerate(rids):
        if too_far[j]:
            out[rid] = (None, None, None, "none", None, None, None, reason[j])
        else:
            out[rid] = (x[j], y[j], kom[j], quality[j], unc_l[j], method[j], label[j], reason[j])
    return out
