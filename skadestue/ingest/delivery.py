"""Load the inbox: one delivery per file, one transaction per delivery, every row accounted.

For each file (sorted by name): hash it; skip it when the hash was loaded before; decode and
split it; map its header onto the canonical columns; type the rows; and write ``raw.*``
(every row), ``staging.*`` (the usable rows), ``quality.quarantine`` (the rest, with reasons)
and ``ops.delivery`` / ``ops.run_file`` in one transaction. rows_read = rows_loaded +
rows_quarantined is checked against the database before the commit.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from skadestue.config import Settings
from skadestue.ingest.checks import Findings
from skadestue.ingest.er import ER_SPEC
from skadestue.ingest.police import ACCIDENT_SPEC, PERSON_SPEC
from skadestue.ingest import er_sql
from skadestue.ingest.readers import CsvFile, UnreadableFile, read_delivery
from skadestue.ingest.records import read_records
from skadestue.ingest.sources import CprFacts, SourceSpec, Typed
from skadestue.keyed_hash import hmac_hex
from skadestue.pseudonym import (
    parse_cpr,
    pseudonymise_parsed,
    redact_cpr,
    redact_cpr_series,
    redact_free_text_series,
    scrub_valid_cpr_series,
    text_array,
)

log = logging.getLogger(__name__)

SPECS: tuple[SourceSpec, ...] = (ER_SPEC, ACCIDENT_SPEC, PERSON_SPEC)
#: Sources whose big files are loaded by the DuckDB path (records.py + er_sql.py); the others,
#: and smaller files, by the pandas path (readers.py + prepare_delivery), which writes the same
#: rows (tests/test_ingest_sql.py, and the hostile-file tests run on both paths).
SQL_SOURCES: frozenset[str] = frozenset({ER_SPEC.source})
#: From this size up a file goes through DuckDB: below it, DuckDB's fixed cost of planning a
#: delivery's queries (~0.2 s) is more than the per-row work it saves (the two meet near
#: 6,000 ER rows, 1 MB); a night's files are small, a full reload's large.
SQL_MIN_BYTES = 1_000_000


class IngestAccountingError(RuntimeError):
    """rows_read != rows_loaded + rows_quarantined for a delivery (a bug: nothing committed)."""


@dataclass
class DeliveryResult:
    """The outcome of one delivered file."""

    file: str
    source: str
    status: str  # loaded | rejected
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    message: str | None = None
    delivery_id: str | None = None
    delivery_seq: int | None = None
    encoding: str | None = None
    delimiter: str | None = None
    extra_columns: list[str] = field(default_factory=list)
    notes: int = 0


@dataclass
class IngestReport:
    """What one ingest run did: a row per delivery, plus the files skipped as duplicates."""

    run_id: str
    deliveries: list[DeliveryResult] = field(default_factory=list)
    skipped_duplicates: list[str] = field(default_factory=list)
    #: Files whose content changed between hashing and reading: not loaded, left in the inbox.
    changed_while_read: list[str] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return sum(d.rows_read for d in self.deliveries)

    @property
    def rows_loaded(self) -> int:
        return sum(d.rows_loaded for d in self.deliveries)

    @property
    def rows_quarantined(self) -> int:
        return sum(d.rows_quarantined for d in self.deliveries)

    @property
    def rejected(self) -> list[str]:
        return [d.file for d in self.deliveries if d.status == "rejected"]


class _RejectedFile(Exception):
    """A whole file is rejected (message, data rows counted so far)."""

    def __init__(self, message: str, rows_read: int, csv_file: CsvFile | None = None) -> None:
        super().__init__(message)
        self.rows_read = rows_read
        self.csv_file = csv_file


# --------------------------------------------------------------------------- discovery


def discover(inbox: Path, settings: Settings) -> list[tuple[str, Path, SourceSpec]]:
    """Delivered files in the inbox, with their source, sorted by path relative to the inbox."""
    found: dict[str, tuple[Path, SourceSpec]] = {}
    for spec in SPECS:
        for path in inbox.glob(spec.glob(settings)):
            if path.is_file():
                found.setdefault(path.relative_to(inbox).as_posix(), (path, spec))
    return [(rel, p, spec) for rel, (p, spec) in sorted(found.items())]


def loaded_hashes(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Every content hash loaded before, with the (first) delivery id that holds it."""
    return dict(con.execute(
        "SELECT content_hash, arg_min(delivery_id, delivery_seq) FROM ops.delivery GROUP BY content_hash"
    ).fetchall())


