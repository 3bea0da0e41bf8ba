"""Vectorised typing of delivered text columns: dates, times, numbers, codes, municipalities.

Every parser takes a text series (None = missing, already stripped) and returns the typed
series with missing values where the text could not be read; callers compare "present in the
file" with "typed" to find the rows to quarantine.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd

from skadestue.pseudonym import assemble_dates, extract_numbers

_ISO_RE = (
    r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"
    r"(?:[ T]+(?P<H>\d{1,2})[:.](?P<M>\d{2})(?:[:.](?P<S>\d{2})(?:\.\d+)?)?)?$"
)
_DK_RE = (
    r"^(?P<d>\d{1,2})[-./](?P<m>\d{1,2})[-./](?P<y>\d{4})"
    r"(?:[ T]+(?:kl\.?\s*)?(?P<H>\d{1,2})[:.]?(?P<M>\d{2})(?:[:.](?P<S>\d{2}))?)?$"
)
_TIME_RE = r"^(?:kl\.?\s*)?(?P<H>\d{1,2})(?:[:.](?P<M>\d{2})(?:[:.](?P<S>\d{2}))?|(?P<M2>\d{2}))$"


def _num(frame: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(frame[col]).astype("float64")


def parse_datetime(text: pd.Series) -> pd.Series:
    """ISO (``2024-03-05``, ``2024-03-05 14:32``, ``2024-03-05T14:32:00``) or Danish
    (``05-03-2024``, ``05.03.2024 14:32``, ``05/03/2024``) dates -> datetime64; NaT if not a date.
    """
    iso = extract_numbers(text, _ISO_RE)
    dk = extract_numbers(text, _DK_RE)
    is_iso = ~np.isnan(iso["y"])
    part = {k: np.where(is_iso, iso[k], dk[k]) for k in ("y", "m", "d", "H", "M", "S")}
    date = assemble_dates(pd.Series(part["y"], index=text.index), part["m"], part["d"])
    hour, minute, sec = (np.nan_to_num(part[c], nan=0.0) for c in ("H", "M", "S"))
    ok_time = (hour < 24) & (minute < 60) & (sec < 60)
    stamp = date + pd.to_timedelta(hour * 3600 + minute * 60 + sec, unit="s")
    return stamp.where(ok_time)


def parse_time(text: pd.Series) -> pd.Series:
    """``14:32``, ``14.32``, ``1432``, ``14:32:05`` -> timedelta since midnight; NaT if not a time."""
    parts = extract_numbers(text, _TIME_RE)
    hour = parts["H"]
    minute = np.where(np.isnan(parts["M"]), parts["M2"], parts["M"])
    sec = np.nan_to_num(parts["S"], nan=0.0)
    ok = ~np.isnan(hour) & ~np.isnan(minute) & (hour < 24) & (minute < 60) & (sec < 60)
    # whole nanoseconds, and 0 where not a time (pandas' float-to-timedelta cast warns of an
    # overflow on NaN in some layouts); those become NaT below
    nanos = np.round(np.where(ok, hour * 3600 + minute * 60 + sec, 0.0) * 1e9).astype("int64")
    return pd.Series(pd.to_timedelta(nanos, unit="ns"), index=text.index).where(ok)


def format_time(delta: pd.Series) -> pd.Series:
    """timedelta since midnight -> ``HH:MM:SS`` text (DuckDB casts it to TIME); None if NaT."""
    secs = delta.dt.total_seconds()
    out = (
        (secs // 3600).astype("Int64").astype("string").str.zfill(2)
        + ":" + ((secs % 3600) // 60).astype("Int64").astype("string").str.zfill(2)
        + ":" + (secs % 60).astype("Int64").astype("string").str.zfill(2)
    )
    return out.astype("object").where(secs.notna(), None)


def parse_int(text: pd.Series) -> pd.Series:
    """Whole numbers (``34``, ``007``, ``-3``) -> Int64; NA if not a whole number."""
    s = text.astype("string").str.strip()
    ok = s.str.fullmatch(r"[-+]?\d{1,9}").fillna(False)
    return pd.to_numeric(s.where(ok), errors="coerce").astype("Int64")


def parse_float(text: pd.Series) -> pd.Series:
    """Decimal numbers with ``.`` or decimal comma (``557123,45``; ``557.123,45``) -> float."""
    s = text.astype("string").str.strip().str.replace(r"\s", "", regex=True)
    both = s.str.contains(".", regex=False) & s.str.contains(",", regex=False)
    s = s.where(~both.fillna(False), s.str.replace(".", "", regex=False))
    s = s.str.replace(",", ".", regex=False)
    ok = s.str.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)").fillna(False)
    return pd.to_numeric(s.where(ok), errors="coerce").astype("float64")


def parse_km(text: pd.Series) -> pd.Series:
    """Kilometre position ``12/0450`` (km/m) or ``12.450`` / ``12,450`` (km) -> metres (Int64)."""
    s = text.astype("string").str.strip().str.replace(" ", "", regex=False)
    slash = s.str.extract(r"^(?P<km>\d{1,4})/(?P<m>\d{1,4})$")
    km_m = _num(slash, "km") * 1000 + _num(slash, "m")
    ok_m = _num(slash, "m") < 1000
    dec = s.str.extract(r"^(?P<km>\d{1,4})(?:[.,](?P<frac>\d{1,3}))?$")
    frac = dec["frac"].fillna("").str.ljust(3, "0")
    km_dec = _num(dec, "km") * 1000 + pd.to_numeric(frac.where(frac != "000", "0")).astype("float64")
    metres = km_m.where(ok_m).fillna(km_dec)
    return metres.round().astype("Int64")


def normalise_words(text: pd.Series) -> pd.Series:
    """Lower case, stripped, inner whitespace collapsed (for vocabulary look-ups)."""
    return text.astype("string").str.lower().str.strip().str.replace(r"\s+", " ", regex=True)


def fold_name(name: str) -> str:
    """A spelling-insensitive key for place names: Åbenrå = Aabenraa, Fanø = Fanoe."""
    s = name.lower().strip()
    s = re.sub(r"\s+kommune$", "", s)
    s = s.replace("å", "a").replace("ø", "o").replace("æ", "ae")
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii")
    s = s.replace("aa", "a").replace("oe", "o")
    return re.sub(r"[^a-z]", "", s)


#: DAGI kommunekoder run from 0101 (København) to 0860 (Hjørring).
KOMMUNEKODE_RANGE = (101, 860)


def resolve_kommunekode(text: pd.Series, kommuner: dict[str, str]) -> tuple[pd.Series, pd.Series]:
    """``Esbjerg`` / ``561`` / ``0561`` / ``0561 Esbjerg`` -> ``'0561'``.

    Names are looked up in ``kommuner`` (code -> name) spelling-insensitively; numeric codes of
    any Danish municipality are accepted and zero-padded. Returns (kommunekode, unresolved),
    where ``unresolved`` marks present values that could not be resolved.
    """
    s = text.astype("string").str.strip()
    digits = s.str.extract(r"^(\d{1,4})(?:\s+\D.*)?$")[0]
    code_num = pd.to_numeric(digits).astype("float64")
    in_range = code_num.between(*KOMMUNEKODE_RANGE)
    by_code = digits.str.zfill(4).where(in_range)
    names = {fold_name(n): c for c, n in kommuner.items()}
    distinct = s[s.notna() & digits.isna()].unique()
    folded = {v: names.get(fold_name(v)) for v in distinct}
    by_name = s.map(folded)
    code = by_code.astype("object").where(by_code.notna(), by_name.astype("object"))
    code = code.where(pd.notna(code), None)
    unresolved = s.notna() & pd.Series(code, index=s.index).isna()
    return code, unresolved.fillna(False).astype(bool)


def on_distinct(text: pd.Series, fn) -> tuple[pd.Series, ...]:
    """Run ``fn`` (series -> tuple of series) once per distinct value and spread the results
    back over the rows: code and word columns have few distinct values, even in big files."""
    codes, uniques = pd.factorize(text.astype("object"), use_na_sentinel=False)
    results = fn(pd.Series(uniques, dtype="object").where(pd.notna(uniques), None))
    return tuple(
        pd.Series(r.to_numpy()[codes], index=text.index, dtype=r.dtype) for r in results
    )


def map_mode(
    text: pd.Series,
    codes: dict[str, str],
    words: dict[str, str],
    allowed: tuple[str, ...],
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Map a transport code (``2``) or Danish word (``el-cykel``) to the vocabulary.

    Returns (label, bad_code, unknown_text); see :func:`_map_mode_values`.
    """
    return on_distinct(text, lambda u: _map_mode_values(u, codes, words, allowed))


