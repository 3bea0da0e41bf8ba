"""Offline geocoding of accident locations against the gazetteer (design.md step 4).

Public functions:

* :func:`normalise`, :func:`parse_location` - text handling, no database needed;
* :func:`geocode_texts` - the core algorithm on a frame of (location_text, kommunekode_hint);
* :func:`geocode_er_contacts` - fills the cache ``core.geocode_result`` for new ER texts and
  copies the answers onto ``core.er_contact``;
* :func:`geocode_police_accidents` - checks police X/Y against the stated kommune (swapped
  axes, outside the kommune/Denmark) and geocodes road names where X/Y is missing or unusable.

Unplaced texts are listed in ``quality.geocode_review`` with their best candidates; a person's
fixes in ``GeocodeSettings.corrections_file`` are re-applied every run (see
:mod:`skadestue.geocode.review`). :mod:`skadestue.geocode.testset` builds the accuracy test set.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import duckdb
import pandas as pd

from skadestue.config import Settings
from skadestue.db import query
from skadestue.geocode.cache import load_gazetteer
from skadestue.geocode.match import (
    RESULT_COLUMNS, Gazetteer, MatchResult, geocode_frame, match_parsed, normalise_hint,
)
from skadestue.geocode.normalise import normalise
from skadestue.geocode.parse import DEFAULT_TOWNS, ParsedLocation, parse_location
from skadestue.geocode.review import candidates_many, corrections_frame
from skadestue.vocab import GEOCODE_QUALITIES

__all__ = [
    "Gazetteer", "MatchResult", "ParsedLocation", "geocode_er_contacts",
    "geocode_police_accidents", "geocode_texts", "normalise", "parse_location",
]

log = logging.getLogger(__name__)


def _settings(settings: Settings | None) -> Settings:
    return settings if settings is not None else Settings()


def geocode_texts(
    con: duckdb.DuckDBPyConnection,
    texts: pd.DataFrame,
    settings: Settings | None = None,
    *,
    gazetteer: Gazetteer | None = None,
    fast: bool = True,
) -> pd.DataFrame:
    """Geocode ``texts[location_text, kommunekode_hint]`` against ``gazetteer.*`` in ``con``.

    The gazetteer is read once into memory (or passed in); only distinct pairs are parsed and
    matched. Returns one row per input row (same index) with the columns of
    ``core.geocode_result``; ``kommunekode_hint`` comes back as a 4-digit code or ''.
    Address-like texts are resolved in bulk (:mod:`skadestue.geocode.fast`); ``fast=False``
    matches every text one by one (same answers, slower; the reference for tests).
    """
    if "location_text" not in texts.columns:
        raise ValueError("geocode_texts needs a 'location_text' column "
                         f"(got {list(texts.columns)})")
    gaz = gazetteer or Gazetteer.load(con)
    return geocode_frame(gaz, texts, _settings(settings).geocode, fast=fast)


def _quality_counts(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, int]:
    counts = {q: 0 for q in GEOCODE_QUALITIES}
    for q, n in con.execute(
            f"SELECT geocode_quality, count(*) FROM {table} GROUP BY 1").fetchall():
        counts[q] = n
    return counts


def _with_candidates(gaz: Gazetteer, result: pd.DataFrame, settings: Settings) -> pd.Series:
    """Best candidates (JSON) for the unplaced rows of a geocode result, None elsewhere."""
    out = pd.Series([None] * len(result), index=result.index, dtype=object)
    towns = gaz.towns | DEFAULT_TOWNS
    todo = list(result.index[result["quality"] == "none"])
    items = [(parse_location(result.at[i, "location_text"], towns), result.at[i, "kommunekode_hint"])
             for i in todo]
    for i, found in zip(todo, candidates_many(gaz, items, settings.geocode)):
        out[i] = json.dumps(found, ensure_ascii=False) if found else None
    return out


def _apply_corrections(con: duckdb.DuckDBPyConnection, s: Settings, run_id: str,
                       gaz: Gazetteer | None) -> int:
    """Re-apply the corrections file to the cache; returns the corrections read."""
    path = s.geocode.corrections_file
    if path is None or not Path(path).exists():
        return 0
    state = {"gaz": gaz}

    def geocode(frame: pd.DataFrame) -> pd.DataFrame:
        state["gaz"] = state["gaz"] or load_gazetteer(con)
        return geocode_texts(con, frame, s, gazetteer=state["gaz"])

    corr = corrections_frame(con, Path(path), s.geocode, run_id, geocode)
    if corr.empty:
        return 0
    con.register("_geocode_corrections", corr)
    con.execute(query("geocode_apply_corrections"))
    con.unregister("_geocode_corrections")
    return len(corr)


def geocode_er_contacts(con: duckdb.DuckDBPyConnection, settings: Settings | None = None, *,
                        run_id: str = "geocode") -> dict:
    """Geocode ``core.er_contact`` through the cache ``core.geocode_result``.

    Only (text, hint) pairs not yet cached are geocoded; unplaced ones get their best
    candidates for ``quality.geocode_review``. Manual corrections (``corrections_file``) are
    re-applied every run: last run's manual rows are forgotten first, so a removed line is
    undone. Returns the contacts per quality (A/B/C/police/none) plus ``texts_geocoded``
    (new), ``texts_cached`` (reused), ``corrections`` (usable lines), ``texts_corrected``
    and ``review`` (distinct texts awaiting a person), and ``gazetteer_cache`` (hit | miss |
    off | unused, see :mod:`skadestue.geocode.cache`).

    A night costs what it brings: only new texts are geocoded, the gazetteer comes from the
    memory-mapped cache, and only the contacts whose values differ from their cache row are
    written (``geocode_er_update``), with the same result as a full run.
    """
    s = _settings(settings)
    con.execute("DELETE FROM core.geocode_result WHERE method IN ('manual', 'manual_address')")
    new = con.execute(query("geocode_er_new_texts")).df()
    cached = con.execute("SELECT count(*) FROM core.geocode_result").fetchone()[0]
    gaz = None
    cache_report: dict = {"gazetteer_cache": "unused"}
    if len(new):
        gaz = load_gazetteer(con, report=cache_report)
        result = geocode_texts(con, new, s, gazetteer=gaz)
        result["location_text"] = new["location_text"].values      # the cache keys as stored
        result["kommunekode_hint"] = new["kommunekode_hint"].values
        result["candidates"] = _with_candidates(gaz, result, s)
        cols = [*RESULT_COLUMNS, "candidates"]
        con.register("_geocode_new", result[cols])
        con.execute(f"INSERT INTO core.geocode_result ({', '.join(cols)}) "
                    f"SELECT {', '.join(cols)} FROM _geocode_new")
        con.unregister("_geocode_new")
    n_corrections = _apply_corrections(con, s, run_id, gaz)
    con.execute(query("geocode_er_update"))
    counts: dict = _quality_counts(con, "core.er_contact")
    counts["texts_geocoded"] = len(new)
    counts["texts_cached"] = cached
    counts["corrections"] = n_corrections
    counts["texts_corrected"] = con.execute(
        "SELECT count(*) FROM core.geocode_result WHERE method LIKE 'manual%'").fetchone()[0]
    counts["review"] = con.execute("SELECT count(*) FROM quality.geocode_review").fetchone()[0]
    counts.update(cache_report)
    log.info("ER contacts geocoded: %s", counts)
    return counts


#: What the police step leaves in an accident row, hashed (core.police_accident.geocode_hash).
POLICE_GEOCODE_HASH = ("hash(p.delivery_id, p.kommunekode, p.vejnavn, p.husnr, p.krydsende_vej, "
                       "p.x, p.y, p.geocode_quality, p.geocode_uncertainty_m, p.xy_flag)")

_HUSNR = re.compile(r"^\s*(\d{1,4})\s*([A-Za-z]?)\s*$")


def police_location(vejnavn: object, husnr: object, krydsende_vej: object) -> ParsedLocation:
    """The police's structured road fields as a ParsedLocation (no free-text guessing)."""
    def text(v: object) -> str:
        return "" if v is None or (isinstance(v, float) and v != v) else str(v).strip()

    vej, nr, kryds = text(vejnavn), text(husnr), text(krydsende_vej)
    label = " / ".join(p for p in (f"{vej} {nr}".strip(), kryds) if p)
    if not vej:
        return ParsedLocation("blank", label)
    m = _HUSNR.match(nr)
    if m:
        return ParsedLocation("address", label, street=vej, husnr=int(m.group(1)),
                              letter=m.group(2).upper())
    if kryds:
        return ParsedLocation("junction", label, street=vej, street2=kryds)
    return ParsedLocation("street", label, street=vej)


