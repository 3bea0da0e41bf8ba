"""Split a decoded delivery into records for DuckDB, with the exact semantics of
:mod:`skadestue.ingest.readers` (the csv module's quoting, line numbers, blank records).

The common file has one record per physical line. Its lines are cut at the newline
positions in numpy (no Python string per line) and sorted by their quoting:

* lines without a quote character, or whose quotes all enclose whole fields, read the same
  in Arrow's multi-threaded CSV reader as in the csv module, which splits them
  (:func:`_arrow_cells`); if one of them has another field count than the header, the
  reader would drop it, so the file's lines are split by DuckDB SQL instead
  (:func:`records_sql`), which reports such lines;
* the rare line with other quoting is parsed by the csv module on its own;
* a file where a quoted field spans lines or the quoting is broken is read whole by
  :func:`skadestue.ingest.readers.read_csv_text`.

Every file gives the records the csv module gives (tests/test_ingest_sql.py), only the usual
ones much faster. Nothing here is written to a table: DuckDB reads the Arrow buffers.

The records relation (:meth:`Records.register`) has per record: ``line_no`` (first physical
line, header = 1), ``n_lines``, ``n_fields``, ``unclosed`` (ends inside a quoted field, only
set for files read line by line after broken quoting), ``overflow`` (a non-blank field
beyond the header), ``row_hash`` and ``cpr_hmac`` (keyed hashes of the original text and of
the CPR cell, see :meth:`Records.add_hashes`; null before) and ``c0``..``c{header width - 1}``
(cells stripped, blank = null; the CPR cell normalised once hashed).
"""

from __future__ import annotations

import csv
import itertools
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from skadestue.ingest.readers import (
    CsvFile, UnreadableFile, clean_cells, decode, read_csv_text, sniff_delimiter, string_offsets,
)
from skadestue.ingest.sql_parse import WHITESPACE, WS_CLASS, sql_literal, trimmed
from skadestue.keyed_hash import hmac_digest
from skadestue.pseudonym import normalise_cpr

log = logging.getLogger(__name__)

#: Stands in for a delimiter inside a quoted field while a line is split (NUL never occurs:
#: a file holding NUL bytes is rejected when it is decoded).
_PROTECT = "chr(0)"
#: Rows per Arrow batch handed to DuckDB: it scans one batch per thread at a time, so a
#: single-chunk array would be read (and everything after it computed) on one core.
BATCH_ROWS = 65_536


