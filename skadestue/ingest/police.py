"""Police accident and person reports (inputs.md §2, vejman.dk-style): typing rules for
staging.police_accident and staging.police_person."""

from __future__ import annotations

import numpy as np
import pandas as pd

from skadestue import vocab
from skadestue.config import Settings
from skadestue.ingest.checks import Findings
from skadestue.ingest.er import SEX_WORDS, note_invalid_cpr
from skadestue.ingest.parse import (
    format_time,
    normalise_words,
    parse_datetime,
    parse_float,
    parse_int,
    parse_km,
    parse_time,
    quoted,
    resolve_kommunekode,
    yes_no,
)
from skadestue.ingest.sources import CprFacts, SourceSpec, Typed

ACCIDENT_COLUMNS = (
    "UHELDS_ID", "UHELDSDATO", "KLOKKESLAET", "UHELDSART", "KODE_UHELDSSITUATION",
    "UHELDKOMMUNE", "VEJNAVN", "HUSNR", "KRYDSENDE_VEJ", "VEJKODE", "KM",
    "X_KOORDINAT", "Y_KOORDINAT", "ANTAL_DRAEBTE", "ANTAL_ALV_TILSKADEKOMNE",
    "ANTAL_LET_TILSKADEKOMNE", "SPRIT", "LYS", "VEJRFORHOLD", "UHELDSTEKST",
)
PERSON_COLUMNS = (
    "UHELDS_ID", "ELEMENTNR", "PERSONNR", "TRANSPORTMIDDEL", "PERSONART", "SKADESGRAD",
    "ALDER", "KOEN", "CPR",
)

#: Denmark in EPSG:25832, roughly (easting, northing).
DK_EASTING = (440_000.0, 900_000.0)
DK_NORTHING = (6_040_000.0, 6_410_000.0)


def _text(s: pd.Series) -> pd.Series:
    return s.astype("object").where(s.notna(), None)


def _whole_number(
    df: pd.DataFrame, col: str, label: str, rejects: Findings, *, minimum: int = 0
) -> pd.Series:
    """A non-negative whole-number column; present but unreadable -> quarantine."""
    value = parse_int(df[col])
    bad = df[col].notna() & (value.isna() | (value < minimum)).fillna(True)
    rejects.add(bad, label, lambda r: f"{label} " + quoted(df[col][r]) + f" is not a whole number >= {minimum}", df[col])
    return value


def check_coordinates(
    df: pd.DataFrame, rejects: Findings, notes: Findings
) -> tuple[pd.Series, pd.Series]:
    """X/Y as EPSG:25832 doubles.

    Unreadable or half-given coordinates quarantine the row. Coordinates outside Denmark do
    not: the accident and its injured persons are real, only the placing is wrong. Such rows
    load with the coordinates as delivered and a note; the geocoder flags them (``swapped``,
    ``outside_denmark``) and places the accident from its road name instead.
    """
    x, y = parse_float(df["x_koordinat"]), parse_float(df["y_koordinat"])
    for col, label, v in (("x_koordinat", "X_KOORDINAT", x), ("y_koordinat", "Y_KOORDINAT", y)):
        rejects.add(df[col].notna() & v.isna(), label,
                    lambda r, col=col, label=label: f"{label} " + quoted(df[col][r]) + " is not a number", df[col])
    half = x.notna() ^ y.notna()
    rejects.add(half, "X_KOORDINAT", "only one of X_KOORDINAT/Y_KOORDINAT is given",
                df["x_koordinat"].fillna("") + " / " + df["y_koordinat"].fillna(""))
    both = x.notna() & y.notna()
    inside = x.between(*DK_EASTING) & y.between(*DK_NORTHING)
    swapped = y.between(*DK_EASTING) & x.between(*DK_NORTHING)
    pair = df["x_koordinat"].astype("string") + " / " + df["y_koordinat"].astype("string")
    reason = "X/Y " + pair + " outside Denmark (EPSG:25832 E 440000-900000, N 6040000-6410000)"
    notes.add(both & ~inside & swapped, "X_KOORDINAT",
              reason + " (looks swapped); loaded, the geocoder checks it", pair)
    notes.add(both & ~inside & ~swapped, "X_KOORDINAT",
              reason + "; loaded, placed from the road name if possible", pair)
    return x, y


