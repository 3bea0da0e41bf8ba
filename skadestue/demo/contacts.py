"""Emergency-ward contacts of the injured: hospital, arrival, diagnoses, discharge.

Every event that reaches an ER gets a first contact at the hospital serving its kommune;
~3 % are transferred the same day to another hospital (the first contact ends 'overflyttet')
and ~8 % come back for a control visit 1-14 days later. All contacts of one event share its
truth (event_id), so the linkage can be scored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from skadestue.vocab import SERIOUS_DIAGNOSIS_REGEX

HOSPITAL_PREFIX: dict[str, str] = {
    "SVS Esbjerg": "SVS", "SHS Aabenraa": "SHSA", "SHS Sønderborg": "SHSS",
    "SLB Kolding": "SLB", "OUH Odense": "OUH",
}
_WEST = {"SVS Esbjerg": 0.97, "SLB Kolding": 0.01, "OUH Odense": 0.02}
HOSPITAL_BY_KOMMUNE: dict[str, dict[str, float]] = {
    "0561": _WEST, "0563": _WEST, "0573": _WEST,
    "0575": {"SVS Esbjerg": 0.60, "SLB Kolding": 0.38, "OUH Odense": 0.02},
    "0510": {"SHS Aabenraa": 0.55, "SLB Kolding": 0.43, "OUH Odense": 0.02},
    "0580": {"SHS Aabenraa": 0.93, "SHS Sønderborg": 0.05, "OUH Odense": 0.02},
    "0540": {"SHS Sønderborg": 0.75, "SHS Aabenraa": 0.23, "OUH Odense": 0.02},
    "0550": {"SHS Aabenraa": 0.70, "SVS Esbjerg": 0.28, "OUH Odense": 0.02},
}
TRANSFER_SHARE = {"killed": 0.20, "serious": 0.12, "slight": 0.015, "unknown": 0.01}
RETURN_SHARE = 0.08

SERIOUS_DX = ("DS525", "DS720", "DS422", "DS828", "DS062", "DS270", "DS361", "DS220", "DS322", "DS020")
SLIGHT_DX = ("DS060", "DS800", "DS400", "DS300", "DT140", "DS934", "DS134", "DS610", "DS500", "DS900", "DS008")
UNKNOWN_DX = ("DZ038", "")



def _pick(rng: np.random.Generator, options: tuple[str, ...], n: int) -> np.ndarray:
    return np.array(options, dtype=object)[rng.integers(0, len(options), n)]


def first_hospital(rng: np.random.Generator, kommunekode: pd.Series) -> np.ndarray:
    """The hospital an injured person is taken to, by the accident's kommune."""
    out = np.empty(len(kommunekode), dtype=object)
    k = kommunekode.to_numpy()
    for code, mix in HOSPITAL_BY_KOMMUNE.items():
        m = k == code
        names = np.array(list(mix))
        p = np.array(list(mix.values()))
        out[m] = names[rng.choice(len(names), size=int(m.sum()), p=p / p.sum())]
    return out


def _transfer_destination(rng: np.random.Generator, first: np.ndarray) -> np.ndarray:
    r = rng.random(len(first))
    dest = np.where(r < 0.7, "OUH Odense", "SLB Kolding").astype(object)
    dest[first == "SHS Sønderborg"] = np.where(r[first == "SHS Sønderborg"] < 0.7, "SHS Aabenraa", "OUH Odense")
    dest[first == "OUH Odense"] = "SLB Kolding"
    dest[(first == "SLB Kolding") & (dest == "SLB Kolding")] = "OUH Odense"
    return dest


