"""Decode and split delivered CSV files: encoding, delimiter, quoted fields, line numbers.

Everything is read as text (leading zeros matter). Each record keeps the file line it starts
on (header = line 1) and its original text, for the audit hash in ``raw.*``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import logging
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


log = logging.getLogger(__name__)

_BOM = b"\xef\xbb\xbf"
_LINE_SPLIT = re.compile(r"\r\n|\r|\n")
DELIMITERS = (";", ",", "\t")


class UnreadableFile(ValueError):
    """The file cannot be decoded or split into a header and records (rejected whole)."""

    def __init__(self, message: str, rows_read: int) -> None:
        super().__init__(message)
        self.rows_read = rows_read


@dataclass
class CsvFile:
    """A decoded delivery: header cells, records as text cells, and where each record is."""

    encoding: str
    delimiter: str
    header: list[str]
    #: One row per non-blank record; columns = positions 0..n-1 (None beyond a short row).
    cells: pd.DataFrame
    line_no: pd.Series
    #: The original text of each record (used only for hashing, never stored).
    line_text: pd.Series
    n_fields: pd.Series
    #: Physical lines per record (> 1 when a quoted field spans lines).
    n_lines: pd.Series
    #: Set when the file had to be read in a degraded way (reported on the delivery).
    warning: str | None = None
    #: Records that end inside a quoted field (only found when read one line per record).
    unclosed_quote: pd.Series | None = None


def content_hash(data: bytes) -> str:
    """sha256 of the file bytes (a redelivered identical file has the same hash)."""
    return hashlib.sha256(data).hexdigest()


def count_data_lines(data: bytes) -> int:
    """Non-blank lines after the first (a fallback count for files that cannot be decoded)."""
    lines = [ln for ln in re.split(rb"\r\n|\r|\n", data) if ln.strip()]
    return max(len(lines) - 1, 0)


def decode(data: bytes) -> tuple[str, str]:
    """Text and encoding name: UTF-8 (with or without BOM), else Windows-1252.

    Raises UnreadableFile if neither decodes or the result holds NUL bytes (a binary or
    UTF-16 file).
    """
    if data.startswith(_BOM):
        candidates = [("utf-8-sig", data[len(_BOM):])]
    else:
        candidates = [("utf-8", data), ("cp1252", data)]
    for name, payload in candidates:
        try:
            text = payload.decode("utf-8" if name == "utf-8-sig" else name, errors="strict")
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break
        return text, name
    raise UnreadableFile(
        "file is neither UTF-8 nor Windows-1252 text (binary, UTF-16 or corrupt?)",
        count_data_lines(data),
    )


def sniff_delimiter(header_line: str) -> str:
    """The delimiter used in the header line: the most frequent of ``;`` ``,`` TAB."""
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > 0 else ";"


def _split_records(lines: list[str], delimiter: str) -> tuple[list[list[str]], list[int], list[int]]:
    """Parse the lines as CSV: (cells, first line, last line) per non-blank record (1-based).

    The csv module does the quoting (a quoted field may span lines; a stray quote inside an
    unquoted field is literal); the loop only records where each record ends.
    """
    reader = csv.reader(
        io.StringIO("\n".join(lines)), delimiter=delimiter, skipinitialspace=True, strict=True
    )
    rows: list[list[str]] = []
    first: list[int] = []
    last: list[int] = []
    previous_end = 0
    for row in reader:
        if row and any(cell.strip() for cell in row) or len(row) > 1:
            rows.append(row)
            first.append(previous_end + 1)
            last.append(reader.line_num)
        previous_end = reader.line_num
    return rows, first, last


def _split_lines(lines: list[str], delimiter: str) -> tuple[list[list[str]], list[int], list[int]]:
    """Fallback for broken quoting: every physical line is one record, parsed on its own."""
    rows: list[list[str]] = []
    numbers: list[int] = []
    for no, line in enumerate(lines, start=1):
        if line.strip():
            rows.append(next(csv.reader([line], delimiter=delimiter, skipinitialspace=True), []))
            numbers.append(no)
    return rows, numbers, list(numbers)


def unclosed_quotes(lines: list[str], numbers: list[int], delimiter: str) -> list[bool]:
    """Per record (line numbers as from _split_lines): does the line end inside a quoted
    field? That is an unclosed quote or a file cut off in the middle of a record."""
    out = []
    for no in numbers:
        try:
            list(csv.reader([lines[no - 1]], delimiter=delimiter, skipinitialspace=True, strict=True))
            out.append(False)
        except csv.Error:
            out.append(True)
    return out


def read_csv_text(text: str, *, encoding: str) -> CsvFile:
    """Split decoded text into header and records, all cells as stripped text or None."""
    lines = _LINE_SPLIT.split(text)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or not lines[0].strip():
        raise UnreadableFile("file is empty or its first line (the header) is blank", 0)
    delimiter = sniff_delimiter(lines[0])
    warning = None
    unclosed = None
    try:
        rows, first, last = _split_records(lines, delimiter)
    except csv.Error as exc:
        # An unclosed quote would swallow the rest of the file into one field: read line by
        # line instead, so each line stands (or is quarantined) on its own.
        warning = f"broken quoting ({exc}); the file was read one line per record"
        rows, first, last = _split_lines(lines, delimiter)
        unclosed = pd.Series(unclosed_quotes(lines, first[1:], delimiter), dtype="bool")
    header = [h.strip().lstrip("\ufeff").removeprefix("ï»¿").strip() for h in rows[0]]
    rows, first, last = rows[1:], first[1:], last[1:]
    single = all(f == l for f, l in zip(first, last))
    line_text = (
        [lines[f - 1] for f in first] if single
        else ["\n".join(lines[f - 1:l]) for f, l in zip(first, last)]
    )
    width = max([len(header), *map(len, rows)])
    return CsvFile(
        encoding=encoding,
        delimiter=delimiter,
        header=header,
        cells=cells_frame(rows, width),
        line_no=pd.Series(first, dtype="int64"),
        line_text=pd.Series(line_text, dtype="object"),
        n_fields=pd.Series([len(r) for r in rows], dtype="int64"),
        n_lines=pd.Series(last, dtype="int64") - pd.Series(first, dtype="int64") + 1,
        warning=warning if rows or warning else "header only: the file holds no records",
        unclosed_quote=unclosed,
    )


def clean_cells(values) -> pa.Array | pa.ChunkedArray:
    """Cell texts stripped of surrounding whitespace (as str.strip()), blank -> null."""
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = pa.array(values, type=pa.string())
    # most columns (ids, dates, codes) have no cell to strip: then no copy of the column
    arr = pc.utf8_trim_whitespace(values) if _may_need_strip(values) else values
    blank = pc.equal(arr, "")
    # most columns have no blank (or, as Arrow's CSV reader gives them, only null) cells: no copy
    return pc.if_else(blank, pa.scalar(None, pa.string()), arr) if pc.any(blank).as_py() else arr


def string_offsets(chunk: pa.Array) -> np.ndarray:
    """The offsets of a (large) string array's values in its data buffer (numpy, no copy)."""
    wide = pa.types.is_large_string(chunk.type)
    offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64 if wide else np.int32)
    return offsets[chunk.offset: chunk.offset + len(chunk) + 1]