def _geocode_police_rows(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame,
                         settings: Settings) -> pd.DataFrame:
    """Geocode police road fields for the given accidents (distinct field tuples only)."""
    keys = ["vejnavn", "husnr", "krydsende_vej", "kommunekode"]
    if rows.empty:
        return pd.DataFrame(columns=["uheld_id", "gx", "gy", "gquality", "gunc"])
    gaz = load_gazetteer(con)
    distinct = rows[keys].drop_duplicates()
    answers = {}
    for vej, nr, kryds, kom in distinct.itertuples(index=False):
        r = match_parsed(gaz, police_location(vej, nr, kryds),
                         normalise_hint(kom, gaz.kommune_names), settings.geocode)
        answers[(vej, nr, kryds, kom)] = r
    res = [answers[tuple(t)] for t in rows[keys].itertuples(index=False)]
    return pd.DataFrame({"uheld_id": rows["uheld_id"].values,
                         "gx": [r.x for r in res], "gy": [r.y for r in res],
                         "gquality": [r.quality for r in res],
                         "gunc": [r.uncertainty_m for r in res]})


def _police_decisions(chk: pd.DataFrame) -> pd.DataFrame:
    """Vectorised: the flag and whether to swap / geocode, per accident."""
    has_xy = chk["has_xy"].fillna(False).astype(bool)
    has_poly = chk["has_polygon"].fillna(False).astype(bool)
    inside = chk["inside"].fillna(False).astype(bool)
    swapped = chk["swapped_inside"].fillna(False).astype(bool) & ~inside
    in_dk = chk["in_denmark"].fillna(False).astype(bool)
    keep = has_xy & (~has_poly | inside)
    out = pd.DataFrame({"uheld_id": chk["uheld_id"]})
    out["flag"] = None
    out.loc[has_xy & has_poly & swapped, "flag"] = "swapped"
    out.loc[has_xy & has_poly & ~inside & ~swapped & in_dk, "flag"] = "outside_kommune"
    out.loc[has_xy & has_poly & ~inside & ~swapped & ~in_dk, "flag"] = "outside_denmark"
    out["keep"] = keep
    out["swap"] = has_xy & has_poly & swapped
    out["geocode"] = ~keep & ~out["swap"]
    return out


