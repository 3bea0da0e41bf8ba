"""Emergency-ward traffic-injury contacts (inputs.md §1): typing rules for staging.er_contact."""

from __future__ import annotations

import numpy as np
import pandas as pd

from skadestue import vocab
from skadestue.config import Settings
from skadestue.ingest.checks import Findings
from skadestue.ingest.parse import (
    age_at,
    map_mode,
    normalise_words,
    on_distinct,
    parse_datetime,
    parse_int,
    parse_time,
    quoted,
    resolve_kommunekode,
)
from skadestue.ingest.sources import CprFacts, SourceSpec, Typed
from skadestue.pseudonym import redact_free_text_series

ER_COLUMNS = (
    "kontakt_id", "sygehus", "ankomst", "ulykke_tid", "cpr", "koen", "alder",
    "transportmiddel", "modpart", "ulykkessted", "kommune", "diagnose", "bidiagnoser",
    "afslutning", "fritekst",
)
ER_REQUIRED = ("kontakt_id", "sygehus", "ankomst")

#: `koen` values when the CPR does not give the sex.
SEX_WORDS = {"m": "M", "mand": "M", "dreng": "M", "k": "K", "kvinde": "K", "pige": "K", "f": "K"}
AFSLUTNING_WORDS = {
    "hjem": "hjem", "indlagt": "indlagt", "overflyttet": "overflyttet",
    "død": "død", "doed": "død", "dod": "død", "døde": "død",
}
_ANY_INJURY_RE = r"^D[ST]\d"


def resolve_ulykke_tid(text: pd.Series, ankomst: pd.Series, rejects: Findings) -> pd.Series:
    """Accident time: a full timestamp, or a bare time on the day of ``ankomst`` (the day
    before when that would be later than arrival). Unreadable or after-arrival -> quarantine."""
    full = parse_datetime(text)
    bare = parse_time(text)
    on_day = ankomst.dt.normalize() + bare
    on_day = on_day.where(~(on_day > ankomst), on_day - pd.Timedelta(days=1))
    resolved = full.where(full.notna(), on_day)
    unreadable = text.notna() & full.isna() & bare.isna()
    rejects.add(
        unreadable, "ulykke_tid",
        lambda r: "ulykke_tid " + quoted(text[r]) + " is not a date or a time (HH:MM)", text,
    )
    after = full.notna() & ankomst.notna() & (full > ankomst)
    if after.any():  # strftime is slow: only for the rows that need the message
        rejects.add(
            after, "ulykke_tid",
            "ulykke_tid " + quoted(text[after]) + " is after ankomst "
            + ankomst[after].dt.strftime("%Y-%m-%d %H:%M").fillna(""),
            text,
        )
    return resolved


def normalise_diagnosis(codes: pd.Series) -> pd.Series:
    """SKS diagnosis codes: upper case, no dots/spaces, a missing ``D`` prefix added."""
    s = codes.astype("string").str.upper().str.replace(r"[\s.]", "", regex=True)
    s = s.str.replace(r"^([ST]\d)", r"D\1", regex=True)
    return s.mask(s == "")


def normalise_bidiagnoser(text: pd.Series) -> pd.Series:
    """Space/comma separated codes -> the normalised codes joined by single spaces."""
    s = text.astype("string").str.upper().str.replace(".", "", regex=False)
    s = s.str.replace(r"[\s,;]+", " ", regex=True).str.strip()
    s = s.str.replace(r"(^|\s)([ST]\d)", r"\1D\2", regex=True)
    return s.mask(s == "")


def split_codes(text: pd.Series) -> pd.Series:
    """Space-joined codes -> one code per entry (index = row)."""
    return text.str.split(" ").explode().dropna()


def er_severity(diagnose: pd.Series, bidiag_codes: pd.Series, afslutning: pd.Series) -> pd.Series:
    """killed | serious | slight | unknown by the rule in skadestue/vocab.py."""
    parts = [c.astype("string") for c in (diagnose.dropna(), bidiag_codes) if len(c)]
    codes = pd.concat(parts) if parts else pd.Series(dtype="string")
    serious = codes.str.match(vocab.SERIOUS_DIAGNOSIS_REGEX)
    injury = codes.str.match(_ANY_INJURY_RE)
    any_serious = serious.groupby(level=0).any().reindex(diagnose.index, fill_value=False)
    any_injury = injury.groupby(level=0).any().reindex(diagnose.index, fill_value=False)
    admitted = afslutning.isin(["indlagt", "overflyttet"])
    sev = np.select(
        [afslutning.eq("død").fillna(False), (any_serious | admitted).fillna(False), any_injury],
        ["killed", "serious", "slight"],
        default="unknown",
    )
    return pd.Series(sev, index=diagnose.index, dtype="object")


def note_invalid_cpr(cpr: CprFacts, column: str, notes: Findings) -> None:
    """An invalid CPR is treated as missing (no identity, no birth date), with a note; the
    number itself is never written to the note."""
    notes.add(
        cpr.status == "invalid", column,
        f"{column} is not a valid CPR number (DDMMYY-SSSS with a real birth date); "
        "treated as missing, age and sex from the other columns",
    )