def _may_need_strip(values: pa.Array | pa.ChunkedArray) -> bool:
    """False when no cell starts or ends with a byte that could be whitespace: ASCII
    whitespace and control bytes, or any non-ASCII byte (Unicode spaces are multi-byte).
    Read from the string buffers in numpy, a pass over the first and last bytes only."""
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    for chunk in chunks:
        if len(chunk) == 0 or chunk.null_count == len(chunk):
            continue
        if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
            return True
        data_buffer = chunk.buffers()[2]
        if data_buffer is None or data_buffer.size == 0:
            continue  # only empty texts
        offsets = string_offsets(chunk)
        data = np.frombuffer(data_buffer, dtype=np.uint8)
        starts, ends = offsets[:-1], offsets[1:]
        filled = ends > starts  # a null's slot may hold bytes: they are checked too (harmless)
        first, last = data[starts[filled]], data[ends[filled] - 1]
        if ((first <= 0x20) | (first >= 0x7F) | (last <= 0x20) | (last >= 0x7F)).any():
            return True
    return False


def cells_frame(rows: list[list[str]], width: int) -> pd.DataFrame:
    """Records -> one object column per position (None beyond a short row), cleaned in Arrow
    column by column (no intermediate 2-D object frame)."""
    if not rows:
        return pd.DataFrame(columns=range(width), dtype="object")
    columns = list(itertools.zip_longest(*rows, fillvalue=None))
    columns += [(None,) * len(rows)] * (width - len(columns))
    out = {}
    for i, values in enumerate(columns):
        out[i] = clean_cells(values).to_numpy(zero_copy_only=False)
    return pd.DataFrame(out, columns=range(width), dtype="object")


def read_delivery(data: bytes) -> CsvFile:
    """Decode and split one delivered file (raises UnreadableFile for a whole-file reject)."""
    text, encoding = decode(data)
    return read_csv_text(text, encoding=encoding)