def accident_severity(art: pd.Series, draebte: pd.Series, alv: pd.Series, let: pd.Series) -> pd.Series:
    """The accident's severity: killed > serious > slight from UHELDSART and the counts."""
    art_sev = art.map(vocab.POLICE_UHELDSART)
    sev = np.select(
        [
            (art_sev.eq("killed") | draebte.gt(0)).fillna(False).astype(bool),
            alv.gt(0).fillna(False).astype(bool),
            let.gt(0).fillna(False).astype(bool),
            art_sev.eq("serious").fillna(False).astype(bool),
        ],
        ["killed", "serious", "slight", "serious"],
        default="unknown",
    )
    return pd.Series(sev, index=art.index, dtype="object")


def _codes(df: pd.DataFrame, settings: Settings, notes: Findings) -> dict[str, pd.Series]:
    """Kommunekode, vejkode (4 digits) and situation code (3 digits), zero-padded."""
    kommunekode, unresolved = resolve_kommunekode(df["uheldkommune"], settings.kommuner)
    notes.add(unresolved, "UHELDKOMMUNE",
              lambda r: "UHELDKOMMUNE " + quoted(df["uheldkommune"][r]) + " is not a known kommunekode; left empty",
              df["uheldkommune"])
    vejkode = df["vejkode"].astype("string")
    vejkode = vejkode.where(~vejkode.str.fullmatch(r"\d{1,4}").fillna(False), vejkode.str.zfill(4))
    situation = df["kode_uheldssituation"].astype("string")
    situation = situation.where(~situation.str.fullmatch(r"\d{1,3}").fillna(False), situation.str.zfill(3))
    return {"kommunekode": kommunekode, "vejkode": _text(vejkode), "kode_uheldssituation": _text(situation)}


def type_accident_rows(df: pd.DataFrame, cpr: CprFacts | None, settings: Settings) -> Typed:
    """Type police accident rows for staging.police_accident."""
    rejects, notes = Findings(), Findings()
    rejects.add(df["uhelds_id"].isna(), "UHELDS_ID", "missing UHELDS_ID")
    rejects.add(df["uheldsdato"].isna(), "UHELDSDATO", "missing UHELDSDATO")
    dato = parse_datetime(df["uheldsdato"]).dt.normalize()
    rejects.add(df["uheldsdato"].notna() & dato.isna(), "UHELDSDATO",
                lambda r: "UHELDSDATO " + quoted(df["uheldsdato"][r]) + " is not a date", df["uheldsdato"])
    klokken = parse_time(df["klokkeslaet"])
    rejects.add(df["klokkeslaet"].notna() & klokken.isna(), "KLOKKESLAET",
                lambda r: "KLOKKESLAET " + quoted(df["klokkeslaet"][r]) + " is not a time (HH:MM)", df["klokkeslaet"])
    draebte = _whole_number(df, "antal_draebte", "ANTAL_DRAEBTE", rejects)
    alv = _whole_number(df, "antal_alv_tilskadekomne", "ANTAL_ALV_TILSKADEKOMNE", rejects)
    let = _whole_number(df, "antal_let_tilskadekomne", "ANTAL_LET_TILSKADEKOMNE", rejects)
    art = normalise_words(df["uheldsart"])
    notes.add(df["uheldsart"].notna() & ~art.isin(list(vocab.POLICE_UHELDSART)), "UHELDSART",
              lambda r: "UHELDSART " + quoted(df["uheldsart"][r]) + " not recognised; severity from the counts",
              df["uheldsart"])
    km_m = parse_km(df["km"])
    rejects.add(df["km"].notna() & km_m.isna(), "KM",
                lambda r: "KM " + quoted(df["km"][r]) + " is not a kilometre position (e.g. 12/0450)", df["km"])
    x, y = check_coordinates(df, rejects, notes)
    sprit, sprit_unknown = yes_no(df["sprit"])
    notes.add(sprit_unknown, "SPRIT", lambda r: "SPRIT " + quoted(df["sprit"][r]) + " is not J/N; left empty", df["sprit"])
    staging = pd.DataFrame(
        {
            "uheld_id": df["uhelds_id"],
            "uheldsdato": dato,
            "klokkeslaet": format_time(klokken),
            "uheldsart": df["uheldsart"],
            **_codes(df, settings, notes),
            "vejnavn": df["vejnavn"],
            "husnr": df["husnr"],
            "krydsende_vej": df["krydsende_vej"],
            "km_m": km_m,
            "x": x,
            "y": y,
            "antal_draebte": draebte,
            "antal_alv": alv,
            "antal_let": let,
            "sprit": sprit,
            "lys": df["lys"],
            "vejrforhold": df["vejrforhold"],
            "severity": accident_severity(art, draebte, alv, let),
        },
        index=df.index,
    )
    return Typed(staging, rejects, notes)