# --------------------------------------------------------------------------- columns


@dataclass
class ColumnMap:
    """Where each canonical column is in the file's header, and what is left over."""

    positions: dict[str, int]
    extra: dict[str, int]
    missing_required: list[str]


def map_columns(header: list[str], spec: SourceSpec, mapping: dict[str, str]) -> ColumnMap:
    """Match the header case-insensitively: the configured name first, then the canonical one."""
    by_name: dict[str, int] = {}
    for i, name in enumerate(header):
        by_name.setdefault(name.strip().lower(), i)
    positions: dict[str, int] = {}
    for col in spec.columns:
        for candidate in (mapping.get(col, col), col):
            i = by_name.get(candidate.strip().lower())
            if i is not None and i not in positions.values():
                positions[col] = i
                break
    used = set(positions.values())
    extra: dict[str, int] = {}
    for i, name in enumerate(header):
        if i in used:
            continue
        label = name or f"column_{i + 1}"
        while label in extra:
            label += "_"
        extra[label] = i
    missing = [c for c in spec.required if c not in positions]
    return ColumnMap(positions, extra, missing)


def missing_columns_message(spec: SourceSpec, cols: ColumnMap, mapping: dict[str, str], header: list[str]) -> str:
    """An actionable message naming the missing required columns and the header found."""
    wanted = ", ".join(
        f"{c}" + (f" (configured as '{mapping[c]}')" if mapping.get(c, c) != c else "")
        for c in cols.missing_required
    )
    return (
        f"required column(s) missing: {wanted}; header has: {', '.join(header)[:300]}. "
        f"Fix the export or map the column in skadestue.toml [ingest] settings."
    )


# --------------------------------------------------------------------------- per-delivery frames


@dataclass
class Prepared:
    """Everything one delivery writes, computed in memory before the transaction."""

    raw: pd.DataFrame
    staging: pd.DataFrame
    quarantine: pd.DataFrame
    notes: pd.DataFrame
    rows_read: int
    rows_quarantined: int
    extra_columns: list[str]


def canonical_frame(csv_file: CsvFile, spec: SourceSpec, cols: ColumnMap) -> pd.DataFrame:
    """The delivered cells under canonical lower-case names (None where the column is absent)."""
    n = len(csv_file.cells)
    data = {}
    for col in spec.columns:
        i = cols.positions.get(col)
        data[col.lower()] = (
            csv_file.cells[i] if i is not None and i in csv_file.cells.columns
            else pd.Series([None] * n, dtype="object")
        )
    return pd.DataFrame(data, index=range(n))


def extra_json(csv_file: CsvFile, cols: ColumnMap) -> tuple[pd.Series, list[str]]:
    """Unknown columns as one JSON object per row (CPR-like runs redacted), and their names."""
    n = len(csv_file.cells)
    keep = {
        name: i for name, i in cols.extra.items()
        if i in csv_file.cells.columns
        and not (name.startswith("column_") and csv_file.cells[i].isna().all())
    }
    if not keep or n == 0:
        return pd.Series([None] * n, dtype="object"), list(keep)
    frame = pd.DataFrame({name: redact_cpr_series(csv_file.cells[i]) for name, i in keep.items()})
    lines = frame.to_json(orient="records", lines=True, force_ascii=False).splitlines()
    return pd.Series(lines, dtype="object"), list(keep)


