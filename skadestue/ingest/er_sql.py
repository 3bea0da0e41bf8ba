"""Emergency-ward deliveries through Arrow and DuckDB: the rules of :mod:`skadestue.ingest.er`,
column-wise instead of frame by frame.

1. :func:`arrow_records` (Arrow, Python memory): the CPR becomes its facts and pseudonym, the
   narrative its length, the original line its keyed audit hash (one HMAC per line, OpenSSL),
   so DuckDB never sees a CPR number; text cells are CPR-scrubbed and free text redacted
   (the Python rules run only on the few candidate values an RE2 pre-filter finds), and the
   vocabulary/date rules of ``er.py``/``parse.py`` run once per *distinct* value and are
   spread back with ``take``.
2. :func:`prepare_er` (DuckDB): the row-wise rules (accident time against arrival, injury
   date, age, sex, severity) and every check with its reason, as SQL over the whole delivery.
3. :func:`write_er`: raw and staging rows by INSERT ... SELECT inside the delivery's
   transaction.

It writes exactly the rows the pandas path (``delivery.prepare_delivery``) writes;
tests/test_ingest_sql.py checks that on a demo night.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from skadestue import vocab
from skadestue.config import Settings
from skadestue.ingest.er import AFSLUTNING_WORDS, SEX_WORDS, normalise_bidiagnoser, normalise_diagnosis
from skadestue.ingest.parse import (
    map_mode,
    normalise_words,
    parse_datetime,
    parse_int,
    parse_time,
    resolve_kommunekode,
)
from skadestue.ingest.records import Records
from skadestue.ingest.sources import SourceSpec
from skadestue.pseudonym import (
    _CPR_CANDIDATE,
    _NAME_CANDIDATE,
    _PHONE_CANDIDATE,
    cpr_facts_arrow,
    hmac_hex_arrow,
    redact_cpr_series,
    redact_free_text_series,
    scrub_valid_cpr_series,
)

log = logging.getLogger(__name__)

TYPED = "_ing_er_typed"
BAD = "_ing_er_bad"
REC = "_ing_rec"

_SERIOUS = re.compile(vocab.SERIOUS_DIAGNOSIS_REGEX)
_INJURY = re.compile(r"^D[ST]\d")
_FINDING_COLUMNS = ["row", "column_name", "value", "reason", "line_no", "record_key"]


@dataclass
class SqlPrepared:
    """One ER delivery typed in temp tables, with its findings (few rows) in pandas."""

    rows_read: int
    rows_quarantined: int
    quarantine: pd.DataFrame
    notes: pd.DataFrame
    extra_columns: list[str] = field(default_factory=list)
    temp_tables: list[str] = field(default_factory=list)


def _q(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _quoted(col: str) -> str:
    """SQL for ``'value'`` inside a reason (as parse.quoted)."""
    return f"'''' || coalesce({col}, '') || ''''"


# --------------------------------------------------------------------------- value maps


def _datetime_map(values: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"ts": parse_datetime(values).to_numpy()})


def _ulykke_map(values: pd.Series) -> pd.DataFrame:
    bare = parse_time(values).dt.total_seconds()
    return pd.DataFrame({"full_ts": parse_datetime(values).to_numpy(), "bare_s": bare.to_numpy()})


def _int_map(values: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"n": parse_int(values).astype("Int64").to_numpy()})


def _words_map(words: dict[str, str]):
    def fn(values: pd.Series) -> pd.DataFrame:
        out = normalise_words(values).map(words).astype("object")
        return pd.DataFrame({"word": out.where(out.notna(), None).to_numpy()})
    return fn


def _mode_map(codes: dict[str, str], allowed: tuple[str, ...]):
    def fn(values: pd.Series) -> pd.DataFrame:
        label, bad, unknown = map_mode(values, codes, vocab.ER_TRANSPORT_TEXT, allowed)
        return pd.DataFrame({"label": label.to_numpy(), "bad_code": bad.to_numpy(dtype=bool),
                             "unknown_text": unknown.to_numpy(dtype=bool)})
    return fn


def _kommune_map(kommuner: dict[str, str]):
    def fn(values: pd.Series) -> pd.DataFrame:
        code, unresolved = resolve_kommunekode(values, kommuner)
        code = pd.Series(code, index=values.index).astype("object")
        return pd.DataFrame({"code": code.where(code.notna(), None).to_numpy(),
                             "unresolved": unresolved.to_numpy(dtype=bool)})
    return fn


def _codes_flags(codes: list[str]) -> tuple[bool, bool]:
    return any(_SERIOUS.match(c) for c in codes), any(_INJURY.match(c) for c in codes)


def _diagnose_map(values: pd.Series) -> pd.DataFrame:
    norm = normalise_diagnosis(values)
    flags = [_codes_flags([v]) if isinstance(v, str) else (False, False) for v in norm.astype("object").where(norm.notna(), None)]
    return pd.DataFrame({
        "norm": norm.astype("object").where(norm.notna(), None).to_numpy(),
        "serious": np.array([f[0] for f in flags], dtype=bool),
        "injury": np.array([f[1] for f in flags], dtype=bool),
    })


def _bidiag_map(values: pd.Series) -> pd.DataFrame:
    norm = normalise_bidiagnoser(values)
    texts = norm.astype("object").where(norm.notna(), None)
    flags = [_codes_flags(v.split(" ")) if isinstance(v, str) else (False, False) for v in texts]
    return pd.DataFrame({
        "norm": texts.to_numpy(),
        "serious": np.array([f[0] for f in flags], dtype=bool),
        "injury": np.array([f[1] for f in flags], dtype=bool),
    })


# --------------------------------------------------------------------------- base table


def arrow_map(arr: pa.Array, fn, types: dict[str, pa.DataType]) -> dict[str, pa.Array]:
    """Run ``fn`` (object series of distinct values -> frame with the columns of ``types``)
    once per distinct non-null value of ``arr`` and spread the results over the rows
    (null where ``arr`` is null)."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    encoded = pc.dictionary_encode(arr)
    if len(encoded.dictionary) == 0:
        return {k: pa.nulls(len(arr), t) for k, t in types.items()}
    uniques = pd.Series(encoded.dictionary.to_numpy(zero_copy_only=False), dtype="object")
    result = fn(uniques)
    return {
        k: pc.take(pa.array(result[k], type=t, from_pandas=True), encoded.indices)
        for k, t in types.items()
    }