def _map_mode_values(
    text: pd.Series,
    codes: dict[str, str],
    words: dict[str, str],
    allowed: tuple[str, ...],
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Map a transport code (``2``) or Danish word (``el-cykel``) to the vocabulary.

    Returns (label, bad_code, unknown_text): missing -> 'unknown'; an unknown numeric code
    sets ``bad_code`` (the row must be quarantined); unknown or not-allowed text -> 'unknown'
    with ``unknown_text`` set (kept, noted).
    """
    s = normalise_words(text)
    is_code = s.str.fullmatch(r"\d{1,3}").fillna(False).astype(bool)
    code_key = s.where(is_code).str.lstrip("0").replace("", "0")
    by_code = code_key.map(codes)
    by_word = s.where(~is_code).map(words)
    label = by_code.where(is_code, by_word)
    label = label.where(label.isin(allowed), None)
    bad_code = is_code & by_code.isna()
    unknown_text = s.notna() & ~is_code & label.isna()
    label = label.astype("object").where(label.notna(), "unknown")
    return label, bad_code, unknown_text.fillna(False).astype(bool)


def age_at(birth: pd.Series, on: pd.Series) -> pd.Series:
    """Completed years between two datetime series (Int64, NA if either is missing)."""
    years = on.dt.year - birth.dt.year
    before_birthday = (on.dt.month < birth.dt.month) | (
        (on.dt.month == birth.dt.month) & (on.dt.day < birth.dt.day)
    )
    return (years - before_birthday.astype("float64")).astype("Int64")


def yes_no(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """J/N (Ja/Nej, 1/0) -> boolean; returns (value, unrecognised)."""
    s = normalise_words(text)
    value = s.map({"j": True, "ja": True, "1": True, "n": False, "nej": False, "0": False})
    unknown = s.notna() & value.isna()
    return value.astype("boolean"), unknown.fillna(False).astype(bool)


def quoted(text: pd.Series) -> pd.Series:
    """``'value'`` for use inside a reason message."""
    return "'" + text.astype("string").fillna("") + "'"


__all__ = [
    "age_at",
    "fold_name",
    "format_time",
    "map_mode",
    "normalise_words",
    "parse_datetime",
    "parse_float",
    "parse_int",
    "parse_km",
    "parse_time",
    "quoted",
    "resolve_kommunekode",
    "yes_no",
]