def cpr_facts(df: pd.DataFrame, spec: SourceSpec, key: bytes) -> CprFacts | None:
    """Pseudonym, status, birth date and sex of the CPR column (the number is not kept)."""
    if spec.cpr_column is None:
        return None
    parsed = parse_cpr(df[spec.cpr_column.lower()])
    return CprFacts(
        status=parsed["status"],
        birth_date=parsed["birth_date"],
        sex=parsed["sex"],
        pseudonym=pseudonymise_parsed(parsed, key),
    )


def field_count_findings(csv_file: CsvFile, rejects: Findings) -> None:
    """Rows with fewer fields than the header, or extra non-empty fields -> quarantine."""
    width = len(csv_file.header)
    short = csv_file.n_fields < width
    beyond = [c for c in csv_file.cells.columns if c >= width]
    overflow = (
        csv_file.cells[beyond].notna().any(axis=1) if beyond else pd.Series(False, index=short.index)
    )
    def message(extra: str):
        def build(rows: pd.Index) -> pd.Series:
            first = csv_file.line_no[rows]
            n_lines = csv_file.n_lines[rows]
            last = (first + n_lines - 1).astype("string")
            hint = pd.Series("", index=rows, dtype="string").mask(
                (n_lines > 1).to_numpy(),
                " (a quote character joined lines " + first.astype("string") + "-" + last + ")",
            )
            counts = csv_file.n_fields[rows].astype("string")
            return "line has " + counts + f" fields, the header has {width}{extra}" + hint
        return build

    rejects.add(short, None, message(""))
    rejects.add(overflow, None, message(" (extra values)"))
    if csv_file.unclosed_quote is not None:
        rejects.add(
            csv_file.unclosed_quote & ~short & ~overflow, None,
            "line ends inside a quoted field (unclosed quote, or the file was cut off)",
        )


def key_findings(
    df: pd.DataFrame, typed: Typed, spec: SourceSpec, line_no: pd.Series, rejects: Findings
) -> Callable[[np.ndarray], np.ndarray]:
    """CPR-looking keys and duplicate keys within the file.

    Returns a function giving the record key text (``sygehus|kontakt_id``) of given row
    positions: it is only needed for the rows with findings, so it is built for those only.
    """
    scrubbed = {}
    for col in spec.key:
        raw = df[col.lower()]
        scrubbed[col] = scrub_valid_cpr_series(raw)
        rejects.add(
            raw.notna() & (scrubbed[col] != raw), col,
            f"{col} looks like a CPR number; the row is not stored",
        )

    def record_key(rows) -> pd.Series:
        parts = [scrubbed[c].iloc[rows].astype("string").fillna("") for c in spec.key]
        out = parts[0]
        for p in parts[1:]:
            out = out + "|" + p.to_numpy()
        return out

    skey = list(spec.staging_key)
    complete = typed.staging[skey].notna().all(axis=1)
    keyed = typed.staging.loc[complete, skey].assign(_line=line_no[complete])
    superseded = keyed.duplicated(subset=skey, keep="last")
    last_line = keyed.groupby(skey, sort=False, dropna=False)["_line"].transform("last")
    rejects.add(
        superseded.reindex(df.index, fill_value=False),
        None,
        lambda r: ("duplicate key " + record_key(r).to_numpy() + " in this file: superseded by line "
                   + last_line[r].astype("Int64").astype("string").to_numpy()),
    )
    return lambda rows: record_key(rows).astype("object").to_numpy()


def row_hash(line_text: pd.Series, key: bytes) -> pd.Series:
    """Audit hash of each original record: HMAC-SHA256 keyed with the pseudonym key, so the
    hash of a line holding a CPR cannot be brute-forced back to the number."""
    hashed = hmac_hex(pa.array(line_text.to_numpy(dtype=object), type=pa.string()), key)
    return pd.Series(hashed.to_numpy(), index=line_text.index, dtype="object")