def rewrite_arrow(arr: pa.Array, patterns: tuple[str, ...], fix) -> pa.Array:
    """``fix`` (object series -> series) applied to the distinct values matching any RE2
    pattern (a cheap pre-filter); the other values unchanged."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    mask = None
    for pattern in patterns:
        hit = pc.fill_null(pc.match_substring_regex(arr, pattern), False)
        mask = hit if mask is None else pc.or_(mask, hit)
    if mask is None or not pc.any(mask).as_py():
        return arr
    candidates = arr.filter(mask)
    uniques = pc.unique(candidates)
    fixed = fix(pd.Series(uniques.to_pylist(), dtype="object"))
    fixed = pa.array(fixed.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    return pc.replace_with_mask(arr, mask, pc.take(fixed, pc.index_in(candidates, value_set=uniques)))


def _scrub(arr: pa.Array) -> pa.Array:
    return rewrite_arrow(arr, (_CPR_CANDIDATE,), scrub_valid_cpr_series)


TS = pa.timestamp("ns")
_MAPS = {
    # column: (function over distinct values, {output column in the frame: (name, type)})
    "ankomst": (_datetime_map, {"ts": ("ankomst_ts", TS)}),
    "ulykke_tid": (_ulykke_map, {"full_ts": ("ut_full", TS), "bare_s": ("ut_bare", pa.float64())}),
    "alder": (_int_map, {"n": ("alder_n", pa.int64())}),
    "koen": (_words_map(SEX_WORDS), {"word": ("koen_sex", pa.string())}),
    "transportmiddel": (
        _mode_map(vocab.ER_TRANSPORT_CODES, vocab.ROAD_USERS),
        {"label": ("tm_label", pa.string()), "bad_code": ("tm_bad", pa.bool_()),
         "unknown_text": ("tm_unknown", pa.bool_())},
    ),
    "modpart": (
        _mode_map(vocab.ER_COUNTERPART_CODES, vocab.COUNTERPARTS),
        {"label": ("mp_label", pa.string()), "bad_code": ("mp_bad", pa.bool_()),
         "unknown_text": ("mp_unknown", pa.bool_())},
    ),
    "afslutning": (_words_map(AFSLUTNING_WORDS), {"word": ("afslutning_word", pa.string())}),
    "diagnose": (_diagnose_map, {"norm": ("diagnose_norm", pa.string()), "serious": ("dg_serious", pa.bool_()),
                                 "injury": ("dg_injury", pa.bool_())}),
    "bidiagnoser": (_bidiag_map, {"norm": ("bidiagnoser_norm", pa.string()), "serious": ("bd_serious", pa.bool_()),
                                  "injury": ("bd_injury", pa.bool_())}),
}


def arrow_records(
    records: Records, spec: SourceSpec, positions: dict[str, int], extra: dict[str, int],
    settings: Settings, key: bytes,
) -> tuple[pa.Table, list[str]]:
    """The delivery as one Arrow table for DuckDB: CPR replaced by its facts, the narrative by
    its length, the original line by its keyed audit hash (DuckDB never sees a CPR number),
    text cells with date-valid CPR numbers masked, free text redacted, and the vocabulary
    rules applied once per distinct value. Returns the table and the kept extra columns."""
    table = records.table
    n = records.n
    lower_pos = {c.lower(): i for c, i in positions.items()}

    def cell(col: str) -> pa.Array:
        arr = records.cell(lower_pos.get(col))
        return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr

    out: dict[str, pa.Array] = {
        name: table.column(name) for name in ("rid", "line_no", "n_lines", "n_fields", "unclosed")
    }
    width = len(records.header)
    overflow = pa.array(np.zeros(n, dtype=bool))
    for i in range(width, records.width):
        overflow = pc.or_(overflow, pc.is_valid(table.column(f"c{i}")))
    out["overflow"] = overflow
    out["row_hash"] = hmac_hex_arrow(key, table.column("line_text").combine_chunks())
    out.update(cpr_facts_arrow(cell(spec.cpr_column.lower()), key))
    out[f"{spec.narrative_column.lower()}_chars"] = pc.cast(pc.utf8_length(cell(spec.narrative_column.lower())), pa.int32())
    free = {c.lower() for c in spec.free_text_columns}
    keys = [k.lower() for k in spec.key]
    for col in spec.columns:
        name = col.lower()
        if name in {spec.cpr_column.lower(), spec.narrative_column.lower()}:
            continue
        raw = cell(name)
        if name in free:
            out[name] = rewrite_arrow(raw, (f"{_CPR_CANDIDATE}|{_PHONE_CANDIDATE}", _NAME_CANDIDATE),
                                      redact_free_text_series)
            continue
        clean = _scrub(raw)
        out[name] = clean
        if name in keys:
            flag = pc.fill_null(pc.not_equal(clean, raw), False)
            out[f"_cprlike_{name}"] = flag
            if pc.any(flag).as_py():
                clean = pc.if_else(flag, hmac_hex_arrow(key, raw), clean)
            out[f"_dupkey_{name}"] = clean
    kommune = arrow_map(out["kommune"], _kommune_map(settings.kommuner),
                        {"code": pa.string(), "unresolved": pa.bool_()})
    out["kommunekode"], out["kommune_unresolved"] = kommune["code"], kommune["unresolved"]
    for col, (fn, outputs) in _MAPS.items():
        mapped = arrow_map(out[col], fn, {k: t for k, (_, t) in outputs.items()})
        for k, (name, _) in outputs.items():
            out[name] = mapped[k]
    kept = []
    for label, i in extra.items():
        if i >= records.width:
            continue
        values = table.column(f"c{i}").combine_chunks()
        if label.startswith("column_") and values.null_count == len(values):
            continue
        out[f"_extra_{len(kept)}"] = rewrite_arrow(values, (f"{_CPR_CANDIDATE}|{_PHONE_CANDIDATE}",), redact_cpr_series)
        kept.append(label)
    return pa.table(out), kept


def _build_typed(con: duckdb.DuckDBPyConnection, kept: list[str]) -> None:
    """_ing_er_typed: the Arrow records with the row-wise rules (accident time, injury date,
    age, sex, severity) in SQL."""
    on_day = "(date_trunc('day', ankomst_ts) + to_seconds(ut_bare))"
    extra = (
        "json_object(" + ", ".join(f"{_q(label)}, _extra_{i}" for i, label in enumerate(kept)) + ")"
        if kept else "CAST(NULL AS JSON)"
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {TYPED} AS
        SELECT *,
            CASE WHEN cpr_status = 'valid' THEN
                year(injury_date) - year(cpr_birth_date)
                - CASE WHEN month(injury_date) < month(cpr_birth_date)
                         OR (month(injury_date) = month(cpr_birth_date) AND day(injury_date) < day(cpr_birth_date))
                       THEN 1 ELSE 0 END
            ELSE alder_n END AS age,
            CASE WHEN cpr_status = 'valid' THEN cpr_sex ELSE koen_sex END AS sex
        FROM (
            SELECT *, CAST(coalesce(ulykke_tid_ts, ankomst_ts) AS DATE) AS injury_date
            FROM (
                SELECT * EXCLUDE (ankomst_ts, ut_full, tm_label, mp_label, tm_bad, tm_unknown, mp_bad, mp_unknown),
                    CAST(ankomst_ts AS TIMESTAMP) AS ankomst_ts,
                    CAST(ut_full AS TIMESTAMP) AS ut_full,
                    coalesce(CAST(ut_full AS TIMESTAMP),
                        CASE WHEN {on_day} > ankomst_ts THEN {on_day} - INTERVAL 1 DAY ELSE {on_day} END) AS ulykke_tid_ts,
                    coalesce(tm_label, 'unknown') AS road_user,
                    coalesce(tm_bad, false) AS tm_bad,
                    coalesce(tm_unknown, false) AS tm_unknown,
                    coalesce(mp_label, 'unknown') AS counterpart,
                    coalesce(mp_bad, false) AS mp_bad,
                    coalesce(mp_unknown, false) AS mp_unknown,
                    CASE
                        WHEN afslutning_word = 'død' THEN 'killed'
                        WHEN coalesce(dg_serious, false) OR coalesce(bd_serious, false)
                             OR coalesce(afslutning_word IN ('indlagt', 'overflyttet'), false) THEN 'serious'
                        WHEN coalesce(dg_injury, false) OR coalesce(bd_injury, false) THEN 'slight'
                        ELSE 'unknown'
                    END AS severity,
                    {extra} AS extra
                FROM {REC}
            )
        )
    """)