@dataclass
class Records:
    """A decoded delivery: header, and its records as Arrow buffers for DuckDB."""

    encoding: str
    delimiter: str
    header: list[str]
    #: One row per physical line after the header (``line_no``, ``line_text`` with its
    #: newline, ``quoted``: simple quoting to undo) for the lines DuckDB splits; None when
    #: there are none.
    lines: pa.Table | None
    #: Records parsed by the csv module, already in the records layout (see module docstring).
    parsed: pa.Table
    warning: str | None = None
    #: Lines split by Arrow's CSV reader (``line_no``, ``line_text`` with its newline,
    #: ``c0``.. stripped), the usual case (see :func:`_arrow_cells`); None when it was not used.
    cells: pa.Table | None = None

    @property
    def width(self) -> int:
        return len(self.header)

    def add_hashes(self, con: duckdb.DuckDBPyConnection, key: bytes, cpr: int | None) -> None:
        """Add the keyed hashes (:func:`skadestue.keyed_hash.hmac_digest`, 32-byte BLOBs: half
        the memory of their hex) that the ingest stores instead of texts: ``row_hash`` of every
        original line (the audit hash) and ``cpr_hmac`` of cell ``c{cpr}`` normalised (the
        pseudonym, used where the number is valid). Lines DuckDB splits are split here, into
        the records layout in Arrow, so that every part holds its cells in Arrow from now on
        (:meth:`map_cells`). The CPR cell is replaced by its normalised text (what was hashed).
        The line texts are dropped and their memory freed. Once per records."""
        split = None
        if self.lines is not None:
            hashed = hmac_digest(self.lines.column("line_text"), key, strip_newline=True)
            lines = self.lines.append_column("row_hash", hashed)
            self.lines = None
            split = _split_in_duckdb(con, lines, self.delimiter, self.width)
            del lines

        def add(table: pa.Table | None, newline: bool = False) -> pa.Table | None:
            if table is None or "cpr_hmac" in table.column_names:
                return table
            if "row_hash" not in table.column_names:
                hashed = hmac_digest(table.column("line_text"), key, strip_newline=newline)
                table = table.append_column("row_hash", hashed)
            if "line_text" in table.column_names:
                table = table.drop_columns(["line_text"])
            if cpr is None:
                return table.append_column("cpr_hmac", pa.nulls(table.num_rows, pa.binary()))
            name = f"c{cpr}"
            norm = normalise_cpr(table.column(name))
            table = table.set_column(table.column_names.index(name), name, norm)
            return table.append_column("cpr_hmac", hmac_digest(norm, key))

        self.parsed, self.cells = add(self.parsed), add(self.cells, newline=True)
        if split is not None:
            split = add(split).select(self.parsed.column_names).cast(self.parsed.schema)
            self.parsed = pa.concat_tables([self.parsed, split])

    def map_cells(self, fn: Callable[[list[pa.Table]], list[pa.Table]]) -> None:
        """Replace the Arrow parts by ``fn(parts)``: the same rows in the same order, cells
        changed or columns appended (the same ones to every part). After :meth:`add_hashes`."""
        parts = [t for t in (self.parsed, self.cells) if t is not None]
        out = fn(parts)
        self.parsed = out[0]
        if self.cells is not None:
            self.cells = out[1]

    def register(self, con: duckdb.DuckDBPyConnection, name: str) -> None:
        """Register the buffers and create the temp view ``name`` of the records."""
        con.register(f"{name}_parsed", _batched(self.parsed))
        parts = [f"SELECT {_outputs(self.parsed, self.width)} FROM {name}_parsed"]
        if self.lines is not None:
            con.register(f"{name}_lines", self.lines)
            parts.append(records_sql(f"{name}_lines", self.delimiter, self.width, _hashes(self.lines)))
        if self.cells is not None:
            con.register(f"{name}_cells", self.cells)
            parts.append(cells_sql(f"{name}_cells", self.width, _hashes(self.cells), _appended(self.cells, self.width)))
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {' UNION ALL '.join(parts)}")

    def count(self, con: duckdb.DuckDBPyConnection) -> int:
        """The number of records."""
        self.register(con, "_ing_count")
        try:
            return int(con.execute("SELECT count(*) FROM _ing_count").fetchone()[0])
        finally:
            self.unregister(con, "_ing_count")

    def unregister(self, con: duckdb.DuckDBPyConnection, name: str) -> None:
        con.execute(f"DROP VIEW IF EXISTS {name}")
        for part in ("parsed", "lines", "cells"):
            try:
                con.unregister(f"{name}_{part}")
            except Exception:  # never registered
                pass


def _hashes(table: pa.Table) -> str:
    """SELECT items ``row_hash, cpr_hmac`` of a records part (NULL where not hashed)."""
    names = table.column_names
    return ", ".join(c if c in names else f"CAST(NULL AS BLOB) AS {c}" for c in ("row_hash", "cpr_hmac"))


_LAYOUT = ("line_no", "n_lines", "n_fields", "unclosed", "overflow", "row_hash", "cpr_hmac", "line_text", "quoted")


def _appended(table: pa.Table, width: int) -> str:
    """SELECT items of the columns :meth:`Records.map_cells` appended to a part ('' if none)."""
    base = {*_LAYOUT, *(f"c{i}" for i in range(width))}
    return "".join(f", {c}" for c in table.column_names if c not in base)


