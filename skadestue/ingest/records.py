"""Split a decoded delivery into records as Arrow columns, fast and with the exact semantics
of :mod:`skadestue.ingest.readers` (the csv module's quoting, line numbers, blank records).

The common file has one record per physical line. Such lines are split in Arrow (lines
without a quote character) or by the csv module one line each (lines with one); a file where
a quoted field spans lines or the quoting is broken is read by
:func:`skadestue.ingest.readers.read_csv_text` and converted, so every file gives the same
records as before, only the usual ones much faster.

A :class:`Records` table holds, per record: ``rid`` (0..n-1), ``line_no`` (first physical
line, header = 1), ``n_lines``, ``n_fields``, ``unclosed`` (ends inside a quoted field, only
set for files read line by line after broken quoting), ``line_text`` (the original text, for
the audit hash only) and ``c0``..``c{width-1}`` (cells stripped, blank = null).
"""

from __future__ import annotations

import csv
import itertools
import logging
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skadestue.ingest.readers import CsvFile, UnreadableFile, decode, read_csv_text, sniff_delimiter

log = logging.getLogger(__name__)


@dataclass
class Records:
    """A decoded delivery as Arrow records (see the module docstring)."""

    encoding: str
    delimiter: str
    header: list[str]
    table: pa.Table
    width: int
    warning: str | None = None

    @property
    def n(self) -> int:
        return self.table.num_rows

    def cell(self, position: int | None) -> pa.ChunkedArray | pa.Array:
        """The cells of one header position (all null when the position is absent)."""
        if position is None or position >= self.width:
            return pa.nulls(self.n, pa.string())
        return self.table.column(f"c{position}")


class _NeedsFullParse(Exception):
    """A quoted field spans lines or the quoting is broken: use the csv module on the file."""


def _clean(arr: pa.Array) -> pa.Array:
    """Cells stripped of surrounding whitespace, blank -> null (as readers.cells_frame)."""
    arr = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


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


def _utf8_bytes(data: bytes, text: str, encoding: str) -> bytes:
    """The file as UTF-8 bytes (no BOM) with every line ending as ``\n``."""
    if encoding == "utf-8":
        raw = data
    elif encoding == "utf-8-sig":
        raw = data[3:]
    else:
        raw = text.encode("utf-8")
    return raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _line_array(raw: bytes) -> pa.Array:
    """Physical lines as an Arrow string array, built from the newline positions (numpy)
    without a Python string per line; trailing blank lines dropped."""
    ends = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) == 10)
    n = len(ends) + 1
    offsets = np.empty(n + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:-1] = ends - np.arange(len(ends))
    offsets[-1] = len(raw) - len(ends)
    body = raw.replace(b"\n", b"")
    lines = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(body))
    lines = lines.cast(pa.string()) if len(body) < 2**31 - 1 else lines
    blank = pc.equal(pc.utf8_trim_whitespace(lines), "").to_numpy(zero_copy_only=False)
    last = n
    while last > 0 and blank[last - 1]:
        last -= 1
    if last == 0 or blank[0]:
        raise UnreadableFile("file is empty or its first line (the header) is blank", 0)
    return lines.slice(0, last)


#: Stands in for a delimiter inside a quoted field while a line is split (NUL never occurs:
#: a file holding NUL bytes is rejected when it is decoded).
_PROTECT = "\x00"


def _simple_quoting(delimiter: str) -> str:
    """RE2 pattern of a line whose quotes all enclose whole fields, with no doubled quote
    inside and nothing between a closing quote and the next delimiter: the csv module reads
    such a line as the fields between unquoted delimiters, quotes removed."""
    d = re.escape(delimiter)
    field = f'(?:[^"{d}]*|"[^"]*")'
    return f"^{field}(?:{d}{field})*$"


def _unquote_simple(lines: pa.Array, delimiter: str) -> pa.Array:
    """Lines of simple quoting (see _simple_quoting) with the quotes removed and the
    delimiters inside quoted fields replaced by _PROTECT, vectorised: split on the quote
    character, every odd piece is the inside of a quoted field."""
    parts = pc.split_pattern(lines, '"')
    offsets = parts.offsets.to_numpy()
    flat = parts.flatten()
    lengths = np.diff(offsets)
    position = np.arange(len(flat)) - np.repeat(offsets[:-1] - offsets[0], lengths)
    inside = pa.array(position % 2 == 1)
    flat = pc.if_else(inside, pc.replace_substring(flat, delimiter, _PROTECT), flat)
    rebuilt = pa.ListArray.from_arrays(pa.array(offsets - offsets[0], type=pa.int32()), flat)
    return pc.binary_join(rebuilt, "")


