"""The inbox: ER exports per hospital and year, police exports per year (inputs.md §1-2).

Each hospital writes its own dialect: SVS Esbjerg UTF-8 with ',' and ISO dates; SHS Aabenraa
Windows-1252 with ';', CRLF and Danish dates; SHS Sønderborg UTF-8 with a BOM and
'05.03.2024 14:32'; SLB Kolding adds an unknown column; OUH Odense orders its columns
differently. Planted on purpose: ~0.3 % bad rows, one correction delivery re-sending ~20
rows with a changed diagnosis, and one exact duplicate file under another name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from skadestue.config import REGION_KOMMUNER
from skadestue.demo.contacts import SERIOUS_DX, SLIGHT_DX, er_severity
from skadestue.demo.people import format_cpr, malform_cpr
from skadestue.demo.police import PERSON_COLUMNS, UHELD_COLUMNS
from skadestue.demo.texts import fast_strftime, fritekst, ulykkessted

log = logging.getLogger(__name__)

ER_COLUMNS = ["kontakt_id", "sygehus", "ankomst", "ulykke_tid", "cpr", "koen", "alder", "transportmiddel",
              "modpart", "ulykkessted", "kommune", "diagnose", "bidiagnoser", "afslutning", "fritekst"]


@dataclass(frozen=True)
class HospitalFormat:
    """How one hospital's export looks."""

    slug: str
    encoding: str
    sep: str
    datetime_format: str
    line_end: str = "\n"
    text_share: float = 0.3  # transportmiddel/modpart as Danish text rather than a code
    extra_column: str | None = None
    columns: tuple[str, ...] = tuple(ER_COLUMNS)


HOSPITAL_FORMATS: dict[str, HospitalFormat] = {
    "SVS Esbjerg": HospitalFormat("svs_esbjerg", "utf-8", ",", "%Y-%m-%d %H:%M", text_share=0.2),
    "SHS Aabenraa": HospitalFormat("shs_aabenraa", "cp1252", ";", "%d-%m-%Y %H:%M", "\r\n", text_share=0.75),
    "SHS Sønderborg": HospitalFormat("shs_soenderborg", "utf-8-sig", ";", "%d.%m.%Y %H:%M", text_share=0.5),
    "SLB Kolding": HospitalFormat("slb_kolding", "utf-8", ",", "%Y-%m-%d %H:%M:%S", text_share=0.3,
                                  extra_column="afdeling"),
    "OUH Odense": HospitalFormat("ouh_odense", "utf-8", ";", "%d-%m-%Y %H:%M", text_share=0.1,
                                 columns=("sygehus", "kontakt_id", "ankomst", "ulykke_tid", "cpr", "alder", "koen",
                                          "transportmiddel", "modpart", "diagnose", "bidiagnoser", "afslutning",
                                          "ulykkessted", "kommune", "fritekst")),
}

ER_CODE = {"pedestrian": "1", "cyclist": "2", "e_bike": "2", "moped": "3", "motorcycle": "4", "car": "5",
           "van": "6", "truck": "7", "bus": "7", "other": "8", "unknown": "9", "none": "0"}
ER_TEXT: dict[str, tuple[str, ...]] = {
    "pedestrian": ("fodgænger", "til fods", "Fodgænger"), "cyclist": ("cykel", "Cykel", "alm. cykel", "cyklist"),
    "e_bike": ("el-cykel", "elcykel", "El-cykel"), "moped": ("knallert", "knallert 30", "knallert 45"),
    "motorcycle": ("motorcykel", "MC", "scooter"), "car": ("bil", "personbil", "Bil"),
    "van": ("varebil", "varevogn"), "truck": ("lastbil",), "bus": ("bus", "rutebus"),
    "other": ("løbehjul", "traktor", "andet"), "unknown": ("uoplyst",), "none": ("ingen", "eneulykke", "0"),
    "fixed_object": ("fast genstand", "træ", "fast genstand"),
}
BAD_KINDS = ("impossible_date", "age_140", "unknown_transport_code", "blank_kontakt_id")


