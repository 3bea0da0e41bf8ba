"""Run bookkeeping in ``ops.run``, and the summary an operator reads after a night."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path

import duckdb


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id such as ``20240305T021500-1a2b3c``."""
    now = now or datetime.now()
    return f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def start_run(con: duckdb.DuckDBPyConnection, run_id: str, inbox: Path) -> None:
    con.execute(
        "INSERT INTO ops.run(run_id, started_at, status, inbox) VALUES (?, now(), 'running', ?)",
        [run_id, str(inbox)],
    )


def finish_run(
    con: duckdb.DuckDBPyConnection, run_id: str, status: str, summary: dict, message: str | None = None
) -> None:
    con.execute(
        "UPDATE ops.run SET finished_at = now(), status = ?, summary = ?, message = ? WHERE run_id = ?",
        [status, json.dumps(summary, default=str), message, run_id],
    )


def warehouse_summary(con: duckdb.DuckDBPyConnection, run_id: str) -> dict:
    """Counts for the operator: this run's rows, and the state of core and marts."""
    one = lambda sql, *p: con.execute(sql, list(p)).fetchone()[0]  # noqa: E731
    read, loaded, quarantined = con.execute(
        "SELECT coalesce(sum(rows_read),0), coalesce(sum(rows_loaded),0), coalesce(sum(rows_quarantined),0) "
        "FROM ops.delivery WHERE run_id = ?",
        [run_id],
    ).fetchone()
    by_source = dict(con.execute("SELECT source, count(*) FROM core.casualty GROUP BY 1 ORDER BY 1").fetchall())
    return {
        "run_id": run_id,
        "deliveries_loaded": one("SELECT count(*) FROM ops.delivery WHERE run_id = ? AND status = 'loaded'", run_id),
        "files_skipped": one(
            "SELECT count(*) FROM ops.run_file WHERE run_id = ? AND action = 'skipped_duplicate'", run_id
        ),
        "files_rejected": one("SELECT count(*) FROM ops.delivery WHERE run_id = ? AND status = 'rejected'", run_id),
        "rows_read": int(read),
        "rows_loaded": int(loaded),
        "rows_quarantined": int(quarantined),
        "er_contacts": one("SELECT count(*) FROM core.er_contact"),
        "police_accidents": one("SELECT count(*) FROM core.police_accident"),
        "casualties": one("SELECT count(*) FROM core.casualty"),
        "casualties_by_source": by_source,
        "links": by_source.get("both", 0),
    }
