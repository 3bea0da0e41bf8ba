"""SQL twins of the row parsers in :mod:`skadestue.ingest.parse` and :mod:`skadestue.pseudonym`
for the DuckDB ingest path: stripping, dates and times, CPR facts and the keyed HMAC.

They use the same RE2 patterns as the Arrow/pandas versions (DuckDB and Arrow both use RE2),
so they give the same values; tests/test_ingest_sql.py compares them value by value. Each
function returns a SQL expression over the given column expression(s).
"""

from __future__ import annotations

import functools
import hashlib
from typing import Callable

import duckdb

from skadestue.ingest.parse import _DK_RE, _ISO_RE, _TIME_RE
from skadestue.pseudonym import _CPR_FULL_RE

#: The characters str.strip() and Arrow's utf8_trim_whitespace remove (the same set).
WHITESPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())


def sql_literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


#: RE2 class of :data:`WHITESPACE` (RE2's \\s is only ASCII).
WS_CLASS = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in WHITESPACE) + "]"


def trimmed(expr: str) -> str:
    """The text stripped of whitespace (as str.strip()); blank -> NULL. DuckDB's trim() with a
    character list is slow (~0.4 us a value): callers use it only on values that start or end
    with whitespace (the regex alternative costs ~10 MB of RE2 state per call site)."""
    return f"nullif(trim({expr}, {sql_literal(WHITESPACE)}), '')"


# --------------------------------------------------------------------------- HMAC


_IPAD, _OPAD = "_ing_hmac_ipad", "_ing_hmac_opad"


def set_hmac_key(con: duckdb.DuckDBPyConnection, key: bytes) -> Callable[[str], str]:
    """Put the HMAC-SHA256 pads of ``key`` in session variables (never in SQL text, which an
    error message could quote) and return :func:`hmac_hex` for them.

    The inner pad is handed over as text when it is valid UTF-8 (any ASCII key), so the
    inner hash runs on ``pad || text`` without converting each value to a BLOB first."""
    if not key:
        raise ValueError("the HMAC needs a non-empty key")
    block = hashlib.sha256(key).digest() if len(key) > 64 else key
    block = block.ljust(64, b"\0")
    ipad = bytes(b ^ 0x36 for b in block)
    try:
        con.execute(f"SET VARIABLE {_IPAD} = CAST(? AS VARCHAR)", [ipad.decode("utf-8")])
        textual = True
    except UnicodeDecodeError:
        con.execute(f"SET VARIABLE {_IPAD} = ?", [ipad])
        textual = False
    con.execute(f"SET VARIABLE {_OPAD} = ?", [bytes(b ^ 0x5C for b in block)])
    return functools.partial(hmac_hex, textual=textual)


def clear_hmac_key(con: duckdb.DuckDBPyConnection) -> None:
    for name in (_IPAD, _OPAD):
        con.execute(f"RESET VARIABLE {name}")


def hmac_hex(text: str, *, textual: bool) -> str:
    """Hex HMAC-SHA256 of the UTF-8 bytes of a text expression (= ``hmac.new(key, t.encode(),
    sha256).hexdigest()``); NULL stays NULL. Use the function :func:`set_hmac_key` returns."""
    inner = f"getvariable('{_IPAD}') || {text if textual else f'encode({text})'}"
    return f"sha256(getvariable('{_OPAD}') || unhex(sha256({inner})))"


# --------------------------------------------------------------------------- dates and times

_STAMP_PARTS = ("y", "mo", "d", "hh", "mi", "ss")


def datetime_parts(text: str) -> tuple[str, str]:
    """Two struct expressions (ISO and Danish match of ``text``) for :func:`datetime_value`;
    compute them once in an inner SELECT."""
    iso = f"regexp_extract({text}, {sql_literal(_ISO_RE)}, ['y', 'mo', 'd', 'hh', 'mi', 'ss'])"
    dk = f"regexp_extract({text}, {sql_literal(_DK_RE)}, ['d', 'mo', 'y', 'hh', 'mi', 'ss'])"
    return iso, dk


def _num(part: str) -> str:
    return f"TRY_CAST(nullif({part}, '') AS BIGINT)"


