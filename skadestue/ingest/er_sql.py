"""Emergency-ward deliveries through DuckDB: the rules of :mod:`skadestue.ingest.er`, as SQL
over the whole delivery instead of frame by frame.

1. In Arrow, on the records of :mod:`~skadestue.ingest.records`: the keyed hashes of each
   line and CPR cell (:mod:`skadestue.keyed_hash`), and the vocabulary rules of
   ``er.py``/``parse.py``, run once per *distinct* value in Python and spread back to the
   rows by index (:class:`ValueMaps`).
2. :func:`build_cells`, one SQL statement over those Arrow buffers: the CPR becomes its
   facts and pseudonym, the narrative its length, dates and times are parsed; text cells
   with a date-valid CPR number are masked and free text redacted by the Python rules of
   :mod:`skadestue.pseudonym`, called only for the few values an RE2 pre-filter finds; then
   the row-wise rules (accident time against arrival, injury date, age, sex, severity) and
   every check, as bits of two masks. The CPR number, the narrative and the line text
   are never stored in a table, not even a temporary one.
3. The flagged rows' findings with their reasons (:func:`prepare_er`), and raw and staging
   rows by INSERT ... SELECT inside the delivery's transaction (:func:`write_staging`,
   :func:`write_raw`).

It writes exactly the rows the pandas path (``delivery.prepare_delivery``) writes;
tests/test_ingest_sql.py checks that on a demo night.
"""

from __future__ import annotations

import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

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
    parse_int,
    resolve_kommunekode,
)
from skadestue.ingest import sql_parse as sp
from skadestue.ingest.records import Records
from skadestue.ingest.sources import SourceSpec
from skadestue.pseudonym import (
    _CPR_CANDIDATE,
    _NAME_CANDIDATE,
    _PHONE_CANDIDATE,
    redact_cpr,
    redact_cpr_series,
    redact_free_text,
    scrub_valid_cpr,
)

log = logging.getLogger(__name__)

REC = "_ing_rec"
CELLS = "_ing_er_cells"
DUPS = "_ing_er_dups"
FLAGGED = "_ing_er_flagged"
BAD = "_ing_er_bad"

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


_q = sp.sql_literal


def _quoted(col: str) -> str:
    """SQL for ``'value'`` inside a reason (as parse.quoted)."""
    return f"'''' || coalesce({col}, '') || ''''"


# --------------------------------------------------------------------------- value maps


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


# --------------------------------------------------------------------------- value maps (Arrow)