def raw_frame(
    df: pd.DataFrame, spec: SourceSpec, cpr: CprFacts | None, extra: pd.Series,
    csv_file: CsvFile, key: bytes,
) -> pd.DataFrame:
    """raw.* rows: text as delivered, CPR replaced by its facts, narrative only as a length."""
    skip = {c.lower() for c in (spec.cpr_column, spec.narrative_column) if c}
    raw = pd.DataFrame(index=df.index)
    for col in spec.columns:
        name = col.lower()
        if name in skip:
            continue
        if col in spec.free_text_columns:
            raw[name] = redact_free_text_series(df[name])
        else:
            raw[name] = scrub_valid_cpr_series(df[name])
    if spec.narrative_column:
        raw[f"{spec.narrative_column.lower()}_chars"] = (
            df[spec.narrative_column.lower()].astype("string").str.len().astype("Int64")
        )
    if cpr is not None:
        raw["cpr_pseudonym"] = cpr.pseudonym
        raw["cpr_status"] = cpr.status
        raw["cpr_birth_date"] = cpr.birth_date
        raw["cpr_sex"] = cpr.sex
    raw["extra"] = extra.to_numpy()
    raw["line_no"] = csv_file.line_no.to_numpy()
    raw["row_hash"] = row_hash(csv_file.line_text, key).to_numpy()
    return raw


def _with_lines(
    findings: pd.DataFrame, line_no: pd.Series, record_key: Callable[[np.ndarray], np.ndarray]
) -> pd.DataFrame:
    """Findings with their file line and record key; values and reasons CPR-redacted."""
    out = findings.copy()
    rows = out["row"].to_numpy()
    out["line_no"] = line_no.to_numpy()[rows] if len(out) else pd.Series(dtype="int64")
    out["record_key"] = record_key(rows) if len(out) else pd.Series(dtype="object")
    out["value"] = redact_cpr_series(out["value"], phones=False)
    out["reason"] = redact_cpr_series(out["reason"], phones=False)
    return out


def prepare_delivery(csv_file: CsvFile, spec: SourceSpec, cols: ColumnMap, settings: Settings, key: bytes) -> Prepared:
    """Type, check and split one decoded file into raw, staging, quarantine and note frames."""
    df = canonical_frame(csv_file, spec, cols)
    cpr = cpr_facts(df, spec, key)
    typed = spec.type_rows(df, cpr, settings)
    field_count_findings(csv_file, typed.rejects)
    record_key = key_findings(df, typed, spec, csv_file.line_no, typed.rejects)
    rejects = _with_lines(typed.rejects.frame(), csv_file.line_no, record_key)
    bad_rows = pd.Index(rejects["row"].unique())
    good = ~df.index.isin(bad_rows)
    staging = typed.staging[good].copy()
    for col in staging.columns:
        if col != "cpr_pseudonym" and staging[col].dtype == object:
            staging[col] = scrub_valid_cpr_series(staging[col])
    staging["line_no"] = csv_file.line_no[good].to_numpy()
    notes = _with_lines(typed.notes.frame(), csv_file.line_no, record_key)
    notes = notes[~notes["row"].isin(bad_rows)]
    extra, extra_names = extra_json(csv_file, cols)
    return Prepared(
        raw=raw_frame(df, spec, cpr, extra, csv_file, key),
        staging=staging,
        quarantine=rejects,
        notes=notes,
        rows_read=len(df),
        rows_quarantined=len(bad_rows),
        extra_columns=extra_names,
    )


# --------------------------------------------------------------------------- writing


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, select: str = "*") -> None:
    """INSERT a frame BY NAME (text columns handed over as Arrow strings, whatever they hold)."""
    if frame.empty:
        return
    arrays = {}
    for col in frame.columns:
        values = frame[col]
        if values.dtype == object:
            try:
                arrays[col] = text_array(values)
            except (pa.ArrowTypeError, pa.ArrowInvalid):  # not all text: hand over str(value)
                arrays[col] = text_array(values.where(values.isna(), values.astype(str)))
        else:
            arrays[col] = pa.array(values, from_pandas=True)
    view = "_ingest_frame"
    con.register(view, pa.table(arrays))
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT {select} FROM {view}")
    finally:
        con.unregister(view)