def valid_date(y: str, m: str, d: str) -> str:
    """DATE of numeric parts, NULL where a part is missing or the date does not exist
    (years 1000-2999, as pseudonym.assemble_dates)."""
    month = f"least(greatest(coalesce({m}, 1), 1), 12)"
    year = f"least(greatest(coalesce({y}, 2000), 1000), 2999)"
    ok = (f"{y} BETWEEN 1000 AND 2999 AND {m} BETWEEN 1 AND 12 AND {d} >= 1 "
          f"AND {d} <= day(last_day(make_date({year}, {month}, 1)))")
    return f"CASE WHEN {ok} THEN make_date({y}, {m}, {d}) END"


def datetime_value(iso: str, dk: str) -> str:
    """TIMESTAMP of :func:`skadestue.ingest.parse.parse_datetime` from the two structs of
    :func:`datetime_parts` (ISO wins); NULL if not a date."""
    part = {p: _num(f"CASE WHEN {iso}.y <> '' THEN {iso}.{p} ELSE {dk}.{p} END") for p in _STAMP_PARTS}
    date = valid_date(part["y"], part["mo"], part["d"])
    h, mi, s = (f"coalesce({part[p]}, 0)" for p in ("hh", "mi", "ss"))
    return (
        f"CASE WHEN {h} < 24 AND {mi} < 60 AND {s} < 60 THEN "
        f"CAST({date} AS TIMESTAMP) + to_seconds({h} * 3600 + {mi} * 60 + {s}) END"
    )


#: Formats read by strptime first, each with the shape (length, position and character of
#: the first separator) that picks it; a value counts only when it is the format's exact
#: zero-padded round trip, which the regexes read the same way (the rest go to the regexes).
FAST_DATETIME_FORMATS = {
    "%d-%m-%Y %H:%M": (16, 3, "-"),
    "%Y-%m-%d %H:%M:%S": (19, 5, "-"),
    "%Y-%m-%d %H:%M": (16, 5, "-"),
    "%d-%m-%Y": (10, 3, "-"),
}


def datetime_layers(text: str, name: str) -> list[list[str]]:
    """SELECT items in nesting order (innermost first) ending in the TIMESTAMP column ``name``
    of :func:`skadestue.ingest.parse.parse_datetime`: the common exact formats by one
    strptime chosen by the text's shape (cheap), the rest by the two regexes (computed only
    for those rows)."""
    formats = list(FAST_DATETIME_FORMATS.items())
    shape = [f"length({text}) = {n} AND substr({text}, {at}, 1) = '{sep}'" for _, (n, at, sep) in formats]
    kind = "CASE " + " ".join(f"WHEN {cond} THEN {i}" for i, cond in enumerate(shape)) + " END"
    parsed = "CASE " + " ".join(f"WHEN {cond} THEN try_strptime({text}, '{f}')"
                                for cond, (f, _) in zip(shape, formats)) + " END"
    exact = "CASE " + " ".join(f"WHEN _{name}_k = {i} THEN strftime(_{name}_f, '{f}') = {text}"
                               for i, (f, _) in enumerate(formats)) + " END"
    fast = f"CASE WHEN {exact} AND year(_{name}_f) BETWEEN 1000 AND 2999 THEN _{name}_f END"
    iso, dk = datetime_parts(text)
    slow = [f"CASE WHEN _{name}_fast IS NULL THEN {iso} END AS _{name}_iso",
            f"CASE WHEN _{name}_fast IS NULL THEN {dk} END AS _{name}_dk"]
    value = f"coalesce(_{name}_fast, {datetime_value(f'_{name}_iso', f'_{name}_dk')}) AS {name}"
    return [[f"{kind} AS _{name}_k", f"{parsed} AS _{name}_f"], [f"{fast} AS _{name}_fast"], slow, [value]]


