"""CPR numbers: parsing, keyed pseudonyms and redaction of free text.

A CPR number (``DDMMYY-SSSS``) never reaches disk: the ingest replaces it, as the row is
read, by a keyed HMAC-SHA256 pseudonym plus the facts derived from it (birth date, sex).
Validation is format + date with the century rule of the 7th digit; modulus 11 is NOT
checked, because numbers without it have been issued since 2007 (cpr.dk).
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from skadestue.keyed_hash import hmac_hex

log = logging.getLogger(__name__)

#: A CPR-like digit run in free text: 6 digits, optional '-' or space, 4 digits.
CPR_LIKE_RE = re.compile(r"(?<![\d-])\d{6}[-\s]?\d{4}(?![\d-])")
#: A Danish phone number: optional +45/0045, then 8 digits, optionally grouped 2-2-2-2 or 4-4.
PHONE_RE = re.compile(
    r"(?:(?:\+|00)45[\s-]?)?(?<![\d-])(?:\d{8}|\d{2}(?:[ -]\d{2}){3}|\d{4}[ -]\d{4})(?![\d-])"
)
#: A person's name after a word that introduces one (vidne, pt., fører, mor, ...): one to
#: four capitalised words. Street names such as "H.C. Andersens Vej" are left alone because
#: they are not introduced by such a word.
NAME_AFTER_ROLE_RE = re.compile(
    r"((?<![\wæøåÆØÅ])(?i:vidnet|vidne|pt\.|pt|patienten|patient|føreren|fører|passageren|passager"
    r"|cyklisten|cyklist|fodgængeren|fodgænger|mor|far|veninde|ven|pårørende|ved navn|navn"
    r"|kontaktperson|kontakt)(?![\wæøåÆØÅ])\s*[:,]?\s*)"
    r"[A-ZÆØÅ][a-zæøåé]+(?:[- ][A-ZÆØÅ][a-zæøåé]+){0,3}"
)
CPR_MASK = "[CPR]"
PHONE_MASK = "[TLF]"
NAME_MASK = "[NAVN]"

_CPR_NAMED_RE = r"^(?P<dd>\d{2})(?P<mm>\d{2})(?P<yy>\d{2})(?P<d7>\d)\d{2}(?P<d10>\d)$"


def normalise_cpr(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """CPR texts without spaces and with at most one '-' after the 6th digit removed (Arrow;
    the big-file ingest hands the SQL its CPR cells normalised by this). The whitespace regex
    runs only where it can change something: RE2's ``\\s`` is ASCII, so a column without a
    byte up to space has none. A dash goes only from 11-byte texts with '-' 7th whose other
    characters are ASCII digits (``^(\\d{6})-(\\d{4})$``), chunk by chunk without a regex."""
    if _any_byte_upto_space(arr):
        arr = pc.replace_substring_regex(arr, r"\s+", "")
    dashed = pc.fill_null(pc.and_(pc.equal(pc.binary_length(arr), 11),
                                  pc.equal(pc.utf8_slice_codeunits(arr, 6, 7), "-")), False)
    if not pc.any(dashed).as_py():
        return arr
    undashed = pc.utf8_replace_slice(arr, 6, 7, "")
    return pc.if_else(pc.and_(dashed, pc.fill_null(pc.ascii_is_decimal(undashed), False)), undashed, arr)


def _any_byte_upto_space(arr: pa.Array | pa.ChunkedArray) -> bool:
    """Whether a text's bytes (nulls' slots included) hold one up to 0x20 (ASCII space)."""
    for chunk in (arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]):
        data = chunk.buffers()[2] if len(chunk) else None
        if data is not None and (np.frombuffer(data, dtype=np.uint8) <= 0x20).any():
            return True
    return False


def _normalise(series: pd.Series) -> pd.Series:
    """CPR text without spaces and with at most one '-' after the 6th digit removed."""
    arr = normalise_cpr(text_array(series))
    return pd.Series(arr.to_numpy(zero_copy_only=False), index=series.index, dtype="string")


def _century_year(yy: pd.Series, d7: pd.Series) -> pd.Series:
    """Full birth year from the two-digit year and the 7th digit (cpr.dk century rule)."""
    yy = yy.astype("float64")
    d7 = d7.astype("float64")
    year = np.select(
        [
            d7 <= 3,
            d7.isin([4, 9]) & (yy <= 36),
            d7.isin([4, 9]),
            (d7 >= 5) & (d7 <= 8) & (yy <= 57),
            (d7 >= 5) & (d7 <= 8),
        ],
        [1900 + yy, 2000 + yy, 1900 + yy, 2000 + yy, 1800 + yy],
        default=np.nan,
    )
    return pd.Series(year, index=yy.index)


#: The years a date may have: those pandas' nanosecond timestamps hold whole (outside them a
#: date would wrap around silently); a date in another year is not read as a date.
YEARS = (1678, 2261)


def assemble_dates(year: pd.Series, month: pd.Series, day: pd.Series) -> pd.Series:
    """Dates from numeric parts; NaT where a part is missing, the date does not exist or its
    year is outside :data:`YEARS`.

    Vectorised in numpy (month arithmetic on datetime64), no per-row parsing.
    """
    y = np.asarray(year, dtype="float64")
    m = np.asarray(month, dtype="float64")
    d = np.asarray(day, dtype="float64")
    ok = ~(np.isnan(y) | np.isnan(m) | np.isnan(d))
    ok &= (y >= YEARS[0]) & (y <= YEARS[1]) & (m >= 1) & (m <= 12) & (d >= 1)
    months = np.where(ok, (y - 1970) * 12 + (m - 1), 0).astype("int64").astype("datetime64[M]")
    first = months.astype("datetime64[D]")
    length = ((months + 1).astype("datetime64[D]") - first).astype("int64")
    ok &= d <= length
    days = np.where(ok, d - 1, 0).astype("int64").astype("timedelta64[D]")
    out = (first + days).astype("datetime64[ns]")
    out[~ok] = np.datetime64("NaT")
    index = year.index if isinstance(year, pd.Series) else None
    return pd.Series(out, index=index)


def text_array(series: pd.Series) -> pa.Array:
    """A text series as an Arrow string array (None/NaN -> null), for Arrow compute kernels."""
    if isinstance(series.dtype, pd.ArrowDtype) or str(series.dtype).startswith("string[pyarrow"):
        return pa.array(series, type=pa.string())
    values = series.to_numpy(dtype=object, na_value=None)
    return pa.array(values, type=pa.string(), from_pandas=True)


def extract_numbers(series: pd.Series, pattern: str) -> dict[str, np.ndarray]:
    """Named digit groups of an RE2 ``pattern`` as float arrays (NaN where the text does not
    match or the group did not take part) - one Arrow kernel call, no Python per row."""
    arr = pc.utf8_trim_whitespace(text_array(series))
    parts = pc.extract_regex(arr, pattern)
    out: dict[str, np.ndarray] = {}
    for i in range(parts.type.num_fields):
        name = parts.type.field(i).name
        field = pc.struct_field(parts, [i])
        field = pc.if_else(pc.equal(field, ""), pa.scalar(None, pa.string()), field)
        out[name] = pc.cast(field, pa.float64()).to_numpy(zero_copy_only=False)
    return out


def parse_cpr(series: pd.Series) -> pd.DataFrame:
    """Parse CPR numbers (``0503871234``, ``050387-1234``, with spaces; blank = missing).

    Returns a frame on the same index with ``cpr_norm`` (10 digits, valid ones only),
    ``status`` (valid | missing | invalid), ``birth_date`` (datetime64, NaT unless valid) and
    ``sex`` (M for an odd last digit, K for even; None unless valid).
    """
    s = _normalise(series)
    missing = s.isna() | (s == "")
    parts = extract_numbers(s, _CPR_NAMED_RE)
    idx = s.index
    dd, mm, yy, d7, d10 = (pd.Series(parts[k], index=idx) for k in ("dd", "mm", "yy", "d7", "d10"))
    year = _century_year(yy, d7)
    birth = assemble_dates(year, mm, dd)
    valid = (~missing) & birth.notna()
    status = pd.Series(np.where(missing, "missing", np.where(valid, "valid", "invalid")), index=s.index)
    sex = pd.Series(np.where(d10 % 2 == 1, "M", "K"), index=s.index).where(valid, None)
    return pd.DataFrame(
        {
            "cpr_norm": s.astype("object").where(valid, None),
            "status": status,
            "birth_date": birth.where(valid),
            "sex": sex.astype("object"),
        },
        index=series.index,
    )


def pseudonymise(cpr_norm: pd.Series, key: bytes) -> pd.Series:
    """Keyed, stable pseudonym per CPR: hex HMAC-SHA256 of the normalised number.

    None for missing or invalid numbers. One HMAC per distinct number (not per row).
    """
    return pseudonymise_parsed(parse_cpr(cpr_norm), key)


def pseudonymise_parsed(parsed: pd.DataFrame, key: bytes) -> pd.Series:
    """:func:`pseudonymise` for the output of :func:`parse_cpr` (no second parse)."""
    if not key:
        raise ValueError("pseudonymise needs a non-empty key")
    valid = parsed["cpr_norm"].dropna().unique()
    digests = dict(zip(valid, hmac_hex(pa.array(valid, type=pa.string()), key).to_pylist()))
    return parsed["cpr_norm"].map(digests).astype("object").where(parsed["status"] == "valid", None)


def redact_cpr(text: str | None, *, phones: bool = True) -> str | None:
    """Replace CPR-like digit runs (and, by default, phone numbers) in free text."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None
    out = CPR_LIKE_RE.sub(CPR_MASK, str(text))
    if phones:
        out = PHONE_RE.sub(PHONE_MASK, out)
    return out