def _outputs(table: pa.Table, width: int) -> str:
    """SELECT items of the records layout (module docstring) from a part already in it."""
    cells = ", ".join(f"c{i}" for i in range(width))
    return f"line_no, n_lines, n_fields, unclosed, overflow, {_hashes(table)}, {cells}{_appended(table, width)}"


def _split_in_duckdb(con: duckdb.DuckDBPyConnection, lines: pa.Table, delimiter: str, width: int) -> pa.Table:
    """The records of ``lines`` (with ``row_hash``) split by :func:`records_sql`, as Arrow
    (a query result: no table holds them), without ``cpr_hmac`` (hashed in Arrow after)."""
    con.register("_ing_split_lines", lines)
    try:
        split = con.execute(records_sql("_ing_split_lines", delimiter, width, _hashes(lines))).to_arrow_table()
        return split.drop_columns(["cpr_hmac"])
    finally:
        con.unregister("_ing_split_lines")


def records_sql(lines: str, delimiter: str, width: int, hashes: str) -> str:
    """SELECT of the records of the lines relation ``lines`` (texts with their newline):
    split on the delimiter (after undoing simple quoting), cells stripped, blank lines
    dropped; ``hashes``: the SELECT items of :func:`_hashes`."""
    d = sql_literal(delimiter)
    padded = _padded(delimiter)
    unquoted = (
        f"string_split(array_to_string(list_transform(string_split(line_text, '\"'), "
        f"(x, i) -> CASE WHEN i % 2 = 0 THEN replace(x, {d}, {_PROTECT}) ELSE x END), ''), {d})"
    )
    cells = ", ".join(
        f"{_clean(f'CASE WHEN quoted THEN replace(p[{i + 1}], {_PROTECT}, {d}) ELSE p[{i + 1}] END')} AS c{i}"
        for i in range(width)
    )
    beyond = f"len(list_filter(p[{width + 1}:], x -> {trimmed('x')} IS NOT NULL)) > 0"
    return (
        f"SELECT line_no, 1 AS n_lines, len(p) AS n_fields, false AS unclosed, "
        f"len(p) > {width} AND {beyond} AS overflow, {hashes}, {cells} "
        f"FROM (SELECT *, {padded} AS padded, "
        f"CASE WHEN quoted THEN {unquoted} ELSE string_split(line_text, {d}) END AS p "
        f"FROM (SELECT * REPLACE (rtrim(line_text, chr(10)) AS line_text) FROM {lines})) "
        f"WHERE len(p) > 1 OR {trimmed('p[1]')} IS NOT NULL"
    )


def _batched(table: pa.Table) -> pa.Table:
    """The table in batches of BATCH_ROWS rows (zero-copy slices)."""
    return pa.Table.from_batches(table.to_batches(max_chunksize=BATCH_ROWS), schema=table.schema)


def _padded(delimiter: str) -> str:
    """SQL: does the line have whitespace to strip? Only cells at the line's ends, beside a
    delimiter or a quote can carry some (one regex per line instead of one per cell)."""
    edge = re.escape(delimiter).replace("'", "''")
    return f"regexp_matches(line_text, '(^|[{edge}\"]){WS_CLASS}|{WS_CLASS}([{edge}\"]|$)')"


_WS = sql_literal(WHITESPACE)


def _clean(cell: str) -> str:
    """SQL: the cell stripped (only when its line has whitespace to strip, in ``padded``, and
    it starts or ends with some), blank -> NULL."""
    edge = f"{cell} <> '' AND (contains({_WS}, left({cell}, 1)) OR contains({_WS}, right({cell}, 1)))"
    return f"CASE WHEN padded AND ({edge}) THEN {trimmed(cell)} ELSE nullif({cell}, '') END"


