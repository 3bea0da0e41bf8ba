"""Manual review of unplaced locations, and the corrections file that fixes them (issue 4).

Unplaced texts stay unplaced (x/y NULL, quality ``none``) and are listed in the view
``quality.geocode_review`` with the reason and up to five candidates. A person fixes them in a
CSV (``GeocodeSettings.corrections_file``; ``,`` or ``;``, UTF-8)::

    location_text,kommunekode_hint,x,y,address,quality,note
    "krydset ved Brugsen, Bramming",0561,489312.0,6147001.5,,B,checked on the map
    Kongensgade ved banken,0561,,,"Kongensgade 40, 6700 Esbjerg",,

``location_text`` is matched case- and space-insensitively; an empty ``kommunekode_hint``
applies to every hint. Either ``x``/``y`` (EPSG:25832 metres) or ``address`` (geocoded now;
it must place) is given. ``quality`` defaults to B (a person's placement is safe, not exact).
Rows that cannot be used go to ``quality.quarantine`` (stage ``geocode``) with the reason.
The corrections are re-applied on every run, so removing a line undoes it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from skadestue.config import GeocodeSettings
from skadestue.geocode.match import Gazetteer
from skadestue.geocode.normalise import compact
from skadestue.geocode.parse import ParsedLocation

log = logging.getLogger(__name__)

#: EPSG:25832 box around Denmark (with Bornholm); outside it a correction is refused.
DK_BOX = (400_000.0, 6_030_000.0, 910_000.0, 6_410_000.0)
CORRECTION_COLUMNS = ("location_text", "kommunekode_hint", "x", "y", "address", "quality",
                      "uncertainty_m", "note")


class CorrectionsFileError(ValueError):
    """A corrections file that cannot be read at all, with what to do about it."""


# -- candidates -------------------------------------------------------------------------------

def candidates(gaz: Gazetteer, parsed: ParsedLocation, hint: str, settings: GeocodeSettings,
               limit: int = 5) -> list[dict]:
    """The streets (or junction partners) a person should look at for an unplaced text.

    Searched in the stated area first (postcode, town, kommune hint), else everywhere; one
    entry per street with its point and the name score (0-100)."""
    names = [n for n in (parsed.street, parsed.street2, parsed.landmark) if n]
    if not names:
        return []
    scopes = gaz.scopes(parsed, hint)
    label, scope, _ = scopes[0]
    choices = gaz._choices(label, scope)
    out: list[dict] = []
    seen: set[int] = set()
    for name in names:
        key = compact(name)
        if not key:
            continue
        for hit, score, _ in process.extract(key, list(choices), scorer=fuzz.WRatio,
                                             limit=limit, score_cutoff=60):
            for i in choices[hit]:
                if i in seen:
                    continue
                seen.add(i)
                st = gaz.streets.iloc[i]
                out.append({"label": f"{st['vejnavn']} ({st['kommunekode']})",
                            "kommunekode": st["kommunekode"], "x": round(float(st["x"]), 1),
                            "y": round(float(st["y"]), 1), "score": round(float(score), 1)})
    out.sort(key=lambda c: -c["score"])
    return out[:limit]


def candidates_many(gaz: Gazetteer, items: list[tuple[ParsedLocation, str]], settings: GeocodeSettings,
                    limit: int = 5, block: int = 256) -> list[list[dict]]:
    """:func:`candidates` for many unplaced texts at once, with the same answers: the name
    scores come from one ``rapidfuzz.process.cdist`` per search area (blocks of ``block``
    distinct keys, float64 scores) instead of one ``process.extract`` per name, and the best
    ``limit`` per name are taken in the same order (score, then position among the choices).
    A first load with thousands of unplaced texts otherwise spends minutes here."""
    wanted: dict[str, set[str]] = {}
    plans: list[list[tuple[str, str]]] = []
    for parsed, hint in items:
        names = [n for n in (parsed.street, parsed.street2, parsed.landmark) if n]
        if not names:
            plans.append([])
            continue
        label, scope, _ = gaz.scopes(parsed, hint)[0]
        gaz._choices(label, scope)
        keys = [(label, k) for k in (compact(n) for n in names) if k]
        for lab, k in keys:
            wanted.setdefault(lab, set()).add(k)
        plans.append(keys)
    hits: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for label, keys in wanted.items():
        choice_list = list(gaz._choices_cache[label])
        keys = sorted(keys)
        for start in range(0, len(keys), block):
            chunk = keys[start:start + block]
            scores = process.cdist(chunk, choice_list, scorer=fuzz.WRatio, score_cutoff=60,
                                   dtype=np.float64, workers=max(1, settings.workers))
            for key, row in zip(chunk, scores):
                idx = np.flatnonzero(row >= 60)
                best = idx[np.lexsort((idx, -row[idx]))][:limit]
                hits[(label, key)] = [(choice_list[j], float(row[j])) for j in best]
    out: list[list[dict]] = []
    col = gaz.col      # street columns as lists: no pandas row per candidate
    for keys in plans:
        found: list[dict] = []
        seen: set[int] = set()
        for label, key in keys:
            choices = gaz._choices_cache[label]
            for hit, score in hits[(label, key)]:
                for i in choices[hit]:
                    if i in seen:
                        continue
                    seen.add(i)
                    kom = col["kommunekode"][i]
                    found.append({"label": f"{col['vejnavn'][i]} ({kom})",
                                  "kommunekode": kom, "x": round(float(col["x"][i]), 1),
                                  "y": round(float(col["y"][i]), 1), "score": round(float(score), 1)})
        found.sort(key=lambda c: -c["score"])
        out.append(found[:limit])
    return out


def candidates_json(gaz: Gazetteer, parsed: ParsedLocation, hint: str,
                    settings: GeocodeSettings) -> str | None:
    """:func:`candidates` as the JSON stored in ``core.geocode_result.candidates``."""
    found = candidates(gaz, parsed, hint, settings)
    return json.dumps(found, ensure_ascii=False) if found else None


# -- the corrections file ---------------------------------------------------------------------

def read_corrections(path: Path) -> pd.DataFrame:
    """The corrections CSV as strings, with ``line_no``; an empty frame when there is none."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=[*CORRECTION_COLUMNS, "line_no"])
    try:
        df = pd.read_csv(path, sep=None, engine="python", dtype=str, keep_default_na=False,
                         encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise CorrectionsFileError(
            f"{path}: cannot read the geocode corrections ({exc}); save it as UTF-8 CSV with "
            f"the columns {', '.join(CORRECTION_COLUMNS)}") from exc
    df.columns = [c.strip().lower() for c in df.columns]
    if "location_text" not in df.columns:
        raise CorrectionsFileError(
            f"{path}: no 'location_text' column (found {list(df.columns)}); the header must "
            f"name {', '.join(CORRECTION_COLUMNS)}")
    if not ({"x", "y"} <= set(df.columns) or "address" in df.columns):
        raise CorrectionsFileError(f"{path}: give either x and y (EPSG:25832) or an address column")
    for c in CORRECTION_COLUMNS:
        if c not in df.columns:
            df[c] = ""
    df = df[list(CORRECTION_COLUMNS)].apply(lambda s: s.str.strip())
    df["line_no"] = range(2, len(df) + 2)
    return df


def _number(v: str) -> float | None:
    """'489312,5' or '489312.5' -> float; None when blank or not a number."""
    try:
        return float(v.replace(",", ".")) if v else None
    except ValueError:
        return None


def check_correction(row: pd.Series) -> str | None:
    """Why a correction row cannot be used (None when it can)."""
    if not row["location_text"]:
        return "location_text is empty: copy the text from quality.geocode_review"
    hint = row["kommunekode_hint"]
    if hint and not (hint.isdigit() and len(hint) <= 4):
        return f"kommunekode_hint '{hint}' is not a kommunekode (4 digits, e.g. 0561)"
    if row["quality"] and row["quality"].upper() not in ("A", "B", "C"):
        return f"quality '{row['quality']}' must be A, B or C"
    x, y = _number(row["x"]), _number(row["y"])
    if row["x"] or row["y"]:
        if x is None or y is None:
            return f"x/y '{row['x']}'/'{row['y']}' are not both numbers"
        if abs(x) <= 180 and abs(y) <= 90:
            return "x/y look like longitude/latitude degrees; give EPSG:25832 metres (easting, northing)"
        x0, y0, x1, y1 = DK_BOX
        if x0 <= y <= x1 and y0 <= x <= y1:
            return "x and y look swapped: x is the easting (400000-910000), y the northing"
        if not (x0 <= x <= x1 and y0 <= y <= y1):
            return f"x/y ({x:.0f}, {y:.0f}) lie outside Denmark in EPSG:25832"
        return None
    if not row["address"]:
        return "give either x and y or an address"
    return None


def corrections_frame(con: duckdb.DuckDBPyConnection, path: Path, settings: GeocodeSettings,
                      run_id: str, geocode) -> pd.DataFrame:
    """Usable corrections as cache rows; rejected lines go to ``quality.quarantine``.

    ``geocode(frame)`` geocodes the address corrections (only called when there are some)."""
    df = read_corrections(path)
    if df.empty:
        return df
    df["problem"] = [check_correction(r) for _, r in df.iterrows()]
    df["hint"] = df["kommunekode_hint"].map(lambda h: h.zfill(4) if h else "")
    df["x_num"] = df["x"].map(_number).astype(float)
    df["y_num"] = df["y"].map(_number).astype(float)
    df["method"] = "manual"
    df["matched"] = df["note"].where(df["note"] != "", "manual correction")
    df["q"] = df["quality"].str.upper().where(df["quality"] != "", "B")
    df["unc"] = df["uncertainty_m"].map(_number).astype(float).fillna(settings.manual_uncertainty_m)
    by_address = df["problem"].isna() & df["x_num"].isna()
    if by_address.any():
        todo = df[by_address]
        res = geocode(pd.DataFrame({"location_text": todo["address"].values,
                                    "kommunekode_hint": todo["hint"].values}, index=todo.index))
        ok = res["quality"].isin(["A", "B"])
        for i in todo.index:
            if ok[i]:
                df.loc[i, ["x_num", "y_num", "unc"]] = [res.at[i, "x"], res.at[i, "y"],
                                                        res.at[i, "uncertainty_m"]]
                df.loc[i, ["method", "matched"]] = ["manual_address", res.at[i, "matched"]]
                if df.at[i, "quality"] == "":
                    df.loc[i, "q"] = res.at[i, "quality"]
            else:
                df.loc[i, "problem"] = (f"the address '{df.at[i, 'address']}' is not an A/B "
                                        f"match ({res.at[i, 'quality']}: {res.at[i, 'reason']})")
    bad = df[df["problem"].notna()]
    if len(bad):
        quarantine = pd.DataFrame({
            "run_id": run_id, "source": "geocode_correction", "stage": "geocode",
            "file_name": str(path), "line_no": bad["line_no"].astype(int),
            "record_key": bad["location_text"], "column_name": None,
            "value": bad["location_text"], "reason": bad["problem"]})
        con.register("_geocode_corr_bad", quarantine)
        con.execute("""INSERT INTO quality.quarantine (run_id, source, stage, file_name, line_no,
                       record_key, column_name, value, reason)
                       SELECT run_id, source, stage, file_name, line_no, record_key, column_name,
                              value, reason FROM _geocode_corr_bad""")
        con.unregister("_geocode_corr_bad")
        log.warning("%d geocode corrections rejected (see quality.quarantine)", len(bad))
    good = df[df["problem"].isna()].copy()
    good["text_key"] = good["location_text"].str.lower().str.split().str.join(" ")
    # a later line for the same text and hint wins
    good = good.drop_duplicates(["text_key", "hint"], keep="last")
    return good.rename(columns={"x_num": "cx", "y_num": "cy", "q": "cquality",
                                "unc": "cuncertainty_m"})[
        ["text_key", "hint", "cx", "cy", "cquality", "cuncertainty_m", "method", "matched",
         "line_no"]]