def _next_seq(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("SELECT coalesce(max(delivery_seq), 0) + 1 FROM ops.delivery").fetchone()[0])


def _insert_delivery(con: duckdb.DuckDBPyConnection, result: DeliveryResult, run_id: str, digest: str) -> None:
    con.execute(
        "INSERT INTO ops.delivery (delivery_id, delivery_seq, run_id, source, file_name, content_hash, "
        "loaded_at, status, encoding, delimiter, rows_read, rows_loaded, rows_quarantined, "
        "extra_columns, message) VALUES (?, ?, ?, ?, ?, ?, now(), ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            result.delivery_id, result.delivery_seq, run_id, result.source, result.file, digest,
            result.status, result.encoding, result.delimiter, result.rows_read, result.rows_loaded,
            result.rows_quarantined, result.extra_columns, result.message,
        ],
    )


def _insert_run_file(con: duckdb.DuckDBPyConnection, run_id: str, file: str, digest: str, action: str, delivery_id: str | None) -> None:
    con.execute(
        "INSERT OR REPLACE INTO ops.run_file (run_id, file_name, content_hash, action, delivery_id) "
        "VALUES (?, ?, ?, ?, ?)",
        [run_id, file, digest, action, delivery_id],
    )


def _findings_rows(frame: pd.DataFrame, run_id: str, result: DeliveryResult) -> pd.DataFrame:
    """Findings with the delivery's columns, ready for quality.quarantine / ingest_note."""
    out = frame.drop(columns=["row"]).copy()
    out["run_id"] = run_id
    out["delivery_id"] = result.delivery_id
    out["source"] = result.source
    out["file_name"] = result.file
    return out


def staged_counts(con: duckdb.DuckDBPyConnection, result: DeliveryResult, spec: SourceSpec) -> tuple[int, int]:
    """The delivery's staging rows and their distinct record keys (the table does not index
    them, migration 015). The keys themselves: DuckDB's hash() of similar texts collides
    (1.3 % of the benchmark's kontakt_ids), so counting distinct hashes would prove nothing."""
    key = ", ".join(spec.staging_key)
    return con.execute(
        f"SELECT count(*), count(DISTINCT ({key})) FROM {spec.staging_table} WHERE delivery_id = ?",
        [result.delivery_id],
    ).fetchone()


def raw_counts(con: duckdb.DuckDBPyConnection, result: DeliveryResult, spec: SourceSpec) -> tuple[int, int]:
    """The delivery's raw rows and their distinct line numbers."""
    return con.execute(
        f"SELECT count(*), count(DISTINCT line_no) FROM {spec.raw_table} WHERE delivery_id = ?", [result.delivery_id]
    ).fetchone()


def check_accounting(
    con: duckdb.DuckDBPyConnection, result: DeliveryResult, spec: SourceSpec,
    staged: tuple[int, int] | None = None, raw: tuple[int, int] | None = None,
) -> None:
    """rows_read = rows_loaded + rows_quarantined, in the report and in the tables; and the
    keys the tables do not index are unique: raw by line, staging by record key (migration 015).
    ``staged`` and ``raw``: the counts of :func:`staged_counts` and :func:`raw_counts` taken
    after the last write to the table in this transaction by the big ER path's own, cheaper
    checks (:func:`~skadestue.ingest.er_sql.staged_counts`, :func:`~skadestue.ingest.er_sql.raw_counts`);
    where they are None (those checks failed) the exact counts are taken here."""
    did = result.delivery_id
    key = ", ".join(spec.staging_key)
    n_raw, n_raw_lines = raw or raw_counts(con, result, spec)
    n_staged, n_staged_keys = staged or staged_counts(con, result, spec)
    n_quar = con.execute(
        "SELECT count(DISTINCT line_no) FROM quality.quarantine WHERE delivery_id = ? AND line_no IS NOT NULL",
        [did],
    ).fetchone()[0]
    ok = (
        result.rows_read == result.rows_loaded + result.rows_quarantined
        and n_raw == result.rows_read
        and n_staged == result.rows_loaded
        and n_quar == result.rows_quarantined
    )
    if not ok:
        raise IngestAccountingError(
            f"{result.file}: row accounting failed (read {result.rows_read}, loaded "
            f"{result.rows_loaded}, quarantined {result.rows_quarantined}; raw {n_raw}, "
            f"staging {n_staged}, quarantined lines {n_quar}); nothing was committed"
        )
    if n_raw_lines != n_raw or n_staged_keys != n_staged:
        raise IngestAccountingError(
            f"{result.file}: duplicate rows (raw {n_raw} rows on {n_raw_lines} lines, staging {n_staged} rows "
            f"with {n_staged_keys} distinct ({key})); nothing was committed. This is a bug in the ingest: "
            "report it with the file"
        )