#: RE2 patterns that every text the Python patterns above could change matches (a cheap
#: Arrow pre-filter: the Python regexes run only on the few candidate values).
_CPR_CANDIDATE = r"\d{6}[-\s]?\d{4}"
_PHONE_CANDIDATE = r"\d{8}|\d{2}[ -]\d{2}[ -]\d{2}[ -]\d{2}|\d{4}[ -]\d{4}"
#: A role word of NAME_AFTER_ROLE_RE at the start of a word (RE2's ``\b`` is ASCII: a letter
#: such as "æ" before it still counts as a boundary, so the candidates stay a superset),
#: not inside one ("Æblehaven", "Havnevej").
_NAME_CANDIDATE = (
    r"(?i:\b(vidne|pt|patient|fører|passager|cyklist|fodgænger|mor|far|ven|pårørende|navn|kontakt))"
)


def _candidates(series: pd.Series, pattern: str) -> np.ndarray:
    """Boolean mask of the values matching an RE2 ``pattern`` (missing -> False)."""
    hit = pc.match_substring_regex(text_array(series), pattern)
    return pc.fill_null(hit, False).to_numpy(zero_copy_only=False)


def _rewrite(series: pd.Series, pattern: str, fix) -> pd.Series:
    """Apply ``fix`` (str -> str) to the distinct values matching ``pattern``; the rest as is."""
    s = series.astype("object")
    mask = _candidates(s, pattern)
    if not mask.any():
        return s
    out = s.copy()
    hits = s[mask]
    fixed = {v: fix(str(v)) for v in hits.unique()}
    out[mask] = hits.map(fixed)
    return out