def person_road_user(df: pd.DataFrame, rejects: Findings) -> tuple[pd.Series, pd.Series]:
    """TRANSPORTMIDDEL code -> road user; an unknown code -> quarantine; blank -> unknown."""
    code = parse_int(df["transportmiddel"])
    rejects.add(df["transportmiddel"].notna() & code.isna(), "TRANSPORTMIDDEL",
                lambda r: "TRANSPORTMIDDEL " + quoted(df["transportmiddel"][r]) + " is not a code", df["transportmiddel"])
    label = code.map(vocab.POLICE_TRANSPORT_CODES)
    rejects.add(code.notna() & label.isna(), "TRANSPORTMIDDEL",
                lambda r: "unknown TRANSPORTMIDDEL code " + code[r].astype("string"), df["transportmiddel"])
    # 80 fixed object / 90 none are element types, not road users of a person.
    label = label.where(label.isin(vocab.ROAD_USERS) | label.isna(), "other")
    return code, label.astype("object").where(label.notna(), "unknown")


def type_person_rows(df: pd.DataFrame, cpr: CprFacts | None, settings: Settings) -> Typed:
    """Type police person rows for staging.police_person (age from CPR is set in build_core)."""
    assert cpr is not None
    rejects, notes = Findings(), Findings()
    for col in ("uhelds_id", "elementnr", "personnr"):
        rejects.add(df[col].isna(), col.upper(), f"missing {col.upper()}")
    elementnr = _whole_number(df, "elementnr", "ELEMENTNR", rejects, minimum=1)
    personnr = _whole_number(df, "personnr", "PERSONNR", rejects, minimum=1)
    transportmiddel, road_user = person_road_user(df, rejects)
    personart = _whole_number(df, "personart", "PERSONART", rejects)
    skadesgrad = df["skadesgrad"].astype("string").str.upper().str.strip()
    severity = skadesgrad.map(vocab.POLICE_SKADESGRAD)
    rejects.add(skadesgrad.notna() & severity.isna(), "SKADESGRAD",
                lambda r: "unknown SKADESGRAD " + quoted(df["skadesgrad"][r]) + " (expected D, A, L or U)", df["skadesgrad"])
    alder = _whole_number(df, "alder", "ALDER", rejects)
    out_of_range = alder.notna() & (alder > settings.ingest.max_age)
    rejects.add(out_of_range, "ALDER",
                lambda r: "age " + alder[r].astype("string") + f" out of range (0-{settings.ingest.max_age})", df["alder"])
    note_invalid_cpr(cpr, "CPR", notes)
    koen = normalise_words(df["koen"]).map(SEX_WORDS)
    notes.add(~cpr.valid & df["koen"].notna() & koen.isna(), "KOEN",
              lambda r: "KOEN " + quoted(df["koen"][r]) + " is not M/K; sex left empty", df["koen"])
    sex = cpr.sex.where(cpr.valid, koen.astype("object"))
    staging = pd.DataFrame(
        {
            "uheld_id": df["uhelds_id"],
            "elementnr": elementnr,
            "personnr": personnr,
            "transportmiddel": transportmiddel,
            "road_user": road_user,
            "personart": personart,
            "skadesgrad": _text(skadesgrad.where(severity.notna())),
            "severity": severity.astype("object").where(severity.notna(), "unknown"),
            "age": alder,
            "sex": sex.where(sex.notna(), None),
            "cpr_pseudonym": cpr.pseudonym,
            "birth_date": cpr.birth_date,
        },
        index=df.index,
    )
    return Typed(staging, rejects, notes)


ACCIDENT_SPEC = SourceSpec(
    source="police_accident",
    columns=ACCIDENT_COLUMNS,
    required=("UHELDS_ID", "UHELDSDATO"),
    key=("UHELDS_ID",),
    staging_key=("uheld_id",),
    cpr_column=None,
    narrative_column="UHELDSTEKST",
    free_text_columns=(),
    raw_table="raw.police_accident",
    staging_table="staging.police_accident",
    type_rows=type_accident_rows,
)

PERSON_SPEC = SourceSpec(
    source="police_person",
    columns=PERSON_COLUMNS,
    required=("UHELDS_ID", "ELEMENTNR", "PERSONNR"),
    key=("UHELDS_ID", "ELEMENTNR", "PERSONNR"),
    staging_key=("uheld_id", "elementnr", "personnr"),
    cpr_column="CPR",
    narrative_column=None,
    free_text_columns=(),
    raw_table="raw.police_person",
    staging_table="staging.police_person",
    type_rows=type_person_rows,
)