def geocode_police_accidents(con: duckdb.DuckDBPyConnection,
                             settings: Settings | None = None) -> dict:
    """Check and complete ``core.police_accident`` x/y (see module doc).

    X/Y inside the stated kommune (or no polygon for it) -> kept, quality 'police'; swapped
    axes inside -> swapped, flag 'swapped'; outside the kommune -> flag 'outside_kommune' and the
    road fields are geocoded (the police point is kept if that fails); outside Denmark -> flag
    'outside_denmark', geocoded or not placed. Missing X/Y -> geocoded (A/B/C/none).
    Returns accidents per quality plus counts per flag (whole table) and ``checked`` (the
    accidents checked this run).

    Only accidents that are new or changed since they were checked are checked: the stage
    leaves a hash of each accident's geocode columns (``geocode_hash``); a row whose hash is
    missing (new from core) or no longer matches (core replaced it) is checked again. A
    checked row is never re-checked from its own output (a swapped or geocoded point would
    then pass as the police's). After a new gazetteer or a new border tolerance, rebuild core
    (``skadestue run --full``) to re-check every accident from its delivered X/Y.
    """
    s = _settings(settings)
    sql = (query("geocode_police_check").replace("$tolerance", str(float(s.geocode.police_border_tolerance_m)))
           .replace("$geocode_hash", POLICE_GEOCODE_HASH))
    chk = con.execute(sql).df()
    dec = _police_decisions(chk)
    todo = chk[dec["geocode"].values]
    geo = _geocode_police_rows(con, todo, s)
    df = chk[["uheld_id", "x", "y"]].merge(dec, on="uheld_id").merge(geo, on="uheld_id", how="left")
    placed = df["gquality"].isin(["A", "B", "C"])
    df["new_x"] = df["x"].where(df["keep"] | (df["flag"] == "outside_kommune"))
    df["new_y"] = df["y"].where(df["keep"] | (df["flag"] == "outside_kommune"))
    df.loc[df["swap"], "new_x"] = df.loc[df["swap"], "y"]
    df.loc[df["swap"], "new_y"] = df.loc[df["swap"], "x"]
    df.loc[placed, "new_x"] = df.loc[placed, "gx"]
    df.loc[placed, "new_y"] = df.loc[placed, "gy"]
    df["quality"] = "none"
    df.loc[df["new_x"].notna(), "quality"] = "police"
    df.loc[placed, "quality"] = df.loc[placed, "gquality"]
    df["uncertainty_m"] = df["gunc"].where(placed)
    con.register("_police_geo", df[["uheld_id", "new_x", "new_y", "quality", "uncertainty_m", "flag"]])
    con.execute("""
        UPDATE core.police_accident AS p
        SET x = g.new_x, y = g.new_y, geocode_quality = g.quality,
            geocode_uncertainty_m = g.uncertainty_m, xy_flag = g.flag
        FROM _police_geo AS g WHERE p.uheld_id = g.uheld_id""")
    con.execute(f"""
        UPDATE core.police_accident AS p SET geocode_hash = {POLICE_GEOCODE_HASH}
        WHERE p.uheld_id IN (SELECT uheld_id FROM _police_geo)""")
    con.unregister("_police_geo")
    counts: dict = _quality_counts(con, "core.police_accident")
    flags = dict(con.execute("SELECT xy_flag, count(*) FROM core.police_accident "
                             "WHERE xy_flag IS NOT NULL GROUP BY 1").fetchall())
    for flag in ("swapped", "outside_kommune", "outside_denmark"):
        counts[flag] = int(flags.get(flag, 0))
    counts["checked"] = len(df)
    log.info("police accidents checked/geocoded: %s", counts)
    return counts