def redact_cpr_series(series: pd.Series, *, phones: bool = True) -> pd.Series:
    """Vectorised :func:`redact_cpr` over a text series (missing stays missing)."""
    pattern = f"{_CPR_CANDIDATE}|{_PHONE_CANDIDATE}" if phones else _CPR_CANDIDATE
    return _rewrite(series, pattern, lambda t: redact_cpr(t, phones=phones))


def _redact_names(text: str) -> str:
    return NAME_AFTER_ROLE_RE.sub(lambda m: m.group(1) + NAME_MASK, text)


def redact_free_text(text: str) -> str:
    """:func:`redact_free_text_series` of one text."""
    return _redact_names(redact_cpr(text))


def redact_free_text_series(series: pd.Series) -> pd.Series:
    """Free text kept in the warehouse (``ulykkessted``): CPR-like runs, phone numbers and
    names introduced by a role word (``vidne Jens Hansen`` -> ``vidne [NAVN]``) redacted."""
    return _rewrite(redact_cpr_series(series), _NAME_CANDIDATE, _redact_names)


def _mask_if_valid_cpr(match: re.Match[str]) -> str:
    """Replacement callback: mask a CPR-like run only when it is a date-valid CPR."""
    status = parse_cpr(pd.Series([match.group(0)]))["status"].iat[0]
    return CPR_MASK if status == "valid" else match.group(0)


def scrub_valid_cpr(text: str) -> str:
    """:func:`scrub_valid_cpr_series` of one text."""
    return CPR_LIKE_RE.sub(_mask_if_valid_cpr, text)


def scrub_valid_cpr_series(series: pd.Series) -> pd.Series:
    """Mask date-valid CPR numbers in structured text columns, leaving other ids alone.

    Used for columns such as ids where a 10-digit number is legitimate unless it is a CPR.
    """
    return _rewrite(series, _CPR_CANDIDATE, scrub_valid_cpr)