def _age_and_sex(
    df: pd.DataFrame, cpr: CprFacts, injury_date: pd.Series, settings: Settings,
    rejects: Findings, notes: Findings,
) -> tuple[pd.Series, pd.Series]:
    """Age at the accident and sex: from a valid CPR, else from ``alder`` / ``koen``."""
    valid = cpr.valid
    note_invalid_cpr(cpr, "cpr", notes)
    alder = parse_int(df["alder"])
    rejects.add(
        ~valid & df["alder"].notna() & alder.isna(), "alder",
        lambda r: "alder " + quoted(df["alder"][r]) + " is not a whole number", df["alder"],
    )
    age = age_at(cpr.birth_date, injury_date).where(valid, alder)
    bad = age.notna() & ~age.between(0, settings.ingest.max_age)
    limit = f" out of range (0-{settings.ingest.max_age})"
    rejects.add(bad & valid, "cpr", lambda r: "age " + age[r].astype("string") + " from the CPR birth date" + limit)
    rejects.add(bad & ~valid, "alder", lambda r: "age " + age[r].astype("string") + limit, df["alder"])
    (koen,) = on_distinct(df["koen"], lambda u: (normalise_words(u).map(SEX_WORDS).astype("object"),))
    notes.add(
        ~valid & df["koen"].notna() & koen.isna(), "koen",
        lambda r: "koen " + quoted(df["koen"][r]) + " is not M/K; sex left empty", df["koen"],
    )
    sex = cpr.sex.where(valid, koen.astype("object"))
    return age, sex.where(sex.notna(), None)


def _modes(df: pd.DataFrame, rejects: Findings, notes: Findings) -> tuple[pd.Series, pd.Series]:
    """road_user from ``transportmiddel`` and counterpart from ``modpart``."""
    out = []
    for col, codes, allowed, target in (
        ("transportmiddel", vocab.ER_TRANSPORT_CODES, vocab.ROAD_USERS, "road_user"),
        ("modpart", vocab.ER_COUNTERPART_CODES, vocab.COUNTERPARTS, "counterpart"),
    ):
        label, bad_code, unknown = map_mode(df[col], codes, vocab.ER_TRANSPORT_TEXT, allowed)
        text = df[col]
        rejects.add(bad_code, col, lambda r: f"unknown {col} code " + text[r].astype("string"), text)
        notes.add(
            unknown, col, lambda r: f"{col} " + quoted(text[r]) + f" not recognised; {target} set to unknown", text
        )
        out.append(label)
    return out[0], out[1]


def type_er_rows(df: pd.DataFrame, cpr: CprFacts | None, settings: Settings) -> Typed:
    """Type ER rows for staging.er_contact; problems -> quarantine, unknown words -> notes."""
    assert cpr is not None
    rejects, notes = Findings(), Findings()
    for col in ("kontakt_id", "sygehus", "ankomst"):
        rejects.add(df[col].isna(), col, f"missing {col}")
    ankomst = parse_datetime(df["ankomst"])
    rejects.add(
        df["ankomst"].notna() & ankomst.isna(), "ankomst",
        lambda r: "ankomst " + quoted(df["ankomst"][r]) + " is not a date", df["ankomst"],
    )
    ulykke_tid = resolve_ulykke_tid(df["ulykke_tid"], ankomst, rejects)
    injury_date = ulykke_tid.fillna(ankomst).dt.normalize()
    age, sex = _age_and_sex(df, cpr, injury_date, settings, rejects, notes)
    road_user, counterpart = _modes(df, rejects, notes)
    kommunekode, unresolved = on_distinct(
        df["kommune"], lambda u: resolve_kommunekode(u, settings.kommuner)
    )
    notes.add(
        unresolved, "kommune",
        lambda r: "kommune " + quoted(df["kommune"][r]) + " is not a known municipality; kommunekode left empty",
        df["kommune"],
    )
    (afslutning,) = on_distinct(
        df["afslutning"], lambda u: (normalise_words(u).map(AFSLUTNING_WORDS).astype("object"),)
    )
    notes.add(
        df["afslutning"].notna() & afslutning.isna(), "afslutning",
        lambda r: "afslutning " + quoted(df["afslutning"][r]) + " not recognised (hjem/indlagt/overflyttet/død)",
        df["afslutning"],
    )
    (diagnose,) = on_distinct(df["diagnose"], lambda u: (normalise_diagnosis(u),))
    (bidiag_text,) = on_distinct(df["bidiagnoser"], lambda u: (normalise_bidiagnoser(u),))
    bidiag = split_codes(bidiag_text)
    staging = pd.DataFrame(
        {
            "sygehus": df["sygehus"],
            "kontakt_id": df["kontakt_id"],
            "ankomst": ankomst,
            "ulykke_tid": ulykke_tid,
            "injury_date": injury_date,
            "cpr_pseudonym": cpr.pseudonym,
            "birth_date": cpr.birth_date,
            "sex": sex,
            "age": age,
            "road_user": road_user,
            "counterpart": counterpart,
            "ulykkessted": redact_free_text_series(df["ulykkessted"]),
            "kommunekode": kommunekode,
            "diagnose": diagnose.astype("object").where(diagnose.notna(), None),
            "bidiagnoser": bidiag_text.astype("object").where(bidiag_text.notna(), None),
            "afslutning": afslutning.astype("object").where(afslutning.notna(), None),
            "severity": er_severity(diagnose, bidiag, afslutning),
        },
        index=df.index,
    )
    return Typed(staging, rejects, notes)


ER_SPEC = SourceSpec(
    source="er_contact",
    columns=ER_COLUMNS,
    required=ER_REQUIRED,
    key=("sygehus", "kontakt_id"),
    staging_key=("sygehus", "kontakt_id"),
    cpr_column="cpr",
    narrative_column="fritekst",
    free_text_columns=("ulykkessted",),
    raw_table="raw.er_contact",
    staging_table="staging.er_contact",
    type_rows=type_er_rows,
    staging_select="* REPLACE (string_split(bidiagnoser, ' ') AS bidiagnoser)",
)
