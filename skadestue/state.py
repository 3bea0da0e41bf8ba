"""Fingerprints of a stage's input, so that a night redoes only what changed (issue 9).

A stage computes ``fingerprint(con, sql, salt)`` over the rows it builds from (the order of the
rows does not matter) plus the settings that shape its output, compares it with ``stored``, and
after building writes it with ``record`` inside the same transaction as its output. A killed run
therefore never leaves a fingerprint without its output. ``forget`` makes the next run rebuild.
"""

from __future__ import annotations

import hashlib
import json

import duckdb


def fingerprint(con: duckdb.DuckDBPyConnection, sql: str, salt: object = None) -> str:
    """Order-independent digest of the rows of ``sql`` (count, xor and sum of row hashes),
    combined with ``salt`` (any JSON-able value, e.g. the stage's settings)."""
    n, xor, total = con.execute(
        f"SELECT count(*), coalesce(bit_xor(hash(q)), 0), coalesce(sum(hash(q)::HUGEINT), 0) FROM ({sql}) q"
    ).fetchone()
    salted = json.dumps(salt, sort_keys=True, default=str) if salt is not None else ""
    return hashlib.sha256(f"{n}|{xor}|{total}|{salted}".encode()).hexdigest()[:32]


def stored(con: duckdb.DuckDBPyConnection, stage: str, part: str = "") -> str | None:
    """The fingerprint ``stage`` recorded for ``part``, or None when it never built it."""
    row = con.execute(
        "SELECT fingerprint FROM ops.stage_state WHERE stage = ? AND part = ?", [stage, part]
    ).fetchone()
    return row[0] if row else None


def stored_parts(con: duckdb.DuckDBPyConnection, stage: str) -> dict[str, str]:
    """All parts ``stage`` recorded: {part: fingerprint}."""
    return dict(con.execute("SELECT part, fingerprint FROM ops.stage_state WHERE stage = ?", [stage]).fetchall())


def record(con: duckdb.DuckDBPyConnection, stage: str, part: str, fp: str, run_id: str | None = None) -> None:
    """Store what ``stage`` built ``part`` from (call inside the stage's transaction)."""
    con.execute(
        "INSERT OR REPLACE INTO ops.stage_state (stage, part, fingerprint, run_id, built_at) "
        "VALUES (?, ?, ?, ?, now())",
        [stage, part, fp, run_id],
    )


def forget(con: duckdb.DuckDBPyConnection, stage: str | None = None, part: str | None = None) -> None:
    """Make the next run rebuild ``stage`` (all stages when None; one part when given)."""
    where, args = [], []
    if stage is not None:
        where.append("stage = ?")
        args.append(stage)
    if part is not None:
        where.append("part = ?")
        args.append(part)
    con.execute("DELETE FROM ops.stage_state" + (" WHERE " + " AND ".join(where) if where else ""), args)