def cells_sql(cells: str, width: int, hashes: str, appended: str = "") -> str:
    """SELECT of the records of the relation ``cells`` (see :func:`_arrow_cells`, which has
    stripped them); ``hashes``: the SELECT items of :func:`_hashes`, ``appended``: of
    :func:`_appended`."""
    values = ", ".join(f"c{i}" for i in range(width))
    return (
        f"SELECT line_no, 1 AS n_lines, {width} AS n_fields, false AS unclosed, false AS overflow, "
        f"{hashes}, {values}{appended} FROM {cells}"
    )


class _NeedsFullParse(Exception):
    """A quoted field spans lines or the quoting is broken: use the csv module on the file."""


def _header(line: str, delimiter: str) -> list[str]:
    try:
        rows = list(csv.reader([line], delimiter=delimiter, skipinitialspace=True, strict=True))
    except csv.Error:
        raise _NeedsFullParse from None
    if len(rows) != 1:
        raise _NeedsFullParse
    return [h.strip().lstrip("\ufeff").removeprefix("ï»¿").strip() for h in rows[0]]


def _quoted_rows(lines: list[str], delimiter: str) -> list[list[str]]:
    """Parse lines that hold a quote character, each on its own; _NeedsFullParse when one
    does not end where it started (a field spans lines) or the quoting is broken."""
    reader = csv.reader(lines, delimiter=delimiter, skipinitialspace=True, strict=True)
    rows: list[list[str]] = []
    try:
        for row in reader:
            rows.append(row)
            if reader.line_num != len(rows):
                raise _NeedsFullParse
    except csv.Error:
        raise _NeedsFullParse from None
    if len(rows) != len(lines):
        raise _NeedsFullParse
    return rows


def _utf8_bytes(data: bytes) -> tuple[bytes | memoryview, str]:
    """The file as UTF-8 bytes (no BOM) with every line ending as ``\n``, and its encoding
    as :func:`~skadestue.ingest.readers.decode` names it (which rejects what it rejects).
    UTF-8 is checked by Arrow's validator on the bytes, ten times faster than decoding them
    into a Python string (which, for Danish text, would take twice the file's size). A UTF-8
    file with LF line ends is not copied (after a BOM: a view of the rest)."""
    bom = data.startswith(b"\xef\xbb\xbf")
    payload = memoryview(data)[3:] if bom else data
    valid, nul = _valid_utf8(payload), b"\x00" in data
    if valid and not nul:
        raw, encoding = payload, "utf-8-sig" if bom else "utf-8"
    else:
        text, encoding = _windows_1252(data) if not (valid or nul or bom) else decode(data)
        raw = text.encode("utf-8")  # Windows-1252 (decode raises for anything else)
    if b"\r" in data:  # (a byte Windows-1252 and UTF-8 write alike)
        raw = bytes(raw).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return raw, encoding


def _windows_1252(data: bytes) -> tuple[str, str]:
    """A file that is not UTF-8 (Arrow's validator said so) decoded as Windows-1252, as
    :func:`~skadestue.ingest.readers.decode` would without trying UTF-8 again first."""
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return decode(data)  # rejects it, with decode's reason


