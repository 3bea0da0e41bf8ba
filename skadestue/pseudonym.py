"""CPR numbers: parsing, keyed pseudonyms and redaction of free text.

A CPR number (``DDMMYY-SSSS``) never reaches disk: the ingest replaces it, as the row is
read, by a keyed HMAC-SHA256 pseudonym plus the facts derived from it (birth date, sex).
Validation is format + date with the century rule of the 7th digit; modulus 11 is NOT
checked, because numbers without it have been issued since 2007 (cpr.dk).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: A CPR-like digit run in free text: 6 digits, optional '-' or space, 4 digits.
CPR_LIKE_RE = re.compile(r"(?<![\d-])\d{6}[-\s]?\d{4}(?![\d-])")
#: A Danish phone number: optional +45/0045, then 8 digits, optionally grouped 2-2-2-2 or 4-4.
PHONE_RE = re.compile(
    r"(?:(?:\+|00)45[\s-]?)?(?<![\d-])(?:\d{8}|\d{2}(?:[ -]\d{2}){3}|\d{4}[ -]\d{4})(?![\d-])"
)
CPR_MASK = "[CPR]"
PHONE_MASK = "[TLF]"

_CPR_FULL_RE = r"^(\d{2})(\d{2})(\d{2})(\d)(\d{2})(\d)$"


def _normalise(series: pd.Series) -> pd.Series:
    """CPR text without spaces and with at most one '-' after the 6th digit removed."""
    s = series.astype("object").where(series.notna(), None).astype("string")
    s = s.str.replace(r"\s+", "", regex=True)
    s = s.str.replace(r"^(\d{6})-(\d{4})$", r"\1\2", regex=True)
    return s


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


def assemble_dates(year: pd.Series, month: pd.Series, day: pd.Series) -> pd.Series:
    """Dates from numeric parts; NaT where a part is missing or the date does not exist."""
    parts = pd.DataFrame({"year": year, "month": month, "day": day}).astype("float64")
    ok = parts.notna().all(axis=1) & parts["year"].between(1000, 2999)
    safe = parts.where(ok, 0).astype("int64")
    return pd.to_datetime(safe, errors="coerce").where(ok)


def parse_cpr(series: pd.Series) -> pd.DataFrame:
    """Parse CPR numbers (``0503871234``, ``050387-1234``, with spaces; blank = missing).

    Returns a frame on the same index with ``cpr_norm`` (10 digits, valid ones only),
    ``status`` (valid | missing | invalid), ``birth_date`` (datetime64, NaT unless valid) and
    ``sex`` (M for an odd last digit, K for even; None unless valid).
    """
    s = _normalise(series)
    missing = s.isna() | (s == "")
    parts = s.str.extract(_CPR_FULL_RE)
    dd, mm, yy, d7, _serial, d10 = (
        pd.to_numeric(parts[i]).astype("float64") for i in range(6)
    )
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
    if not key:
        raise ValueError("pseudonymise needs a non-empty key")
    parsed = parse_cpr(cpr_norm)
    valid = parsed["cpr_norm"].dropna()
    digests = {
        v: hmac.new(key, v.encode("ascii"), hashlib.sha256).hexdigest() for v in valid.unique()
    }
    return parsed["cpr_norm"].map(digests).astype("object").where(parsed["status"] == "valid", None)


def redact_cpr(text: str | None, *, phones: bool = True) -> str | None:
    """Replace CPR-like digit runs (and, by default, phone numbers) in free text."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None
    out = CPR_LIKE_RE.sub(CPR_MASK, str(text))
    if phones:
        out = PHONE_RE.sub(PHONE_MASK, out)
    return out


def redact_cpr_series(series: pd.Series, *, phones: bool = True) -> pd.Series:
    """Vectorised :func:`redact_cpr` over a text series (missing stays missing)."""
    s = series.astype("object")
    present = s.notna()
    out = s.copy()
    if present.any():
        red = s[present].astype(str).str.replace(CPR_LIKE_RE, CPR_MASK, regex=True)
        if phones:
            red = red.str.replace(PHONE_RE, PHONE_MASK, regex=True)
        out[present] = red
    return out


def _mask_if_valid_cpr(match: re.Match[str]) -> str:
    """Replacement callback: mask a CPR-like run only when it is a date-valid CPR."""
    status = parse_cpr(pd.Series([match.group(0)]))["status"].iat[0]
    return CPR_MASK if status == "valid" else match.group(0)


def scrub_valid_cpr_series(series: pd.Series) -> pd.Series:
    """Mask date-valid CPR numbers in structured text columns, leaving other ids alone.

    Used for columns such as ids where a 10-digit number is legitimate unless it is a CPR.
    """
    s = series.astype("object")
    present = s.notna()
    out = s.copy()
    if present.any():
        txt = s[present].astype(str)
        has = txt.str.contains(CPR_LIKE_RE, regex=True)
        if has.any():
            txt[has] = txt[has].str.replace(CPR_LIKE_RE, _mask_if_valid_cpr, regex=True)
            out[present] = txt
    return out