def _rejects_sql(header_width: int, max_age: int) -> str:
    limit = f" out of range (0-{max_age})"
    hint = ("CASE WHEN n_lines > 1 THEN ' (a quote character joined lines ' || line_no || '-' "
            "|| (line_no + n_lines - 1) || ')' ELSE '' END")
    fields = f"'line has ' || n_fields || ' fields, the header has {header_width}'"
    parts = [
        *(f"SELECT rid, '{c}' AS column_name, NULL AS value, 'missing {c}' AS reason FROM {TYPED} WHERE {c} IS NULL"
          for c in ("kontakt_id", "sygehus", "ankomst")),
        f"SELECT rid, 'ankomst', ankomst, 'ankomst ' || {_quoted('ankomst')} || ' is not a date' FROM {TYPED} "
        "WHERE ankomst IS NOT NULL AND ankomst_ts IS NULL",
        f"SELECT rid, 'ulykke_tid', ulykke_tid, 'ulykke_tid ' || {_quoted('ulykke_tid')} "
        f"|| ' is not a date or a time (HH:MM)' FROM {TYPED} "
        "WHERE ulykke_tid IS NOT NULL AND ut_full IS NULL AND ut_bare IS NULL",
        f"SELECT rid, 'ulykke_tid', ulykke_tid, 'ulykke_tid ' || {_quoted('ulykke_tid')} || ' is after ankomst ' "
        f"|| strftime(ankomst_ts, '%Y-%m-%d %H:%M') FROM {TYPED} "
        "WHERE ut_full IS NOT NULL AND ankomst_ts IS NOT NULL AND ut_full > ankomst_ts",
        f"SELECT rid, 'alder', alder, 'alder ' || {_quoted('alder')} || ' is not a whole number' FROM {TYPED} "
        "WHERE cpr_status <> 'valid' AND alder IS NOT NULL AND alder_n IS NULL",
        f"SELECT rid, 'cpr', NULL, 'age ' || age || ' from the CPR birth date{limit}' FROM {TYPED} "
        f"WHERE age IS NOT NULL AND NOT (age BETWEEN 0 AND {max_age}) AND cpr_status = 'valid'",
        f"SELECT rid, 'alder', alder, 'age ' || age || '{limit}' FROM {TYPED} "
        f"WHERE age IS NOT NULL AND NOT (age BETWEEN 0 AND {max_age}) AND cpr_status <> 'valid'",
        f"SELECT rid, 'transportmiddel', transportmiddel, 'unknown transportmiddel code ' || transportmiddel "
        f"FROM {TYPED} WHERE tm_bad",
        f"SELECT rid, 'modpart', modpart, 'unknown modpart code ' || modpart FROM {TYPED} WHERE mp_bad",
        f"SELECT rid, NULL, NULL, {fields} || {hint} FROM {TYPED} WHERE n_fields < {header_width}",
        f"SELECT rid, NULL, NULL, {fields} || ' (extra values)' || {hint} FROM {TYPED} WHERE overflow",
        f"SELECT rid, NULL, NULL, 'line ends inside a quoted field (unclosed quote, or the file was cut off)' "
        f"FROM {TYPED} WHERE unclosed AND NOT n_fields < {header_width} AND NOT overflow",
        *(f"SELECT rid, '{c}', NULL, '{c} looks like a CPR number; the row is not stored' FROM {TYPED} "
          f"WHERE _cprlike_{c}" for c in ("sygehus", "kontakt_id")),
        f"""SELECT t.rid, NULL, NULL, 'duplicate key ' || coalesce(t.sygehus, '') || '|' || coalesce(t.kontakt_id, '')
                || ' in this file: superseded by line ' || d.last_line
            FROM {TYPED} t JOIN (
                SELECT _dupkey_sygehus, _dupkey_kontakt_id, max(rid) AS last_rid, arg_max(line_no, rid) AS last_line
                FROM {TYPED} WHERE sygehus IS NOT NULL AND kontakt_id IS NOT NULL
                GROUP BY ALL HAVING count(*) > 1
            ) d USING (_dupkey_sygehus, _dupkey_kontakt_id)
            WHERE t.rid < d.last_rid""",
    ]
    return " UNION ALL ".join(f"({p})" for p in parts)