def _valid_utf8(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8 (Python's strict codec agrees: surrogates, overlong
    forms and truncated sequences are invalid)."""
    wide = len(data) >= 2**31
    offsets = np.array([0, len(data)], dtype=np.int64 if wide else np.int32)
    text = pa.Array.from_buffers(pa.large_string() if wide else pa.string(), 1,
                                 [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _line_array(raw) -> tuple[pa.Array, np.ndarray]:
    """Physical lines as an Arrow string array over ``raw``'s own bytes (no copy), each with
    its newline; trailing blank lines dropped. Also the newline positions in ``raw``."""
    ends = _positions_of(np.frombuffer(raw, dtype=np.uint8), 10)
    n = len(ends) + 1
    wide = len(raw) >= 2**31
    offsets = np.empty(n + 1, dtype=np.int64 if wide else np.int32)
    offsets[0], offsets[1:-1], offsets[-1] = 0, ends + 1, len(raw)
    lines = pa.Array.from_buffers(pa.large_string() if wide else pa.string(), n,
                                  [None, pa.py_buffer(offsets), pa.py_buffer(raw)])
    last = n
    while last > 0 and not lines[last - 1].as_py().strip():
        last -= 1
    if last == 0 or not lines[0].as_py().strip():
        raise UnreadableFile("file is empty or its first line (the header) is blank", 0)
    return lines.slice(0, last), ends


def _parsed_table(
    line_no, n_lines, n_fields, unclosed, line_text, rows: list[list[str]], width: int,
) -> pa.Table:
    """Records parsed in Python, in the records layout."""
    columns = list(itertools.zip_longest(*rows, fillvalue=None)) if rows else []
    cells = {
        f"c{i}": clean_cells(columns[i] if i < len(columns) else [None] * len(rows)) for i in range(width)
    }
    overflow = [any(c is not None and c.strip() for c in r[width:]) for r in rows]
    return pa.table({
        "line_no": pa.array(line_no, pa.int64()),
        "n_lines": pa.array(n_lines, pa.int64()),
        "n_fields": pa.array(n_fields, pa.int64()),
        "unclosed": pa.array(unclosed, pa.bool_()),
        "overflow": pa.array(overflow, pa.bool_()),
        "line_text": pa.array(line_text, pa.string()),
        **cells,
    })


def _quoting(lines: pa.Array, delimiter: str) -> tuple[np.ndarray, np.ndarray]:
    """Per line: does it hold a quote character, and are its quotes *simple* (each pair
    encloses a whole field: the opening one starts the line or follows a delimiter, the
    closing one ends the line or precedes one, so no doubled quote inside and nothing between
    a closing quote and the next delimiter; the csv module then reads the line as the fields
    between unquoted delimiters, quotes removed). Read from the quote bytes of the Arrow data
    buffer and their neighbours, placed on their lines by the offsets (numpy; no per-line
    call). Lines may end with their newline."""
    offsets = string_offsets(lines).astype(np.int64)
    has_quote = np.zeros(len(lines), dtype=bool)
    data = np.frombuffer(lines.buffers()[2], dtype=np.uint8) if len(lines) and offsets[-1] > offsets[0] else None
    if data is None:
        return has_quote, has_quote.copy()
    where = _positions_of(data[offsets[0]: offsets[-1]], ord('"')) + offsets[0]
    if not len(where):
        return has_quote, has_quote.copy()
    line = np.searchsorted(offsets, where, side="right") - 1
    has_quote[line] = True
    start, end = offsets[line], offsets[line + 1]
    end = end - (data[np.maximum(end - 1, 0)] == 10)  # the line's text, without its newline
    rank = np.arange(len(where)) - np.searchsorted(line, line, side="left")  # 0, 1, ... per line
    sep = ord(delimiter)
    opens_field = (where == start) | (data[np.maximum(where - 1, 0)] == sep)
    closes_field = (where + 1 == end) | (data[np.minimum(where + 1, len(data) - 1)] == sep)
    wrong = np.where(rank % 2 == 0, ~opens_field, ~closes_field)
    bad = np.zeros(len(lines), dtype=bool)
    bad[line[wrong]] = True
    bad[line[np.r_[line[1:] != line[:-1], True] & (rank % 2 == 0)]] = True  # an odd number of quotes
    return has_quote, has_quote & ~bad


def _blank_lines(texts: pa.ChunkedArray) -> np.ndarray:
    """Which lines are empty or whitespace only. A line that starts with a printable ASCII
    character is not (read from the offsets in numpy); only the others are checked in full."""
    maybe = []
    for chunk in texts.chunks:
        offsets = string_offsets(chunk)
        data = chunk.buffers()[2]
        first = np.full(len(chunk), 0x20, dtype=np.uint8)  # an empty line counts as a candidate
        filled = offsets[1:] > offsets[:-1]
        if data is not None and data.size:
            first[filled] = np.frombuffer(data, dtype=np.uint8)[offsets[:-1][filled]]
        maybe.append((first <= 0x20) | (first >= 0x7F))
    blank = np.concatenate(maybe) if maybe else np.zeros(0, dtype=bool)
    if blank.any():
        idx = np.flatnonzero(blank)
        some = texts.take(pa.array(idx))
        blank[idx] = pc.or_(pc.equal(pc.utf8_length(some), 0), pc.utf8_is_space(some)).to_numpy(zero_copy_only=False)
    return blank


#: Bytes compared per step by :func:`_positions_of`.
_BLOCK = 1 << 22


def _positions_of(data: np.ndarray, byte: int) -> np.ndarray:
    """Where ``byte`` occurs in ``data``, compared a block at a time into one reused buffer:
    a comparison of the whole file at once would take a file-sized array of fresh memory,
    and fresh pages are what costs most here (page faults)."""
    hit = np.empty(min(len(data), _BLOCK), dtype=bool)
    found = []
    for start in range(0, len(data), _BLOCK):
        block = data[start: start + _BLOCK]
        out = hit[: len(block)]
        np.equal(block, byte, out=out)
        if out.any():
            found.append(np.flatnonzero(out) + start)
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _split_lines(lines: pa.Array, delimiter: str, width: int) -> tuple[pa.Table, pa.Table]:
    """The lines DuckDB splits (with the simple-quoting flag) and the few the csv module
    parses one by one; _NeedsFullParse when a quote does not close on its line."""
    body = lines.slice(1)
    n = len(body)
    line_no = np.arange(2, n + 2, dtype="int64")
    has_quote, quoted = _quoting(body, delimiter)
    other = has_quote & ~quoted
    keep = ~other
    split = pa.table({"line_no": line_no, "line_text": body, "quoted": quoted})
    split = _batched(split)
    if not other.any():
        return split, _parsed_table([], [], [], [], [], [], width)
    o_idx = np.flatnonzero(other)
    texts = [t.rstrip("\n") for t in body.filter(pa.array(other)).to_pylist()]
    rows = _quoted_rows(texts, delimiter)
    record = [len(r) > 1 or any(c.strip() for c in r) for r in rows]
    rows = [r for r, k in zip(rows, record) if k]
    kept = [t for t, k in zip(texts, record) if k]
    numbers = line_no[o_idx][np.array(record, dtype=bool)]
    parsed = _parsed_table(numbers, [1] * len(rows), [len(r) for r in rows], [False] * len(rows), kept, rows, width)
    return split.filter(pa.array(keep)), parsed


def _arrow_cells(raw: bytes, ends: np.ndarray, split: pa.Table, delimiter: str, width: int) -> pa.Table | None:
    """The lines of ``split`` cut by Arrow's multi-threaded CSV reader, or None when its
    rows would not be the csv module's: a line without a quote character, or with quotes
    that all enclose whole fields, reads the same in both; a blank line is no record (it is
    left out here); and a line whose field count is not the header's makes the reader drop
    it, in which case the file is left to the SQL split (which reports such lines). Cells
    are stripped in Arrow (:func:`skadestue.ingest.readers.clean_cells`), blank -> null."""
    n = split.num_rows
    if n == 0:
        return None
    blank = _blank_lines(split.column("line_text"))
    kept = split.filter(pa.array(~blank)) if blank.any() else split
    if kept.num_rows == 0:
        return None
    line_no = kept.column("line_no").to_numpy()
    first, last = int(line_no[0]) - 1, int(line_no[-1]) - 1  # 0-based physical lines
    start = int(ends[first - 1]) + 1
    stop = int(ends[last]) if last < len(ends) else len(raw)
    if kept.num_rows == last - first + 1:  # every line in between: the file's own bytes
        buffer = memoryview(raw)[start:stop]
    else:
        pieces = bytes(memoryview(raw)[start:stop]).split(b"\n")
        buffer = b"\n".join(pieces[k - first - 1] for k in line_no)
    invalid = []

    def skip(row) -> str:
        invalid.append(row.actual_columns)
        return "skip"

    names = [f"c{i}" for i in range(width)]
    table = pacsv.read_csv(
        pa.BufferReader(pa.py_buffer(buffer)),
        # 4 MB blocks (not 1 MB): fewer hand-offs between the reader's threads, 10 % faster here
        read_options=pacsv.ReadOptions(column_names=names, use_threads=True, block_size=1 << 22),
        parse_options=pacsv.ParseOptions(
            delimiter=delimiter, quote_char='"', double_quote=True, escape_char=False,
            newlines_in_values=False, ignore_empty_lines=False, invalid_row_handler=skip,
        ),
        # empty cells, quoted or not, come as null (as the csv module's blank -> None below)
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in names}, strings_can_be_null=True, null_values=[""],
            quoted_strings_can_be_null=True, check_utf8=False,
        ),
    )
    if invalid or table.num_rows != kept.num_rows:
        log.info("%d lines do not have the header's %d fields: split in SQL", len(invalid), width)
        return None
    # Arrow's kernels release the GIL: the columns are cleaned on every core
    columns = [table.column(name) for name in names]
    del table
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        cells = dict(zip(names, pool.map(clean_cells, columns)))
    del columns
    return pa.table({"line_no": kept.column("line_no"), "line_text": kept.column("line_text"), **cells})


def _from_csv_file(csv_file: CsvFile) -> pa.Table:
    """The records of the exact (slow) reader in the records layout."""
    width = len(csv_file.header)
    n = len(csv_file.cells)
    cells = csv_file.cells
    unclosed = (
        csv_file.unclosed_quote.to_numpy(dtype=bool)
        if csv_file.unclosed_quote is not None else np.zeros(n, dtype=bool)
    )
    beyond = [c for c in cells.columns if c >= width]
    overflow = cells[beyond].notna().any(axis=1).to_numpy(dtype=bool) if beyond else np.zeros(n, dtype=bool)
    columns = {
        f"c{i}": pa.array(
            cells[i].to_numpy(dtype=object, na_value=None) if i in cells.columns else [None] * n,
            type=pa.string(), from_pandas=True,
        )
        for i in range(width)
    }
    return pa.table({
        "line_no": csv_file.line_no.to_numpy(dtype="int64"),
        "n_lines": csv_file.n_lines.to_numpy(dtype="int64"),
        "n_fields": csv_file.n_fields.to_numpy(dtype="int64"),
        "unclosed": unclosed,
        "overflow": overflow,
        "line_text": pa.array(list(csv_file.line_text), type=pa.string()),
        **columns,
    })


def read_records(data: bytes) -> Records:
    """Decode and cut one delivered file (raises UnreadableFile for a whole-file reject)."""
    raw, encoding = _utf8_bytes(data)
    lines, ends = _line_array(raw)
    first = lines[0].as_py().rstrip("\n")
    delimiter = sniff_delimiter(first)
    try:
        header = _header(first, delimiter)
        split, parsed = _split_lines(lines, delimiter, len(header))
    except _NeedsFullParse:
        del lines
        csv_file = read_csv_text(decode(data)[0], encoding=encoding)
        log.info("quoted fields span lines or the quoting is broken: read with the csv module")
        return Records(encoding, delimiter, csv_file.header, None, _from_csv_file(csv_file), csv_file.warning)
    warning = None
    if split.num_rows == 0 and parsed.num_rows == 0:
        warning = "header only: the file holds no records"
    cells = _arrow_cells(raw, ends, split, delimiter, len(header))
    if cells is not None:
        split = None
    return Records(encoding, delimiter, header, split, parsed, warning, cells)