def write_loaded(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, prepared: Prepared, result: DeliveryResult,
    run_id: str, digest: str,
) -> None:
    """Write one loaded delivery (call inside a transaction)."""
    raw = prepared.raw.assign(delivery_id=result.delivery_id)
    staging = prepared.staging.assign(delivery_id=result.delivery_id, delivery_seq=result.delivery_seq)
    _insert_delivery(con, result, run_id, digest)
    _insert(con, spec.raw_table, raw)
    _insert(con, spec.staging_table, staging, spec.staging_select)
    _insert(con, "quality.quarantine", _findings_rows(prepared.quarantine, run_id, result).assign(stage="ingest"))
    notes = _findings_rows(prepared.notes, run_id, result).rename(columns={"reason": "note"})
    _insert(con, "quality.ingest_note", notes)
    _insert_run_file(con, run_id, result.file, digest, "loaded", result.delivery_id)
    check_accounting(con, result, spec)


def write_rejected(con: duckdb.DuckDBPyConnection, result: DeliveryResult, run_id: str, digest: str) -> None:
    """Record a whole-file reject: the delivery, one quarantine line (line_no NULL), the run file."""
    _insert_delivery(con, result, run_id, digest)
    con.execute(
        "INSERT INTO quality.quarantine (run_id, delivery_id, source, stage, file_name, line_no, "
        "record_key, column_name, value, reason) VALUES (?, ?, ?, 'ingest', ?, NULL, NULL, NULL, NULL, ?)",
        [run_id, result.delivery_id, result.source, result.file, f"whole file rejected: {result.message}"],
    )
    _insert_run_file(con, run_id, result.file, digest, "rejected", result.delivery_id)


def _in_transaction(con: duckdb.DuckDBPyConnection, work: Callable[[], None]) -> None:
    """Run ``work`` in one transaction: all of it is committed, or none of it."""
    con.execute("BEGIN TRANSACTION")
    try:
        work()
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def read_and_map(data: bytes, spec: SourceSpec, settings: Settings) -> tuple[CsvFile, ColumnMap]:
    """Decode the file and map its header; raises _RejectedFile for a whole-file reject."""
    try:
        csv_file = read_delivery(data)
    except UnreadableFile as exc:
        raise _RejectedFile(str(exc), exc.rows_read) from None
    mapping = spec.mapping(settings)
    cols = map_columns(csv_file.header, spec, mapping)
    if cols.missing_required:
        raise _RejectedFile(
            missing_columns_message(spec, cols, mapping, csv_file.header), len(csv_file.cells), csv_file
        )
    return csv_file, cols


def _reject(con: duckdb.DuckDBPyConnection, result: DeliveryResult, run_id: str, digest: str,
            message: str, rows_read: int, encoding: str | None, delimiter: str | None) -> DeliveryResult:
    """Record a whole-file reject in one transaction."""
    result.status, result.message = "rejected", redact_cpr(message, phones=False)
    result.rows_read = result.rows_quarantined = rows_read
    result.encoding, result.delimiter = encoding, delimiter

    def reject() -> None:
        result.delivery_seq = _next_seq(con)
        write_rejected(con, result, run_id, digest)

    _in_transaction(con, reject)
    log.warning("rejected %s: %s", result.file, result.message)
    return result


