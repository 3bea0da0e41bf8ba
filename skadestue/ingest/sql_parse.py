"""SQL twins of the row parsers in :mod:`skadestue.ingest.parse` and :mod:`skadestue.pseudonym`
for the DuckDB ingest path: stripping, dates and times, CPR facts and the keyed HMAC.

They use the same RE2 patterns as the Arrow/pandas versions (DuckDB and Arrow both use RE2),
so they give the same values; tests/test_ingest_sql.py compares them value by value. Each
function returns a SQL expression over the given column expression(s).
"""

from __future__ import annotations

import functools
from typing import Callable

import duckdb

from skadestue.ingest.parse import _DK_RE, _ISO_RE, _TIME_RE
from skadestue.keyed_hash import pads
from skadestue.pseudonym import YEARS

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
    ipad, opad = pads(key)
    try:
        con.execute(f"SET VARIABLE {_IPAD} = CAST(? AS VARCHAR)", [ipad.decode("utf-8")])
        textual = True
    except UnicodeDecodeError:
        con.execute(f"SET VARIABLE {_IPAD} = ?", [ipad])
        textual = False
    con.execute(f"SET VARIABLE {_OPAD} = ?", [opad])
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
    """DATE of numeric parts, NULL where a part is missing or the date does not exist (years
    in ``pseudonym.YEARS``, as pseudonym.assemble_dates)."""
    low, high = YEARS
    month = f"least(greatest(coalesce({m}, 1), 1), 12)"
    year = f"least(greatest(coalesce({y}, 2000), {low}), {high})"
    ok = (f"{y} BETWEEN {low} AND {high} AND {m} BETWEEN 1 AND 12 AND {d} >= 1 "
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


def _glob(fmt: str) -> str:
    """GLOB of the exact zero-padded text of a strptime format (digits where a field is)."""
    widths = {"%Y": 4, "%m": 2, "%d": 2, "%H": 2, "%M": 2, "%S": 2}
    for code, width in widths.items():
        fmt = fmt.replace(code, "[0-9]" * width)
    return fmt


#: Formats read by strptime first. A text of a format's exact zero-padded shape (its GLOB)
#: reads the same through strptime as through the regexes: strptime rejects what they
#: reject (24:00, minute 60, 30 February), and years outside pseudonym.YEARS go to the regexes.
FAST_DATETIME_FORMATS = ("%d-%m-%Y %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%d-%m-%Y", "%d.%m.%Y %H:%M")
#: The shortest text the date regexes read (``1-1-2024``, ``2024-1-1``).
_MIN_DATE_CHARS = 8


#: The fast formats DuckDB's own timestamp cast reads (twice as fast as strptime; the hour is
#: characters 12-13). The cast also takes hour 24 (as the next day), which strptime and the
#: regexes refuse: a text from hour 24 on is left to the regexes.
_CAST_FORMATS = frozenset({"%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"})


def _fast_parse(text: str, fmt: str) -> str:
    """SQL: the TIMESTAMP of a text of the exact shape of ``fmt`` (NULL if not a real one)."""
    if fmt in _CAST_FORMATS:
        return f"CASE WHEN substr({text}, 12, 2) < '24' THEN TRY_CAST({text} AS TIMESTAMP) END"
    return f"try_strptime({text}, '{fmt}')"


def datetime_layers(text: str, name: str) -> list[list[str]]:
    """SELECT items in nesting order (innermost first) ending in the TIMESTAMP column ``name``
    of :func:`skadestue.ingest.parse.parse_datetime`: the common exact formats by one
    strptime or cast chosen by the text's shape (cheap), the rest by the two regexes (computed
    only for those rows)."""
    parsed = "CASE " + " ".join(f"WHEN {text} GLOB '{_glob(f)}' THEN {_fast_parse(text, f)}"
                                for f in FAST_DATETIME_FORMATS) + " END"
    fast = f"CASE WHEN year(_{name}_f) BETWEEN {YEARS[0]} AND {YEARS[1]} THEN _{name}_f END"
    iso, dk = datetime_parts(text)
    slow = f"_{name}_fast IS NULL AND length({text}) >= {_MIN_DATE_CHARS}"
    # the regexes' value only where they ran (else its expression would be computed on nulls)
    value = (f"coalesce(_{name}_fast, CASE WHEN _{name}_iso IS NOT NULL "
             f"THEN {datetime_value(f'_{name}_iso', f'_{name}_dk')} END) AS {name}")
    return [[f"{parsed} AS _{name}_f"], [f"{fast} AS _{name}_fast"],
            [f"CASE WHEN {slow} THEN {iso} END AS _{name}_iso", f"CASE WHEN {slow} THEN {dk} END AS _{name}_dk"],
            [value]]


def time_layers(text: str, name: str, unless: str | None = None) -> list[list[str]]:
    """As :func:`datetime_layers`, for the seconds since midnight (DOUBLE) of
    :func:`skadestue.ingest.parse.parse_time`; ``HH:MM`` by arithmetic. With ``unless`` (a
    column the layers before have computed), only where that is NULL (else NULL)."""
    when = f"{unless} IS NULL AND " if unless else ""
    hh, mi = f"CAST(substr({text}, 1, 2) AS INTEGER)", f"CAST(substr({text}, 4, 2) AS INTEGER)"
    fast = (f"CASE WHEN {when}{text} GLOB '[0-9][0-9]:[0-5][0-9]' AND {hh} < 24 "
            f"THEN CAST({hh} * 3600 + {mi} * 60 AS DOUBLE) END")
    slow = f"CASE WHEN {when}_{name}_fast IS NULL AND {text} IS NOT NULL THEN {time_parts(text)} END AS _{name}_parts"
    value = f"coalesce(_{name}_fast, CASE WHEN _{name}_parts IS NOT NULL THEN {time_seconds(f'_{name}_parts')} END) AS {name}"
    return [[f"{fast} AS _{name}_fast"], [slow], [value]]


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


_DIGITS10 = "[0-9]" * 10


def cpr_number(norm: str) -> str:
    """A normalised CPR as a number (BIGINT; NULL unless 10 ASCII digits, as
    ``pseudonym._CPR_NAMED_RE``), for :func:`cpr_digits`."""
    return f"CASE WHEN {norm} GLOB '{_DIGITS10}' THEN CAST({norm} AS BIGINT) END"


def cpr_digits(number: str, first: int, count: int) -> str:
    """Digits ``first`` (1-based) .. ``first + count - 1`` of the number of :func:`cpr_number`."""
    return f"(({number} // {10 ** (10 - first - count + 1)}) % {10 ** count})"


def cpr_birth_date(number: str) -> str:
    """Birth date by the century rule of the 7th digit (cpr.dk); NULL unless a real date."""
    yy, d7 = cpr_digits(number, 5, 2), cpr_digits(number, 7, 1)
    year = (
        f"CASE WHEN {d7} <= 3 THEN 1900 + {yy} "
        f"WHEN {d7} IN (4, 9) AND {yy} <= 36 THEN 2000 + {yy} WHEN {d7} IN (4, 9) THEN 1900 + {yy} "
        f"WHEN {d7} BETWEEN 5 AND 8 AND {yy} <= 57 THEN 2000 + {yy} "
        f"WHEN {d7} BETWEEN 5 AND 8 THEN 1800 + {yy} END"
    )
    return valid_date(f"({year})", cpr_digits(number, 3, 2), cpr_digits(number, 1, 2))


def cpr_facts(norm: str, number: str, birth: str, hmac_sql: Callable[[str], str]) -> dict[str, str]:
    """status / sex / pseudonym expressions (as pseudonym.parse_cpr and pseudonymise) from the
    normalised text, its number and its birth date (computed in inner SELECTs); ``hmac_sql``
    is what :func:`set_hmac_key` returned."""
    valid = f"({birth} IS NOT NULL)"
    return {
        "cpr_status": (f"CASE WHEN {norm} IS NULL OR {norm} = '' THEN 'missing' "
                       f"WHEN {valid} THEN 'valid' ELSE 'invalid' END"),
        "cpr_birth_date": birth,
        "cpr_sex": f"CASE WHEN {valid} THEN (CASE WHEN {number} % 2 = 1 THEN 'M' ELSE 'K' END) END",
        "cpr_pseudonym": f"CASE WHEN {valid} THEN {hmac_sql(norm)} END",
    }