def _notes_sql() -> str:
    parts = [
        f"SELECT rid, 'cpr' AS column_name, NULL AS value, 'cpr is not a valid CPR number (DDMMYY-SSSS with a "
        f"real birth date); treated as missing, age and sex from the other columns' AS reason FROM {TYPED} "
        "WHERE cpr_status = 'invalid'",
        f"SELECT rid, 'koen', koen, 'koen ' || {_quoted('koen')} || ' is not M/K; sex left empty' FROM {TYPED} "
        "WHERE cpr_status <> 'valid' AND koen IS NOT NULL AND koen_sex IS NULL",
        f"SELECT rid, 'transportmiddel', transportmiddel, 'transportmiddel ' || {_quoted('transportmiddel')} "
        f"|| ' not recognised; road_user set to unknown' FROM {TYPED} WHERE tm_unknown",
        f"SELECT rid, 'modpart', modpart, 'modpart ' || {_quoted('modpart')} "
        f"|| ' not recognised; counterpart set to unknown' FROM {TYPED} WHERE mp_unknown",
        f"SELECT rid, 'kommune', kommune, 'kommune ' || {_quoted('kommune')} "
        f"|| ' is not a known municipality; kommunekode left empty' FROM {TYPED} WHERE kommune_unresolved",
        f"SELECT rid, 'afslutning', afslutning, 'afslutning ' || {_quoted('afslutning')} "
        f"|| ' not recognised (hjem/indlagt/overflyttet/død)' FROM {TYPED} "
        "WHERE afslutning IS NOT NULL AND afslutning_word IS NULL",
    ]
    return " UNION ALL ".join(f"({p})" for p in parts)