class FileChanged(Exception):
    """The file changed while it was read (it is still being written)."""


@dataclass
class Delivered:
    """A delivered file's bytes and their content hash. :meth:`take` hands the bytes over,
    so they can be let go once parsed."""

    data: bytes | None
    digest: str

    def take(self) -> bytes:
        data, self.data = self.data, None
        if data is None:
            raise RuntimeError("the delivered bytes were taken already")
        return data


def _file_state(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def file_digest(path: Path) -> tuple[str, tuple[int, int]]:
    """The file's sha256 (as :func:`~skadestue.ingest.readers.content_hash`), read in blocks
    (a file loaded before is skipped without being held in memory), and its size and
    modification time; FileChanged if they changed while it was hashed."""
    state = _file_state(path)
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    if _file_state(path) != state:
        raise FileChanged(path)
    return digest, state


def read_delivered(path: Path, digest: str, state: tuple[int, int]) -> Delivered:
    """The bytes of the file hashed as ``digest``: FileChanged if its size or modification
    time is not what they were when it was hashed (a file still being written is left for
    the next run). Not hashed again: the size and time say the bytes are the ones hashed."""
    data = path.read_bytes()
    if len(data) != state[0] or _file_state(path) != state:
        raise FileChanged(path)
    return Delivered(data, digest)


def load_file(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, rel: str, delivered: Delivered,
    run_id: str, settings: Settings, key: bytes,
) -> DeliveryResult:
    """Load one new delivery (or reject it whole) in one transaction. The bytes are taken
    from ``delivered``, so a big file's bytes can be let go as soon as they are parsed."""
    digest = delivered.digest
    if spec.source in SQL_SOURCES and len(delivered.data or b"") >= SQL_MIN_BYTES:
        return load_file_sql(con, spec, rel, delivered, run_id, settings, key)
    data = delivered.take()
    result = DeliveryResult(
        file=rel, source=spec.source, status="loaded", rows_read=0, rows_loaded=0,
        rows_quarantined=0, delivery_id=f"{spec.source}-{digest[:16]}",
    )
    try:
        csv_file, cols = read_and_map(data, spec, settings)
    except _RejectedFile as exc:
        csv_file = exc.csv_file
        return _reject(con, result, run_id, digest, str(exc), exc.rows_read,
                       csv_file.encoding if csv_file else None, csv_file.delimiter if csv_file else None)
    prepared = prepare_delivery(csv_file, spec, cols, settings, key)
    result.encoding, result.delimiter = csv_file.encoding, csv_file.delimiter
    result.message = csv_file.warning
    result.rows_read = prepared.rows_read
    result.rows_quarantined = prepared.rows_quarantined
    result.rows_loaded = prepared.rows_read - prepared.rows_quarantined
    result.extra_columns = prepared.extra_columns
    result.notes = len(prepared.notes)

    def load() -> None:
        result.delivery_seq = _next_seq(con)
        write_loaded(con, spec, prepared, result, run_id, digest)

    _in_transaction(con, load)
    log.info(
        "loaded %s as %s: %d read, %d loaded, %d quarantined, %d notes",
        rel, result.delivery_id, result.rows_read, result.rows_loaded, result.rows_quarantined, result.notes,
    )
    return result


def load_file_sql(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, rel: str, delivered: Delivered,
    run_id: str, settings: Settings, key: bytes,
) -> DeliveryResult:
    """Load one new ER delivery through DuckDB (see er_sql), in one transaction."""
    digest = delivered.digest
    result = DeliveryResult(
        file=rel, source=spec.source, status="loaded", rows_read=0, rows_loaded=0,
        rows_quarantined=0, delivery_id=f"{spec.source}-{digest[:16]}",
    )
    data = delivered.take()
    log.info("reading %s (%.1f MB)", rel, len(data) / 1e6)
    try:
        records = read_records(data)
        del data  # the records hold what is needed (Arrow buffers); the file's bytes can go
    except UnreadableFile as exc:
        return _reject(con, result, run_id, digest, str(exc), exc.rows_read, None, None)
    mapping = spec.mapping(settings)
    cols = map_columns(records.header, spec, mapping)
    if cols.missing_required:
        message = missing_columns_message(spec, cols, mapping, records.header)
        return _reject(con, result, run_id, digest, message, records.count(con), records.encoding, records.delimiter)
    result.encoding, result.delimiter, result.message = records.encoding, records.delimiter, records.warning
    try:
        er_sql.insertion_order(con, False)
        prepared = er_sql.prepare_er(con, records, spec, cols.positions, cols.extra, settings, key)
        del records  # the original lines and cells (with the CPR numbers) are not needed any more
        pa.default_memory_pool().release_unused()  # give their memory back for the inserts and core
        result.rows_read = prepared.rows_read
        result.rows_quarantined = prepared.rows_quarantined
        result.rows_loaded = prepared.rows_read - prepared.rows_quarantined
        result.extra_columns = prepared.extra_columns
        result.notes = len(prepared.notes)

        def load() -> None:
            result.delivery_seq = _next_seq(con)
            _insert_delivery(con, result, run_id, digest)
            er_sql.write_staging(con, spec, result.delivery_id, result.delivery_seq)
            staged = er_sql.staged_counts(con, spec, result.delivery_id)
            er_sql.write_raw(con, spec, result.delivery_id)
            raw = er_sql.raw_counts(con, spec, result.delivery_id)
            _insert(con, "quality.quarantine",
                    _findings_rows(prepared.quarantine, run_id, result).assign(stage="ingest"))
            notes = _findings_rows(prepared.notes, run_id, result).rename(columns={"reason": "note"})
            _insert(con, "quality.ingest_note", notes)
            _insert_run_file(con, run_id, result.file, digest, "loaded", result.delivery_id)
            check_accounting(con, result, spec, staged, raw)

        _in_transaction(con, load)
    finally:
        er_sql.drop_temp(con)
        er_sql.insertion_order(con, True)
    log.info(
        "loaded %s as %s: %d read, %d loaded, %d quarantined, %d notes",
        rel, result.delivery_id, result.rows_read, result.rows_loaded, result.rows_quarantined, result.notes,
    )
    return result


def ingest_inbox(con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str) -> IngestReport:
    """Load every new file in ``settings.inbox`` (ER and police), skipping ones already loaded."""
    key = settings.require_pseudonym_key()
    inbox = Path(settings.inbox)
    if not inbox.is_dir():
        raise FileNotFoundError(
            f"inbox folder {inbox} does not exist; set SKADESTUE_INBOX or `inbox` in skadestue.toml"
        )
    report = IngestReport(run_id=run_id)
    loaded = loaded_hashes(con)
    skipped: list[tuple[str, str, str]] = []  # recorded in one transaction before the next load

    def record_skipped() -> None:
        if skipped:
            values = ", ".join(["(?, ?, ?, 'skipped_duplicate', ?)"] * len(skipped))
            params = [v for rel, d, e in skipped for v in (run_id, rel, d, e)]
            _in_transaction(con, lambda: con.execute(
                "INSERT OR REPLACE INTO ops.run_file (run_id, file_name, content_hash, action, delivery_id) "
                f"VALUES {values}", params))
            skipped.clear()

    for rel, path, spec in discover(inbox, settings):
        try:
            digest, state = file_digest(path)
            existing = loaded.get(digest)
            if existing is None:
                delivered = read_delivered(path, digest, state)
        except FileChanged:
            log.warning("%s changed while it was read (still being written?): left for the next run", rel)
            report.changed_while_read.append(rel)
            continue
        if existing is not None:
            skipped.append((rel, digest, existing))
            report.skipped_duplicates.append(rel)
            log.info("skipped %s: same content as delivery %s", rel, existing)
            continue
        record_skipped()
        result = load_file(con, spec, rel, delivered, run_id, settings, key)
        del delivered
        loaded.setdefault(digest, result.delivery_id)
        report.deliveries.append(result)
    record_skipped()
    return report