def _texts(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for key, options in ER_TEXT.items():
        m = values == key
        out[m] = np.array(options, dtype=object)[rng.integers(0, len(options), int(m.sum()))]
    return out


def _mode_strings(rng: np.random.Generator, values: np.ndarray, text_share: np.ndarray) -> np.ndarray:
    """A road user as the ward writes it: a code, or Danish text (always text for e-bikes 70 %)."""
    code = pd.Series(values).map(ER_CODE).to_numpy()
    text = _texts(rng, values)
    use_text = (rng.random(len(values)) < text_share) | pd.isna(code)
    use_text |= (values == "e_bike") & (rng.random(len(values)) < 0.7)
    return np.where(use_text, text, code)


def render_er(con: pd.DataFrame, acc: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The delivered string columns of every ER contact (before bad rows and file layout)."""
    n = len(con)
    out = pd.DataFrame(index=con.index)
    out["kontakt_id"] = con["kontakt_id"]
    out["sygehus"] = con["sygehus"]
    fmt = con["sygehus"].map(HOSPITAL_FORMATS)
    dt_fmt = fmt.map(lambda f: f.datetime_format)
    out["ankomst"] = ""
    out["ulykke_tid"] = ""
    r = rng.random(n)
    is_return = (con["contact_type"] == "return").to_numpy()
    for f in dt_fmt.unique():
        m = (dt_fmt == f).to_numpy()
        out.loc[m, "ankomst"] = fast_strftime(con.loc[m, "ankomst"], f)
        full = fast_strftime(con.loc[m, "ts"], f)
        bare = fast_strftime(con.loc[m, "ts"], "%H:%M")
        rm = r[m]
        out.loc[m, "ulykke_tid"] = np.where(rm < 0.35, "", np.where(rm < 0.70, bare, full))
        out.loc[m & is_return, "ulykke_tid"] = np.where(rm[is_return[m]] < 0.6, "", full[is_return[m]])
    cpr = con["cpr"].fillna("").to_numpy()
    malformed = (rng.random(n) < 0.01) & (cpr != "")
    typed = format_cpr(rng, cpr, 0.3)
    typed[malformed] = malform_cpr(rng, cpr[malformed])
    out["cpr"] = typed
    no_valid = (cpr == "") | malformed
    fill = no_valid | (rng.random(n) < 0.2)
    out["koen"] = np.where(fill & (rng.random(n) < 0.95), con["sex"], "")
    out["alder"] = np.where(fill & (rng.random(n) < 0.95), con["age"].astype(str), "")
    text_share = fmt.map(lambda f: f.text_share).to_numpy()
    out["transportmiddel"] = _mode_strings(rng, con["road_user"].to_numpy(), text_share)
    out["modpart"] = _mode_strings(rng, con["counterpart"].to_numpy(), text_share)
    ref = acc.set_index("accident_id").loc[con["accident_id"], ["kind", "street", "husnr", "cross", "town", "postnr",
                                                               "landmark", "roundabout"]].reset_index(drop=True)
    ref.index = con.index
    ref["road_user"] = con["road_user"]
    sted = ulykkessted(ref, rng, blank_share=0.10)
    later_blank = np.where(con["contact_type"] == "primary", 0.0, np.where(is_return, 0.6, 0.5))
    sted[rng.random(n) < later_blank] = ""
    out["ulykkessted"] = sted
    kom = con["kommunekode"].fillna("")
    style = rng.random(n)
    out["kommune"] = np.where(style < 0.24, kom.map(REGION_KOMMUNER).fillna(""),
                              np.where(style < 0.42, kom.str.lstrip("0"), np.where(style < 0.60, kom, "")))
    out["diagnose"] = con["diagnose"]
    out["bidiagnoser"] = con["bidiagnoser"]
    out["afslutning"] = con["afslutning"]
    out["fritekst"] = fritekst(con["road_user"], con["counterpart"], out["cpr"], rng)
    # Windows exports pad some fields with trailing spaces.
    pad = (con["sygehus"] == "SHS Aabenraa").to_numpy() & (rng.random(n) < 0.05)
    for col in ("transportmiddel", "kommune", "afslutning"):
        out.loc[pad, col] = out.loc[pad, col].astype(str) + " "
    return out


def plant_bad_rows(rows: pd.DataFrame, con: pd.DataFrame, rng: np.random.Generator,
                   exclude: np.ndarray) -> pd.Series:
    """Spoil ~0.3 % of rows (each kind at least once); returns the reason per row ('' = fine)."""
    reason = pd.Series("", index=rows.index, dtype=object)
    pool = np.flatnonzero(~exclude & (con["contact_type"] == "primary").to_numpy())
    n_bad = min(len(pool), max(len(BAD_KINDS), int(round(0.003 * len(rows)))))
    pick = rows.index[rng.choice(pool, size=n_bad, replace=False)]
    kinds = np.array(BAD_KINDS)[np.arange(n_bad) % len(BAD_KINDS)]
    for kind, idx in zip(kinds, pick):
        reason[idx] = kind
        if kind == "impossible_date":
            f = HOSPITAL_FORMATS[rows.at[idx, "sygehus"]].datetime_format
            year = int(con.at[idx, "year"])
            rows.at[idx, "ankomst"] = pd.Timestamp(year=year, month=2, day=1, hour=10, minute=5).strftime(
                f.replace("%d", "31"))
        elif kind == "age_140":
            rows.at[idx, "cpr"], rows.at[idx, "alder"], rows.at[idx, "koen"] = "", "140", con.at[idx, "sex"]
        elif kind == "unknown_transport_code":
            rows.at[idx, "transportmiddel"] = "14"
        else:
            rows.at[idx, "kontakt_id"] = ""
    return reason


def pick_corrections(rows: pd.DataFrame, con: pd.DataFrame, rng: np.random.Generator, n: int = 20) -> pd.Index:
    """Up to ``n`` rows of the last year of SVS Esbjerg (else the first hospital) to be
    re-delivered with another diagnosis."""
    hospital = "SVS Esbjerg" if (con["sygehus"] == "SVS Esbjerg").any() else str(con["sygehus"].iloc[0])
    year = int(con["year"].max())
    pool = rows.index[(con["sygehus"] == hospital).to_numpy() & (con["year"] == year).to_numpy()
                      & (con["contact_type"] == "primary").to_numpy()]
    return pd.Index(rng.choice(pool, size=min(n, len(pool)), replace=False)).sort_values()


def _new_diagnosis(rng: np.random.Generator, old: pd.Series) -> np.ndarray:
    """A different action diagnosis: slight injuries re-coded as fractures and vice versa."""
    serious = old.isin(SERIOUS_DX).to_numpy()
    new = np.where(serious, np.array(SLIGHT_DX)[rng.integers(0, len(SLIGHT_DX), len(old))],
                   np.array(SERIOUS_DX)[rng.integers(0, len(SERIOUS_DX), len(old))])
    return new


def write_csv(frame: pd.DataFrame, path: Path, sep: str, encoding: str, line_end: str = "\n") -> None:
    """Write all-text CSV bytes (strict encoding: a character cp1252 cannot hold is an error)."""
    text = frame.to_csv(index=False, sep=sep, lineterminator=line_end)
    Path(path).write_bytes(text.encode(encoding))


def write_er_files(rows: pd.DataFrame, con: pd.DataFrame, er_dir: Path, rng: np.random.Generator,
                   corrected: pd.Index) -> tuple[pd.DataFrame, list[Path]]:
    """One file per hospital and year, plus a correction and a duplicate file.

    Returns per-row file_name, line_no, corrected flag and final diagnose/afslutning.
    """
    er_dir.mkdir(parents=True, exist_ok=True)
    placed = pd.DataFrame({"file_name": "", "line_no": 0, "corrected": False,
                           "diagnose": con["diagnose"]}, index=rows.index)
    files: list[Path] = []
    for (hospital, year), grp in rows.groupby([con["sygehus"], con["year"]], sort=True):
        f = HOSPITAL_FORMATS[hospital]
        out = grp.copy()
        if f.extra_column:
            out[f.extra_column] = np.where(rng.random(len(out)) < 0.8, "Akutmodtagelsen", "Skadestuen")
        cols = list(f.columns) + ([f.extra_column] if f.extra_column else [])
        path = er_dir / f"{f.slug}_{year}.csv"
        write_csv(out[cols], path, f.sep, f.encoding, f.line_end)
        files.append(path)
        placed.loc[grp.index, "file_name"] = f"skadestue/{path.name}"
        placed.loc[grp.index, "line_no"] = np.arange(len(grp)) + 2
    if len(corrected):
        corr_hospital = str(con.at[corrected[0], "sygehus"])
        last_year = int(con.at[corrected[0], "year"])
        f = HOSPITAL_FORMATS[corr_hospital]
        fix = rows.loc[corrected].copy()
        fix["diagnose"] = _new_diagnosis(rng, fix["diagnose"])
        if f.extra_column:
            fix[f.extra_column] = "Akutmodtagelsen"
        cols = list(f.columns) + ([f.extra_column] if f.extra_column else [])
        path = er_dir / f"{f.slug}_{last_year}_rettelse.csv"
        write_csv(fix[cols], path, f.sep, f.encoding, f.line_end)
        files.append(path)
        placed.loc[corrected, "corrected"] = True
        placed.loc[corrected, "diagnose"] = fix["diagnose"]
    first = sorted(p for p in files if "rettelse" not in p.name)[0]
    dup = first.with_name(first.stem + "_kopi.csv")
    dup.write_bytes(first.read_bytes())
    files.append(dup)
    return placed, files


def write_police_files(acc: pd.DataFrame, per: pd.DataFrame, police_dir: Path) -> list[Path]:
    """uheld_YYYY.csv and personer_YYYY.csv, ';'-separated UTF-8."""
    police_dir.mkdir(parents=True, exist_ok=True)
    files = []
    per_year = per.merge(acc[["UHELDS_ID", "year"]], on="UHELDS_ID")
    for year in sorted(acc["year"].unique()):
        a = acc[acc["year"] == year].sort_values("UHELDS_ID")
        p = per_year[per_year["year"] == year].sort_values(["UHELDS_ID", "ELEMENTNR", "PERSONNR"])
        for name, frame, cols in ((f"uheld_{year}.csv", a, UHELD_COLUMNS), (f"personer_{year}.csv", p, PERSON_COLUMNS)):
            path = police_dir / name
            write_csv(frame[cols].astype(str), path, ";", "utf-8")
            files.append(path)
    return files


def final_er_severity(placed: pd.DataFrame, con: pd.DataFrame) -> np.ndarray:
    """ER severity after corrections (what core should hold)."""
    return er_severity(placed["diagnose"], con["bidiagnoser"], con["afslutning"])