def _findings(con: duckdb.DuckDBPyConnection, sql: str, where: str = "") -> pd.DataFrame:
    """Findings with line and record key, values and reasons CPR-redacted (few rows)."""
    df = con.execute(
        f"SELECT f.rid AS row, f.column_name, f.value, f.reason, t.line_no, "
        f"coalesce(t.sygehus, '') || '|' || coalesce(t.kontakt_id, '') AS record_key "
        f"FROM ({sql}) f JOIN {TYPED} t USING (rid) {where}"
    ).df()
    if df.empty:
        return pd.DataFrame(columns=_FINDING_COLUMNS).astype({"row": "int64"})
    df["value"] = redact_cpr_series(df["value"].astype("object").where(df["value"].notna(), None), phones=False)
    df["reason"] = redact_cpr_series(df["reason"].astype("object"), phones=False)
    df["line_no"] = df["line_no"].astype("int64")
    return df[_FINDING_COLUMNS]


def prepare_er(
    con: duckdb.DuckDBPyConnection, n_records: int, header_width: int, settings: Settings, kept: list[str],
) -> SqlPrepared:
    """Type one ER delivery into temp tables; findings come back as small frames.

    The caller has registered :func:`arrow_records` as ``_ing_rec`` and set the HMAC key.
    """
    _build_typed(con, kept)
    rejects = _rejects_sql(header_width, settings.ingest.max_age)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {BAD} AS SELECT DISTINCT rid FROM ({rejects})")
    quarantine = _findings(con, rejects)
    notes = _findings(con, _notes_sql(), f"WHERE rid NOT IN (SELECT rid FROM {BAD})")
    n_bad = int(con.execute(f"SELECT count(*) FROM {BAD}").fetchone()[0])
    log.info("%d records typed: %d quarantined, %d notes", n_records, n_bad, len(notes))
    return SqlPrepared(n_records, n_bad, quarantine, notes, kept, [TYPED, BAD])