def diagnoses(rng: np.random.Generator, severity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Action diagnosis and secondary diagnoses fitting the true severity."""
    n = len(severity)
    dx = np.where(np.isin(severity, ["killed", "serious"]), _pick(rng, SERIOUS_DX, n), _pick(rng, SLIGHT_DX, n))
    dx = np.where(severity == "unknown", _pick(rng, UNKNOWN_DX, n), dx)
    # A fifth of the serious are soft-tissue injuries that were admitted.
    soft = (severity == "serious") & (rng.random(n) < 0.2)
    dx[soft] = _pick(rng, SLIGHT_DX, int(soft.sum()))
    extra = pd.Series(_pick(rng, SLIGHT_DX, n))
    two = extra + np.where(rng.random(n) < 0.5, " ", ",") + pd.Series(_pick(rng, SLIGHT_DX, n))
    r = rng.random(n)
    bi = np.where(r < 0.22, extra, np.where(r < 0.30, two, ""))
    bi[severity == "unknown"] = ""
    return dx.astype(object), bi.astype(object)


def discharge(rng: np.random.Generator, severity: np.ndarray, soft_serious: np.ndarray) -> np.ndarray:
    """How the contact ends: død / indlagt / hjem (transfers are set later)."""
    r = rng.random(len(severity))
    out = np.where(r < 0.93, "hjem", "indlagt").astype(object)
    serious = severity == "serious"
    out[serious] = np.where(r[serious] < 0.6, "indlagt", "hjem")
    out[serious & soft_serious] = "indlagt"
    killed = severity == "killed"
    out[killed] = np.where(r[killed] < 0.7, "død", "indlagt")
    out[severity == "unknown"] = "hjem"
    return out


def er_severity(diagnose: pd.Series, bidiagnoser: pd.Series, afslutning: pd.Series) -> np.ndarray:
    """Severity as the ingest derives it (vocab.py): død, fracture etc. or admitted, injury."""
    codes = diagnose.fillna("") + " " + bidiagnoser.fillna("")
    serious_dx = codes.str.contains(r"(?:^|[\s,])" + SERIOUS_DIAGNOSIS_REGEX.lstrip("^").replace("(", "(?:", 1),
                                     regex=True)
    injury = codes.str.contains(r"(?:^|[\s,])D[ST]", regex=True)
    return np.select(
        [afslutning == "død", serious_dx | afslutning.isin(["indlagt", "overflyttet"]), injury],
        ["killed", "serious", "slight"], "unknown").astype(object)


def er_contacts(ev: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """All ER contacts: first contacts, same-day transfers and control visits."""
    prim = ev[ev["in_er"]].copy()
    n = len(prim)
    prim["contact_type"] = "primary"
    prim["sygehus"] = first_hospital(rng, prim["kommunekode"])
    delay = np.clip(np.exp(rng.normal(np.log(40), 0.5, n)), 10, 120)
    prim["ankomst"] = (prim["ts"] + pd.to_timedelta(np.round(delay), unit="min")).to_numpy()
    sev = prim["severity"].to_numpy()
    dx, bi = diagnoses(rng, sev)
    prim["diagnose"], prim["bidiagnoser"] = dx, bi
    soft = (sev == "serious") & ~pd.Series(dx).str.match(SERIOUS_DIAGNOSIS_REGEX).to_numpy()
    prim["afslutning"] = discharge(rng, sev, soft)

    moved = rng.random(n) < prim["severity"].map(TRANSFER_SHARE).to_numpy()
    tr = prim[moved].copy()
    tr["contact_type"] = "transfer"
    tr["sygehus"] = _transfer_destination(rng, tr["sygehus"].to_numpy())
    tr["ankomst"] = tr["ankomst"] + pd.to_timedelta(rng.integers(60, 240, len(tr)), unit="min")
    tr["bidiagnoser"] = ""
    prim.loc[moved, "afslutning"] = "overflyttet"

    back = rng.random(n) < RETURN_SHARE
    rv = prim[back].copy()
    rv["contact_type"] = "return"
    day = rv["ankomst"].dt.normalize() + pd.to_timedelta(rng.integers(1, 15, len(rv)), unit="D")
    rv["ankomst"] = day + pd.to_timedelta(rng.integers(8 * 60, 16 * 60, len(rv)), unit="min")
    rv["afslutning"] = "hjem"
    rv["bidiagnoser"] = ""

    con = pd.concat([prim, tr, rv], ignore_index=True)
    con["severity_er"] = er_severity(con["diagnose"], con["bidiagnoser"], con["afslutning"])
    return _number_contacts(con, rng)


def _number_contacts(con: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """kontakt_id per hospital and year in order of arrival, e.g. SVS-2024-000123."""
    con = con.sort_values(["sygehus", "year", "ankomst", "event_id"], kind="stable").reset_index(drop=True)
    seq = con.groupby(["sygehus", "year"]).cumcount().to_numpy()
    keys = con[["sygehus", "year"]].drop_duplicates()
    keys["start"] = rng.integers(100, 900, len(keys))
    start = con.merge(keys, on=["sygehus", "year"], how="left")["start"].to_numpy()
    prefix = con["sygehus"].map(HOSPITAL_PREFIX)
    con["kontakt_id"] = prefix + "-" + con["year"].astype(str) + "-" + pd.Series(seq + start).map("{:06d}".format)
    return con