def _fast_records(lines: pa.Array, delimiter: str, header: list[str]) -> tuple[pa.Table, int]:
    body = lines.slice(1)
    n = len(body)
    has_quote = pc.greater(pc.count_substring(body, '"'), 0).to_numpy(zero_copy_only=False)
    split_text = body
    protected = False
    if has_quote.any():
        quoted = body.filter(pa.array(has_quote))
        simple = pc.match_substring_regex(quoted, _simple_quoting(delimiter)).to_numpy(zero_copy_only=False)
        if simple.any():
            simple_mask = np.zeros(n, dtype=bool)
            simple_mask[np.flatnonzero(has_quote)[simple]] = True
            unquoted = _unquote_simple(quoted.filter(pa.array(simple)), delimiter)
            split_text = pc.replace_with_mask(body, pa.array(simple_mask), unquoted)
            protected = True
            has_quote &= ~simple_mask
    q_idx = np.flatnonzero(has_quote)
    q_rows = _quoted_rows(body.filter(pa.array(has_quote)).to_pylist(), delimiter) if len(q_idx) else []
    n_fields = (pc.count_substring(split_text, delimiter).to_numpy(zero_copy_only=False) + 1).astype("int64")
    blank = ~pc.fill_null(pc.not_equal(pc.utf8_trim_whitespace(split_text), ""), False).to_numpy(zero_copy_only=False)
    keep = ~((n_fields == 1) & blank)
    if len(q_idx):
        n_fields[q_idx] = [len(r) for r in q_rows]
        keep[q_idx] = [len(r) > 1 or any(c.strip() for c in r) for r in q_rows]
    width = int(max(len(header), n_fields[keep].max() if keep.any() else 0))
    padded = pc.binary_join_element_wise(split_text, pa.scalar(delimiter * width), "")
    parts = pc.split_pattern(padded, delimiter)
    q_mask = pa.array(has_quote)
    q_columns = list(itertools.zip_longest(*q_rows, fillvalue=None)) if q_rows else []
    columns: dict[str, pa.Array] = {}
    for i in range(width):
        col = pc.list_element(parts, i)
        if protected:
            col = pc.replace_substring(col, _PROTECT, delimiter)
        if len(q_idx):
            values = q_columns[i] if i < len(q_columns) else [None] * len(q_rows)
            col = pc.replace_with_mask(col, q_mask, pa.array(values, type=pa.string()))
        columns[f"c{i}"] = col
    line_no = np.arange(2, n + 2, dtype="int64")
    table = pa.table(
        {
            "line_no": line_no,
            "n_lines": np.ones(n, dtype="int64"),
            "n_fields": n_fields,
            "unclosed": np.zeros(n, dtype=bool),
            "line_text": body,
            **columns,
        }
    ).filter(pa.array(keep))
    cleaned = {f"c{i}": _clean(table.column(f"c{i}").combine_chunks()) for i in range(width)}
    for name, arr in cleaned.items():
        table = table.set_column(table.schema.get_field_index(name), name, arr)
    return table, width


def _from_csv_file(csv_file: CsvFile) -> tuple[pa.Table, int]:
    """The records of the exact (slow) reader in the same Arrow layout."""
    cells = csv_file.cells
    width = len(cells.columns)
    n = len(cells)
    unclosed = (
        csv_file.unclosed_quote.to_numpy(dtype=bool)
        if csv_file.unclosed_quote is not None else np.zeros(n, dtype=bool)
    )
    columns = {
        f"c{i}": pa.array(cells[i].to_numpy(dtype=object, na_value=None), type=pa.string(), from_pandas=True)
        for i in range(width)
    }
    table = pa.table(
        {
            "line_no": csv_file.line_no.to_numpy(dtype="int64"),
            "n_lines": csv_file.n_lines.to_numpy(dtype="int64"),
            "n_fields": csv_file.n_fields.to_numpy(dtype="int64"),
            "unclosed": unclosed,
            "line_text": pa.array(list(csv_file.line_text), type=pa.string()),
            **columns,
        }
    )
    return table, width


def read_records(data: bytes) -> Records:
    """Decode and split one delivered file (raises UnreadableFile for a whole-file reject)."""
    text, encoding = decode(data)
    lines = _line_array(_utf8_bytes(data, text, encoding))
    first = lines[0].as_py()
    delimiter = sniff_delimiter(first)
    warning = None
    try:
        header = _header(first, delimiter)
        table, width = _fast_records(lines, delimiter, header)
    except _NeedsFullParse:
        del lines
        csv_file = read_csv_text(text, encoding=encoding)
        header, warning = csv_file.header, csv_file.warning
        table, width = _from_csv_file(csv_file)
        log.info("quoted fields span lines or the quoting is broken: read with the csv module")
    else:
        if table.num_rows == 0:
            warning = "header only: the file holds no records"
    table = table.append_column("rid", pa.array(np.arange(table.num_rows, dtype="int64")))
    return Records(encoding, delimiter, header, table, width, warning)