def time_layers(text: str, name: str) -> list[list[str]]:
    """As :func:`datetime_layers`, for the seconds since midnight (DOUBLE) of
    :func:`skadestue.ingest.parse.parse_time`; ``HH:MM`` by strptime."""
    fast = f"CASE WHEN length({text}) = 5 AND substr({text}, 3, 1) = ':' THEN try_strptime({text}, '%H:%M') END"
    pick = (f"CASE WHEN strftime(_{name}_f, '%H:%M') = {text} "
            f"THEN CAST(hour(_{name}_f) * 3600 + minute(_{name}_f) * 60 AS DOUBLE) END AS _{name}_fast")
    slow = f"CASE WHEN _{name}_fast IS NULL THEN {time_parts(text)} END AS _{name}_parts"
    value = f"coalesce(_{name}_fast, {time_seconds(f'_{name}_parts')}) AS {name}"
    return [[f"{fast} AS _{name}_f"], [pick], [slow], [value]]


def time_parts(text: str) -> str:
    """Struct expression of :data:`skadestue.ingest.parse._TIME_RE` for :func:`time_seconds`."""
    return f"regexp_extract({text}, {sql_literal(_TIME_RE)}, ['hh', 'mi', 'ss', 'mi2'])"


def time_seconds(parts: str) -> str:
    """Seconds since midnight (DOUBLE) of :func:`skadestue.ingest.parse.parse_time`; NULL if
    not a time."""
    h, s = _num(f"{parts}.hh"), f"coalesce({_num(f'{parts}.ss')}, 0)"
    mi = f"coalesce({_num(f'{parts}.mi')}, {_num(f'{parts}.mi2')})"
    return (
        f"CASE WHEN {h} < 24 AND {mi} < 60 AND {s} < 60 THEN "
        f"CAST({h} * 3600 + {mi} * 60 + {s} AS DOUBLE) END"
    )


# --------------------------------------------------------------------------- CPR


def cpr_normalised(text: str) -> str:
    """The CPR text without whitespace and without the '-' after the 6th digit."""
    return (
        f"regexp_replace(regexp_replace({text}, '\\s+', '', 'g'), '^(\\d{{6}})-(\\d{{4}})$', '\\1\\2')"
    )


def cpr_parts(norm: str) -> str:
    """Struct of the digit groups of a normalised CPR (all '' when it is not 10 digits)."""
    return f"regexp_extract({norm}, {sql_literal(_CPR_FULL_RE)}, ['dd', 'mm', 'yy', 'd7', 'x', 'd10'])"


def cpr_birth_date(parts: str) -> str:
    """Birth date by the century rule of the 7th digit (cpr.dk); NULL unless a real date."""
    yy, d7 = _num(f"{parts}.yy"), _num(f"{parts}.d7")
    year = (
        f"CASE WHEN {d7} <= 3 THEN 1900 + {yy} "
        f"WHEN {d7} IN (4, 9) AND {yy} <= 36 THEN 2000 + {yy} WHEN {d7} IN (4, 9) THEN 1900 + {yy} "
        f"WHEN {d7} BETWEEN 5 AND 8 AND {yy} <= 57 THEN 2000 + {yy} "
        f"WHEN {d7} BETWEEN 5 AND 8 THEN 1800 + {yy} END"
    )
    return valid_date(f"({year})", _num(f"{parts}.mm"), _num(f"{parts}.dd"))


def cpr_facts(norm: str, parts: str, birth: str, hmac_sql: Callable[[str], str]) -> dict[str, str]:
    """status / sex / pseudonym expressions (as pseudonym.parse_cpr and pseudonymise) from the
    normalised text, its parts and its birth date (computed in inner SELECTs); ``hmac_sql``
    is what :func:`set_hmac_key` returned."""
    valid = f"({birth} IS NOT NULL)"
    return {
        "cpr_status": (f"CASE WHEN {norm} IS NULL OR {norm} = '' THEN 'missing' "
                       f"WHEN {valid} THEN 'valid' ELSE 'invalid' END"),
        "cpr_birth_date": birth,
        "cpr_sex": f"CASE WHEN {valid} THEN (CASE WHEN {_num(f'{parts}.d10')} % 2 = 1 THEN 'M' ELSE 'K' END) END",
        "cpr_pseudonym": f"CASE WHEN {valid} THEN {hmac_sql(norm)} END",
    }