RAW_ITEMS = (
    "line_no, row_hash, kontakt_id, sygehus, ankomst, ulykke_tid, cpr_pseudonym, cpr_status, "
    "cpr_birth_date, cpr_sex, koen, alder, transportmiddel, modpart, ulykkessted, kommune, diagnose, "
    "bidiagnoser, afslutning, fritekst_chars, extra"
)


def write_er(con: duckdb.DuckDBPyConnection, spec: SourceSpec, delivery_id: str, delivery_seq: int) -> None:
    """raw + staging rows of the prepared delivery (call inside the delivery's transaction)."""
    con.execute(
        f"INSERT INTO {spec.raw_table} BY NAME SELECT {_q(delivery_id)} AS delivery_id, {RAW_ITEMS} FROM {TYPED}"
    )
    con.execute(f"""
        INSERT INTO {spec.staging_table} BY NAME
        SELECT sygehus, kontakt_id, {_q(delivery_id)} AS delivery_id, {int(delivery_seq)} AS delivery_seq,
            line_no, ankomst_ts AS ankomst, ulykke_tid_ts AS ulykke_tid, injury_date, cpr_pseudonym,
            cpr_birth_date AS birth_date, sex, age, road_user, counterpart, ulykkessted, kommunekode,
            diagnose_norm AS diagnose, string_split(bidiagnoser_norm, ' ') AS bidiagnoser,
            afslutning_word AS afslutning, severity
        FROM {TYPED} t ANTI JOIN {BAD} b USING (rid)
    """)


def drop_temp(con: duckdb.DuckDBPyConnection, prepared: SqlPrepared | None) -> None:
    """Drop the delivery's temp tables and value maps."""
    names = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE temporary AND starts_with(table_name, '_ing_')"
    ).fetchall()]
    for name in names:
        con.execute(f"DROP TABLE IF EXISTS temp.main.{name}")