_MAPS = {
    # column: (function over distinct values, {output column in the frame: (name, type)})
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


_KOMMUNE_OUTPUTS = {"code": ("kommunekode", pa.string()), "unresolved": ("kommune_unresolved", pa.bool_())}
#: The cells the value maps scrub and map (the cells SQL leaves them as they come).
MAPPED = ("kommune", *_MAPS)
#: The columns the value maps append to the records.
MAP_COLUMNS = tuple(name for outputs in (*(o for _, o in _MAPS.values()), _KOMMUNE_OUTPUTS)
                    for name, _ in outputs.values())
#: Of those, the ones staging keeps, by the cell they map.
STORED_OUTPUTS = {"kommunekode": "kommune", "afslutning_word": "afslutning", "diagnose_norm": "diagnose",
                  "bidiagnoser_norm": "bidiagnoser", "tm_label": "transportmiddel", "mp_label": "modpart"}


def _dictionary(name: str) -> str:
    return f"_ing_dict_{name}"


def decoded(name: str) -> str:
    """SQL: a mapped cell's text (``kommune``, ...) or a stored output (``kommunekode``, ...)
    of a row of the cells table, which keeps only each mapped cell's index ``_ix_<cell>`` into
    its distinct values (an INTEGER instead of up to two texts per cell and row: a narrower
    table is cheaper to write); the values are in session variables (:func:`set_dictionaries`)."""
    cell = STORED_OUTPUTS.get(name, name)
    return f"getvariable('{_dictionary(name)}')[_ix_{cell} + 1]"


def decoded_items(names=None) -> str:
    """SELECT items ``<text> AS <name>`` of :func:`decoded` (default: every mapped cell and stored output)."""
    return ", ".join(f"{decoded(n)} AS {n}" for n in (names or (*MAPPED, *STORED_OUTPUTS)))


def set_dictionaries(con: duckdb.DuckDBPyConnection, dictionaries: dict[str, list[str | None]]) -> None:
    """The distinct values of the mapped cells and their stored outputs as session variables
    (CPR-scrubbed cell texts, never SQL text)."""
    for name, values in dictionaries.items():
        con.execute(f"SET VARIABLE {_dictionary(name)} = CAST(? AS VARCHAR[])", [values])


def clear_dictionaries(con: duckdb.DuckDBPyConnection) -> None:
    for name in (*MAPPED, *STORED_OUTPUTS):
        con.execute(f"RESET VARIABLE {_dictionary(name)}")


def _scrubbed(values: pa.Array, fix: Callable[[str], str] = scrub_valid_cpr, pattern: str = _CPR_CANDIDATE) -> pa.Array:
    """Distinct cell values through the text rule ``fix`` (by default: a date-valid CPR
    number masked) where they match the RE2 candidate ``pattern`` (the SQL twin's pattern,
    so the same values; the Python rule only on its hits). ``values`` itself if none changed."""
    hit = pc.match_substring_regex(values, pattern).to_numpy(zero_copy_only=False)
    if not hit.any():
        return values
    texts = values.to_pylist()
    fixed = [fix(v) if h else v for v, h in zip(texts, hit)]
    return values if fixed == texts else pa.array(fixed, type=pa.string())


#: Text cells whose values usually repeat (the hospital, the place of the accident): their text
#: rule (:func:`text_rule`) runs once per distinct value in Arrow, appended as
#: ``_scrub_<cell>``, when the file's first rows say they repeat (:func:`_scrub_by_value`);
#: else, and for every other cell, row by row in SQL.
SCRUB_BY_VALUE = ("sygehus", "ulykkessted")
#: The rows :func:`_scrub_by_value` samples, and the share of distinct values in them above
#: which a cell counts as not repeating (its distinct values would cost more than its rows).
_SAMPLE_ROWS, _REPEATING = 65_536, 0.25
_DIGITS = f"{_CPR_CANDIDATE}|{_PHONE_CANDIDATE}"


class TextRule(NamedTuple):
    """A Python text rule (a name in :data:`_UDFS`), the RE2 pattern every text it can change
    matches, and the fewest characters such a text has."""

    udf: str
    pattern: str
    min_chars: int = 8  # a run of digits of a CPR or phone number


#: The rule of the unknown columns kept in ``extra``: CPR-like runs and phone numbers.
_EXTRA_RULE = TextRule("_ing_redact_cpr", _DIGITS)


def text_rule(spec: SourceSpec, cell: str) -> TextRule:
    """The rule for a text cell that is neither mapped nor the CPR or narrative: free text has
    CPR-like runs, phone numbers and names (which can be short) redacted, other cells a
    date-valid CPR number masked."""
    if cell in {c.lower() for c in spec.free_text_columns}:
        return TextRule("_ing_redact_free_text", f"{_DIGITS}|{_NAME_CANDIDATE}", min_chars=0)
    return TextRule("_ing_scrub_valid_cpr", _CPR_CANDIDATE)


def _scrub_by_value(parts: list[pa.Table], cell: str, rule: TextRule) -> list[pa.ChunkedArray] | None:
    """The cell of each part through its text ``rule``, found once per distinct value; None
    when a sample says its values do not repeat."""
    values = pa.chunked_array([c for p in parts for c in p.column(cell).chunks], type=pa.string())
    sample = values.slice(0, _SAMPLE_ROWS)
    if len(pc.unique(sample)) > _REPEATING * len(sample):
        return None
    uniques = pc.unique(values).drop_null()
    clean = _scrubbed(uniques, _UDFS[rule.udf], rule.pattern)
    if clean is uniques:  # nothing to change: the cells as they are (no copy)
        return [p.column(cell) for p in parts]
    return [_spread(clean, pc.index_in(p.column(cell), value_set=uniques)) for p in parts]


class ValueMaps:
    """The vocabulary rules of ``er.py``/``parse.py`` as a function over the records' Arrow
    parts (for :meth:`Records.map_cells`): each mapped cell is CPR-scrubbed, and each rule's
    outputs appended as columns (``tm_label``, ``alder_n``, ...), computed once per *distinct*
    value in Python and spread to the rows by Arrow's ``index_in`` + ``take`` (no join in
    DuckDB); each cell's index into its distinct values is appended as ``_ix_<cell>``, and
    the distinct values (and stored outputs) are kept in :attr:`dictionaries` for
    :func:`set_dictionaries`. A column the file lacks gives null outputs. The cells of
    :data:`SCRUB_BY_VALUE` get their text rule the same way, when their values repeat."""

    def __init__(self, settings: Settings, positions: dict[str, int], spec: SourceSpec) -> None:
        self.maps = {"kommune": (_kommune_map(settings.kommuner), _KOMMUNE_OUTPUTS), **_MAPS}
        self.pos = {c.lower(): i for c, i in positions.items()}
        self.spec = spec
        #: name (a mapped cell or a stored output) -> its distinct values, as _ix_<cell> indexes them
        self.dictionaries: dict[str, list[str | None]] = {}
        #: The cells of SCRUB_BY_VALUE scrubbed by value (appended as _scrub_<cell>).
        self.scrubbed_by_value: set[str] = set()

    def _mapped(self, parts: list[pa.Table], col: str) -> tuple[str | None, list | None, list[dict], dict]:
        """One column's rule: (the cell, its scrubbed values per part or None, the appended
        columns per part, its dictionaries)."""
        fn, outputs = self.maps[col]
        stored = [name for name, _ in outputs.values() if name in STORED_OUTPUTS]
        if col not in self.pos:
            appended = [{name: pa.nulls(p.num_rows, t) for name, t in outputs.values()}
                        | {f"_ix_{col}": pa.nulls(p.num_rows, pa.int32())} for p in parts]
            return None, None, appended, {name: [] for name in (col, *stored)}
        cell = f"c{self.pos[col]}"
        values = pa.chunked_array([c for p in parts for c in p.column(cell).chunks], type=pa.string())
        uniques = pc.unique(values).drop_null()
        clean = _scrubbed(uniques)
        result = (fn(pd.Series(clean.to_pylist(), dtype="object")) if len(uniques)
                  else pd.DataFrame({k: [] for k in outputs}))
        arrays = {name: pa.array(result[k], type=t, from_pandas=True) for k, (name, t) in outputs.items()}
        indexes = [pc.index_in(p.column(cell), value_set=uniques) for p in parts]
        scrubbed = [_spread(clean, i) for i in indexes] if clean is not uniques else None  # a CPR was masked
        appended = [{name: _spread(arr, i) for name, arr in arrays.items()} | {f"_ix_{col}": i} for i in indexes]
        return cell, scrubbed, appended, {col: clean.to_pylist(), **{n: arrays[n].to_pylist() for n in stored}}

    def __call__(self, parts: list[pa.Table]) -> list[pa.Table]:
        by_value = [c for c in SCRUB_BY_VALUE if c in self.pos]
        # the columns' rules are independent: Arrow's kernels (most of the work) run on both cores
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            scrubs = [pool.submit(_scrub_by_value, parts, f"c{self.pos[c]}", text_rule(self.spec, c))
                      for c in by_value]
            results = list(pool.map(lambda col: self._mapped(parts, col), self.maps))
            scrubs = [f.result() for f in scrubs]
        for cell, scrubbed, appended, dictionaries in results:  # in the rules' order
            if scrubbed is not None:
                parts = [p.set_column(p.schema.get_field_index(cell), cell, v) for p, v in zip(parts, scrubbed)]
            parts = [_append(p, a) for p, a in zip(parts, appended)]
            self.dictionaries.update(dictionaries)
        for col, scrubbed in zip(by_value, scrubs):
            if scrubbed is not None:
                parts = [p.append_column(f"_scrub_{col}", v) for p, v in zip(parts, scrubbed)]
                self.scrubbed_by_value.add(col)
        return parts


def _spread(values: pa.Array, index: pa.ChunkedArray) -> pa.ChunkedArray:
    """``values[index]`` per row: texts as a dictionary array (DuckDB reads it as VARCHAR;
    no copy of each row's text), other types taken."""
    if not pa.types.is_string(values.type) or len(values) == 0:
        return pc.take(values, index)
    return pa.chunked_array([pa.DictionaryArray.from_arrays(chunk, values) for chunk in index.chunks],
                            type=pa.dictionary(pa.int32(), pa.string()))


def _append(table: pa.Table, columns: dict[str, pa.Array]) -> pa.Table:
    for name, values in columns.items():
        table = table.append_column(name, values)
    return table


# --------------------------------------------------------------------------- cells


def _udf(fix, name: str):
    """An Arrow UDF applying a Python text rule (str -> str) to the values DuckDB hands it:
    only the few candidates of an RE2 pre-filter (see :func:`_rewritten`), so a plain loop."""
    def call(values):
        return pa.array([None if v is None else fix(v) for v in values.to_pylist()], type=pa.string())
    call.__name__ = name
    return call


_UDFS = {
    "_ing_scrub_valid_cpr": scrub_valid_cpr,
    "_ing_redact_cpr": redact_cpr,
    "_ing_redact_free_text": redact_free_text,
}


def register_udfs(con: duckdb.DuckDBPyConnection) -> None:
    """The Python text rules as DuckDB functions (once per connection)."""
    for name, fn in _UDFS.items():
        try:
            con.create_function(name, _udf(fn, name), ["VARCHAR"], "VARCHAR", type="arrow",
                                null_handling="special", side_effects=False)
        except duckdb.NotImplementedException:  # registered on this connection before
            pass


def _rewritten(col: str, rule: TextRule, *, unless: str | None = None) -> str:
    """``col`` through the Python rule where it matches the rule's RE2 pattern (one regex, one
    pass over the text; the length is checked first where a candidate needs some: most cells
    are short); not where the condition ``unless`` holds (a shape without a candidate)."""
    hit = f"regexp_matches({col}, {_q(rule.pattern)})"
    if rule.min_chars:
        hit = f"(length({col}) >= {rule.min_chars} AND {hit})"
    if unless:
        hit = f"NOT coalesce({unless}, false) AND ({hit})"
    return f"CASE WHEN {hit} THEN {rule.udf}({col}) ELSE {col} END"


def _cells_sql(spec: SourceSpec, positions: dict[str, int], extra: dict[str, int], hmac_sql,
               rejects: list[Rule], notes: list[Rule], by_value: set[str] = frozenset()) -> str:
    """SELECT of the delivery's typed cells from the records view (with the value maps'
    columns appended): no CPR, narrative or line text leaves it (see the module docstring).
    Which checks of ``rejects`` and ``notes`` hold is in the bit masks ``_rejects`` and ``_notes``.
    ``by_value``: the cells the value maps scrubbed into ``_scrub_<cell>``."""
    cpr, narrative = spec.cpr_column.lower(), spec.narrative_column.lower()
    keys = [k.lower() for k in spec.key]
    indexes = [f"_ix_{c}" for c in MAPPED]
    pos = {c.lower(): i for c, i in positions.items()}
    texts = [c.lower() for c in spec.columns if c.lower() not in (cpr, narrative)]
    picked = ", ".join(
        (f"c{pos[c]}" if c in pos else "CAST(NULL AS VARCHAR)") + f" AS {c}" for c in (*texts, cpr, narrative)
    )
    extras = "".join(f", c{i} AS _x{k}" for k, i in enumerate(extra.values()))
    scrubbed = [f"{k} AS _raw_{k}" for k in keys]
    # a date in one of the fast shapes has no run of 6 digits: it is not scrubbed
    parsed_fast = {"ankomst": "_ankomst_ts_f IS NOT NULL", "ulykke_tid": "_ut_full_f IS NOT NULL"}
    for c in texts:
        if c in MAPPED:  # scrubbed by the value maps
            fix = c
        elif c in by_value:  # by the value maps, once per distinct value
            fix = f"_scrub_{c}"
        else:
            fix = _rewritten(c, text_rule(spec, c), unless=parsed_fast.get(c))
        scrubbed.append(f"{fix} AS _s_{c}")
    scrubbed += [f"{_rewritten(f'_x{k}', _EXTRA_RULE)} AS _extra_{k}" for k in range(len(extra))]
    # the CPR's keyed hash comes with the records (a 32-byte BLOB until it is written, as hex,
    # to raw and staging)
    facts = sp.cpr_facts("_cpr_norm", "_cpr_num", "_cpr_birth", lambda norm: "cpr_hmac")
    layers = [
        [f"{sp.cpr_number('_cpr_norm')} AS _cpr_num"],
        [*scrubbed, f"{sp.cpr_birth_date('_cpr_num')} AS _cpr_birth"],
    ]
    stamps = sp.datetime_layers("ulykke_tid", "ut_full")
    # a bare time only counts where ulykke_tid is not a date and time: parsed after those
    bare = [[]] * len(stamps) + sp.time_layers("ulykke_tid", "ut_bare", unless="ut_full")
    for parsed in (sp.datetime_layers("ankomst", "ankomst_ts"), stamps, bare):
        for depth, items in enumerate(parsed):
            if depth == len(layers):
                layers.append([])
            layers[depth].extend(items)
    outputs = [
        "line_no", "CAST(n_lines AS INTEGER) AS n_lines", "CAST(n_fields AS INTEGER) AS n_fields", "unclosed", "overflow",
        "row_hash",
        *(f"{expr} AS {name}" for name, expr in facts.items()),
        f"CAST(length({narrative}) AS INTEGER) AS {narrative}_chars",
        *(f"_s_{c} AS {c}" for c in texts),
        *(f"coalesce(_s_{k} <> _raw_{k}, false) AS _cprlike_{k}" for k in keys),
        # a record key that looks like a CPR number is masked: the duplicate check compares its hash
        *(f"CASE WHEN coalesce(_s_{k} <> _raw_{k}, false) THEN {hmac_sql(f'_raw_{k}')} END AS _cprkey_{k}"
          for k in keys),
        ("json_object(" + ", ".join(f"{_q(label)}, _extra_{k}" for k, label in enumerate(extra)) + ") AS extra"
         if extra else "CAST(NULL AS JSON) AS extra"),
        "ankomst_ts", "ut_full", "ut_bare",
        *MAP_COLUMNS, *indexes,
    ]
    sql = (f"SELECT line_no, n_lines, n_fields, unclosed, overflow, row_hash, cpr_hmac, {picked}{extras}, "
           f"{cpr} AS _cpr_norm, {', '.join((*MAP_COLUMNS, *indexes, *(f'_scrub_{c}' for c in sorted(by_value))))} "
           f"FROM {REC}")
    for items in layers:
        sql = f"SELECT *, {', '.join(items)} FROM ({sql})"
    sql = f"SELECT {', '.join(outputs)} FROM ({sql})"
    checks = [f"{_bits(rejects)} AS _rejects", f"{_bits(notes)} AS _notes"]
    for items in [*_typed_layers(), checks]:
        sql = f"SELECT *, {', '.join(items)} FROM ({sql})"
    # the mapped cells and the maps' outputs are kept as the cells' indexes (see decoded)
    dropped = [*MAP_COLUMNS, *MAPPED, "ut_full", "ut_bare", *(f"_cprlike_{k}" for k in keys)]
    return f"SELECT * EXCLUDE ({', '.join(dropped)}) FROM ({sql})"


def _bits(rules: list[Rule]) -> str:
    """SQL: an INTEGER whose bit ``i`` says whether rule ``i`` holds (one column, not one per rule)."""
    if len(rules) > 31:
        raise ValueError("more than 31 rules of a kind: widen the bit mask")
    return " | ".join(f"CASE WHEN {cond} THEN {1 << i} ELSE 0 END" for i, (cond, *_) in enumerate(rules)) or "0"


#: SQL: the record key the in-file duplicate check compares (a CPR-like key by its hash).
_DUP_KEY = ("coalesce(_cprkey_sygehus, sygehus)", "coalesce(_cprkey_kontakt_id, kontakt_id)")


def _dup_key() -> str:
    """SELECT items ``dk_sygehus, dk_kontakt_id`` of :data:`_DUP_KEY`."""
    return f"{_DUP_KEY[0]} AS dk_sygehus, {_DUP_KEY[1]} AS dk_kontakt_id"


def kept_extra(con: duckdb.DuckDBPyConnection, extra: dict[str, int]) -> dict[str, int]:
    """The unknown columns worth keeping: named ones, and unnamed ones holding a value."""
    return {
        label: i for label, i in extra.items()
        if not label.startswith("column_")
        or con.execute(f"SELECT count(c{i}) FROM {REC}").fetchone()[0] > 0
    }


def build_cells(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, positions: dict[str, int], extra: dict[str, int], key: bytes,
    rejects: list[Rule], notes: list[Rule], by_value: set[str] = frozenset(),
) -> None:
    """``_ing_er_cells`` (typed, with the checks) from the registered records view
    ``_ing_rec``; ``extra``: the unknown columns to keep (label: position), as one JSON object
    per row, CPR-like runs redacted; ``by_value``: see :func:`_cells_sql`."""
    register_udfs(con)
    hmac_sql = sp.set_hmac_key(con, key)  # for a record key that looks like a CPR number
    try:
        sql = _cells_sql(spec, positions, extra, hmac_sql, rejects, notes, by_value)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {CELLS} AS {sql}")
    finally:
        sp.clear_hmac_key(con)


def _typed_layers() -> list[list[str]]:
    """SELECT items (innermost first) over the cells and the appended map columns: the
    row-wise rules of ``er.py`` (accident time against arrival, injury date, age, sex,
    severity); road_user and counterpart are decoded when staging is written."""
    on_day = "(date_trunc('day', ankomst_ts) + to_seconds(ut_bare))"
    return [
        [f"coalesce(ut_full, CASE WHEN {on_day} > ankomst_ts THEN {on_day} - INTERVAL 1 DAY ELSE {on_day} END) "
         "AS ulykke_tid_ts",
         """CASE
                WHEN afslutning_word = 'død' THEN 'killed'
                WHEN coalesce(dg_serious, false) OR coalesce(bd_serious, false)
                     OR coalesce(afslutning_word IN ('indlagt', 'overflyttet'), false) THEN 'serious'
                WHEN coalesce(dg_injury, false) OR coalesce(bd_injury, false) THEN 'slight'
                ELSE 'unknown'
            END AS severity"""],
        ["CAST(coalesce(ulykke_tid_ts, ankomst_ts) AS DATE) AS injury_date"],
        ["""CASE WHEN cpr_status = 'valid' THEN
                year(injury_date) - year(cpr_birth_date)
                - CASE WHEN month(injury_date) < month(cpr_birth_date)
                         OR (month(injury_date) = month(cpr_birth_date) AND day(injury_date) < day(cpr_birth_date))
                       THEN 1 ELSE 0 END
            ELSE alder_n END AS age""",
         "CASE WHEN cpr_status = 'valid' THEN cpr_sex ELSE koen_sex END AS sex"],
    ]


#: A row rule: (condition, column_name, value, reason), SQL over the typed rows.
Rule = tuple[str, str, str, str]


def reject_rules(header_width: int, max_age: int) -> list[Rule]:
    """The checks that quarantine a row (the in-file duplicate key is :func:`_duplicates_sql`)."""
    limit = f" out of range (0-{max_age})"
    hint = ("CASE WHEN n_lines > 1 THEN ' (a quote character joined lines ' || line_no || '-' "
            "|| (line_no + n_lines - 1) || ')' ELSE '' END")
    fields = f"'line has ' || n_fields || ' fields, the header has {header_width}'"
    return [
        *((f"{c} IS NULL", f"'{c}'", "NULL", f"'missing {c}'") for c in ("kontakt_id", "sygehus", "ankomst")),
        ("ankomst IS NOT NULL AND ankomst_ts IS NULL", "'ankomst'", "ankomst",
         f"'ankomst ' || {_quoted('ankomst')} || ' is not a date'"),
        ("ulykke_tid IS NOT NULL AND ut_full IS NULL AND ut_bare IS NULL", "'ulykke_tid'", "ulykke_tid",
         f"'ulykke_tid ' || {_quoted('ulykke_tid')} || ' is not a date or a time (HH:MM)'"),
        ("ut_full IS NOT NULL AND ankomst_ts IS NOT NULL AND ut_full > ankomst_ts", "'ulykke_tid'", "ulykke_tid",
         f"'ulykke_tid ' || {_quoted('ulykke_tid')} || ' is after ankomst ' || strftime(ankomst_ts, '%Y-%m-%d %H:%M')"),
        ("cpr_status <> 'valid' AND alder IS NOT NULL AND alder_n IS NULL", "'alder'", "alder",
         f"'alder ' || {_quoted('alder')} || ' is not a whole number'"),
        (f"age IS NOT NULL AND NOT (age BETWEEN 0 AND {max_age}) AND cpr_status = 'valid'", "'cpr'", "NULL",
         f"'age ' || age || ' from the CPR birth date{limit}'"),
        (f"age IS NOT NULL AND NOT (age BETWEEN 0 AND {max_age}) AND cpr_status <> 'valid'", "'alder'", "alder",
         f"'age ' || age || '{limit}'"),
        ("tm_bad", "'transportmiddel'", "transportmiddel", "'unknown transportmiddel code ' || transportmiddel"),
        ("mp_bad", "'modpart'", "modpart", "'unknown modpart code ' || modpart"),
        (f"n_fields < {header_width}", "NULL", "NULL", f"{fields} || {hint}"),
        ("overflow", "NULL", "NULL", f"{fields} || ' (extra values)' || {hint}"),
        (f"unclosed AND NOT n_fields < {header_width} AND NOT overflow", "NULL", "NULL",
         "'line ends inside a quoted field (unclosed quote, or the file was cut off)'"),
        *((f"_cprlike_{c}", f"'{c}'", "NULL", f"'{c} looks like a CPR number; the row is not stored'")
          for c in ("sygehus", "kontakt_id")),
    ]


def note_rules() -> list[Rule]:
    """The checks that load a row with a note (ingest_note)."""
    return [
        ("cpr_status = 'invalid'", "'cpr'", "NULL",
         "'cpr is not a valid CPR number (DDMMYY-SSSS with a real birth date); treated as missing, "
         "age and sex from the other columns'"),
        ("cpr_status <> 'valid' AND koen IS NOT NULL AND koen_sex IS NULL", "'koen'", "koen",
         f"'koen ' || {_quoted('koen')} || ' is not M/K; sex left empty'"),
        ("tm_unknown", "'transportmiddel'", "transportmiddel",
         f"'transportmiddel ' || {_quoted('transportmiddel')} || ' not recognised; road_user set to unknown'"),
        ("mp_unknown", "'modpart'", "modpart",
         f"'modpart ' || {_quoted('modpart')} || ' not recognised; counterpart set to unknown'"),
        ("kommune_unresolved", "'kommune'", "kommune",
         f"'kommune ' || {_quoted('kommune')} || ' is not a known municipality; kommunekode left empty'"),
        ("afslutning IS NOT NULL AND afslutning_word IS NULL", "'afslutning'", "afslutning",
         f"'afslutning ' || {_quoted('afslutning')} || ' not recognised (hjem/indlagt/overflyttet/død)'"),
    ]


def _findings_sql(rules: list[Rule], table: str, mask: str) -> str:
    """The findings of ``rules`` in ``table``, whose column ``mask`` has bit ``i`` set where
    rule ``i`` holds (see :func:`_bits`)."""
    return " UNION ALL ".join(
        f"(SELECT line_no AS rid, {col} AS column_name, {value} AS value, {reason} AS reason "
        f"FROM {table} WHERE ({mask} & {1 << i}) <> 0)"
        for i, (_, col, value, reason) in enumerate(rules)
    )


def _duplicates_sql(table: str) -> str:
    """Rows whose record key comes again later in the file (the last one wins)."""
    return f"""
        SELECT t.line_no AS rid, NULL AS column_name, NULL AS value,
            'duplicate key ' || coalesce(t.sygehus, '') || '|' || coalesce(t.kontakt_id, '')
                || ' in this file: superseded by line ' || d.last_line AS reason
        FROM (SELECT *, {_dup_key()} FROM {table}) t JOIN {DUPS} d USING (dk_sygehus, dk_kontakt_id)
        WHERE t.sygehus IS NOT NULL AND t.kontakt_id IS NOT NULL AND t.line_no < d.last_line"""


def _findings(con: duckdb.DuckDBPyConnection, sql: str, where: str = "") -> pd.DataFrame:
    """Findings with line and record key, values and reasons CPR-redacted (few rows)."""
    df = con.execute(
        f"SELECT f.rid AS row, f.column_name, f.value, f.reason, t.line_no, "
        f"coalesce(t.sygehus, '') || '|' || coalesce(t.kontakt_id, '') AS record_key "
        f"FROM ({sql}) f JOIN {FLAGGED} t ON f.rid = t.line_no {where} ORDER BY t.line_no, f.column_name, f.reason"
    ).df()
    if df.empty:
        return pd.DataFrame(columns=_FINDING_COLUMNS).astype({"row": "int64"})
    df["value"] = redact_cpr_series(df["value"].astype("object").where(df["value"].notna(), None), phones=False)
    df["reason"] = redact_cpr_series(df["reason"].astype("object"), phones=False)
    df["line_no"] = df["line_no"].astype("int64")
    return df[_FINDING_COLUMNS]


def prepare_er(
    con: duckdb.DuckDBPyConnection, records: Records, spec: SourceSpec, positions: dict[str, int],
    extra: dict[str, int], settings: Settings, key: bytes,
) -> SqlPrepared:
    """Type one ER delivery into temp tables; findings come back as small frames.

    The records' Arrow buffers (with the CPR numbers and the original lines) are read once,
    into the cells table, and unregistered before anything else runs.
    """
    cpr = {c.lower(): i for c, i in positions.items()}.get(spec.cpr_column.lower())
    records.add_hashes(con, key, cpr)
    maps = ValueMaps(settings, positions, spec)
    records.map_cells(maps)
    set_dictionaries(con, maps.dictionaries)
    rejects, notes_ = reject_rules(records.width, settings.ingest.max_age), note_rules()
    records.register(con, REC)
    try:
        kept = kept_extra(con, extra)
        build_cells(con, spec, positions, kept, key, rejects, notes_, maps.scrubbed_by_value)
    finally:
        records.unregister(con, REC)
    n_records = int(con.execute(f"SELECT count(*) FROM {CELLS}").fetchone()[0])
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {DUPS} AS
        SELECT {_dup_key()}, max(line_no) AS last_line FROM {CELLS}
        WHERE sygehus IS NOT NULL AND kontakt_id IS NOT NULL GROUP BY ALL HAVING count(*) > 1""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {FLAGGED} AS SELECT *, {decoded_items()} FROM {CELLS}
        WHERE _rejects <> 0 OR _notes <> 0
           OR ({_DUP_KEY[0]}, {_DUP_KEY[1]}) IN (SELECT (dk_sygehus, dk_kontakt_id) FROM {DUPS})""")
    bad_sql = f"{_findings_sql(rejects, FLAGGED, '_rejects')} UNION ALL ({_duplicates_sql(FLAGGED)})"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {BAD} AS SELECT DISTINCT rid AS line_no FROM ({bad_sql})")
    quarantine = _findings(con, bad_sql)
    notes = _findings(con, _findings_sql(notes_, FLAGGED, "_notes"),
                      f"WHERE f.rid NOT IN (SELECT line_no FROM {BAD})")
    n_bad = int(con.execute(f"SELECT count(*) FROM {BAD}").fetchone()[0])
    log.info("%d records typed: %d quarantined, %d notes", n_records, n_bad, len(notes))
    return SqlPrepared(n_records, n_bad, quarantine, notes, list(kept))


def _as_hex(column: str) -> str:
    """SQL: a keyed hash of the cells (a BLOB) as the hex text the tables hold."""
    return f"lower(hex({column})) AS {column}"


RAW_ITEMS = (
    f"line_no, {_as_hex('row_hash')}, kontakt_id, sygehus, ankomst, ulykke_tid, {_as_hex('cpr_pseudonym')}, cpr_status, "
    f"cpr_birth_date, cpr_sex, ulykkessted, {decoded_items(MAPPED)}, fritekst_chars, extra"
)


#: SQL: the vocabulary labels of the mode cells, unknown where there is none.
_ROAD_USER = f"coalesce({decoded('tm_label')}, 'unknown')"
_COUNTERPART = f"coalesce({decoded('mp_label')}, 'unknown')"


def write_staging(con: duckdb.DuckDBPyConnection, spec: SourceSpec, delivery_id: str, delivery_seq: int) -> None:
    """The staging rows of the prepared delivery (inside the delivery's transaction)."""
    con.execute(f"""
        INSERT INTO {spec.staging_table} BY NAME
        SELECT sygehus, kontakt_id, {_q(delivery_id)} AS delivery_id, {int(delivery_seq)} AS delivery_seq,
            line_no, ankomst_ts AS ankomst, ulykke_tid_ts AS ulykke_tid, injury_date, {_as_hex('cpr_pseudonym')},
            cpr_birth_date AS birth_date, sex, age, {_ROAD_USER} AS road_user, {_COUNTERPART} AS counterpart, ulykkessted,
            {decoded('kommunekode')} AS kommunekode, {decoded('diagnose_norm')} AS diagnose,
            string_split({decoded('bidiagnoser_norm')}, ' ') AS bidiagnoser,
            {decoded('afslutning_word')} AS afslutning, severity
        FROM {CELLS} t ANTI JOIN {BAD} b USING (line_no)
    """)


def staged_counts(con: duckdb.DuckDBPyConnection, spec: SourceSpec, delivery_id: str) -> tuple[int, int] | None:
    """The delivery's staging rows and their distinct record keys (as
    ``delivery.staged_counts``), without a hash table over a million keys.

    When staging holds the loaded lines of the cells table with their keys (the same number
    of rows, and the same sum of hash(line, key): a multiset check, one scan each), two staged
    rows share a key only if two lines of the cells do, and those keys are in
    ``_ing_er_dups``: the distinct keys are the rows less the surplus rows of those keys.
    Otherwise (a bug) None: count them the exact way."""
    line_key = "coalesce(sum(hash(line_no, sygehus, kontakt_id)::HUGEINT), 0)"
    n, staged_sum = con.execute(
        f"SELECT count(*), {line_key} FROM {spec.staging_table} WHERE delivery_id = ?", [delivery_id]).fetchone()
    loaded = con.execute(f"SELECT count(*), {line_key} FROM {CELLS} ANTI JOIN {BAD} USING (line_no)").fetchone()
    if (n, staged_sum) != loaded:
        return None
    surplus = con.execute(f"""
        SELECT coalesce(sum(n - 1), 0) FROM (
            SELECT count(*) AS n FROM {spec.staging_table} s
            JOIN {DUPS} d ON s.sygehus = d.dk_sygehus AND s.kontakt_id = d.dk_kontakt_id
            WHERE s.delivery_id = ? GROUP BY s.sygehus, s.kontakt_id)""", [delivery_id]).fetchone()[0]
    return n, n - int(surplus)


def raw_counts(con: duckdb.DuckDBPyConnection, spec: SourceSpec, delivery_id: str) -> tuple[int, int] | None:
    """The delivery's raw rows and their distinct line numbers (as ``delivery.raw_counts``),
    without a hash table: when raw holds the lines of the cells table (the same number of
    rows and sum of hash(line)), its lines are distinct as the cells' are (one record per
    line). Otherwise (a bug) None: count them the exact way."""
    lines = "coalesce(sum(hash(line_no)::HUGEINT), 0)"
    n, raw_sum = con.execute(
        f"SELECT count(*), {lines} FROM {spec.raw_table} WHERE delivery_id = ?", [delivery_id]).fetchone()
    if (n, raw_sum) != con.execute(f"SELECT count(*), {lines} FROM {CELLS}").fetchone():
        return None
    return n, n


def write_raw(con: duckdb.DuckDBPyConnection, spec: SourceSpec, delivery_id: str) -> None:
    """The raw rows of the prepared delivery, every record (inside the delivery's transaction)."""
    con.execute(
        f"INSERT INTO {spec.raw_table} BY NAME SELECT {_q(delivery_id)} AS delivery_id, {RAW_ITEMS} "
        f"FROM {CELLS}"
    )


def insertion_order(con: duckdb.DuckDBPyConnection, keep: bool) -> None:
    """DuckDB keeps rows in insertion order by default, which serialises the ends of its
    parallel pipelines; every step here says what it orders by (line_no), so a delivery is
    loaded without it (12 % faster) and the default is restored after."""
    con.execute(f"SET preserve_insertion_order = {'true' if keep else 'false'}")


def drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the delivery's temp tables and dictionaries."""
    clear_dictionaries(con)
    names = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE temporary AND starts_with(table_name, '_ing_')"
    ).fetchall()]
    for name in names:
        con.execute(f"DROP TABLE IF EXISTS temp.main.{name}")
