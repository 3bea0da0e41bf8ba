"""Run bookkeeping in ``ops.run`` / ``ops.run_stage``, and the summary an operator reads after a night.

Also the operational helpers of the nightly run: recovery after a killed run, per-stage timing
(wall, CPU, peak memory), the inbox's waiting files, and the named crash points the
kill-and-rerun tests use (``SKADESTUE_CRASH_AFTER``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import resource
import shutil
import signal
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

import duckdb

log = logging.getLogger(__name__)

#: The stages of a nightly run, in order (names as in ops.run_stage.stage).
STAGES = (
    "ingest", "validate_raw", "geocode", "validate_geocoded", "link", "validate_linked",
    "hotspots", "validate_hotspots", "publish",
)

#: Environment variable naming a crash point: the process SIGKILLs itself when it gets there.
CRASH_ENV = "SKADESTUE_CRASH_AFTER"


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id such as ``20240305T021500-1a2b3c``."""
    now = now or datetime.now()
    return f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL if ``SKADESTUE_CRASH_AFTER`` names this point (tests only).

    Points in the flow: ``start`` (run row written), ``<stage>`` (the stage committed and
    recorded, e.g. ``ingest``, ``geocode``, ``publish``). The kill-and-rerun test adds points
    inside stages (``ingest/<n>``: after the n-th delivery's commit, ...).
    """
    if os.environ.get(CRASH_ENV) == name:
        log.warning("crash point %s reached: killing the process (SIGKILL)", name)
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)


# --- ops.run ---------------------------------------------------------------------------------


def start_run(
    con: duckdb.DuckDBPyConnection, run_id: str, inbox: Path, *, flow_run_id: str | None = None
) -> None:
    con.execute(
        "INSERT INTO ops.run(run_id, started_at, status, inbox, pid, host, flow_run_id) "
        "VALUES (?, now(), 'running', ?, ?, ?, ?)",
        [run_id, str(inbox), os.getpid(), socket.gethostname(), flow_run_id],
    )


def finish_run(
    con: duckdb.DuckDBPyConnection, run_id: str, status: str, summary: dict, message: str | None = None,
    *, failed_stage: str | None = None,
) -> None:
    con.execute(
        "UPDATE ops.run SET finished_at = now(), status = ?, summary = ?, message = ?, failed_stage = ?, "
        "rows_read = ?, rows_loaded = ?, rows_quarantined = ?, "
        "seconds = date_diff('millisecond', started_at, now()) / 1000.0 WHERE run_id = ?",
        [status, json.dumps(summary, default=str), message, failed_stage, summary.get("rows_read"),
         summary.get("rows_loaded"), summary.get("rows_quarantined"), run_id],
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
        "rows_quarantined_by_gates": one(
            "SELECT count(*) FROM quality.quarantine WHERE run_id = ? AND stage <> 'ingest'", run_id
        ),
        "er_contacts": one("SELECT count(*) FROM core.er_contact"),
        "police_accidents": one("SELECT count(*) FROM core.police_accident"),
        "casualties": one("SELECT count(*) FROM core.casualty"),
        "casualties_by_source": by_source,
        "links": by_source.get("both", 0),
    }


# --- recovery after a killed run ----------------------------------------------------------------


def recover(con: duckdb.DuckDBPyConnection, publish_dir: Path, current_run: str | None = None) -> list[str]:
    """Tidy up after runs that died (SIGKILL, power cut); call while holding the run lock.

    Runs still marked ``running`` become ``interrupted`` (naming the stage they were in); the
    warehouse itself needs nothing: every stage commits in one transaction, so a killed stage
    left nothing behind. Publication leftovers are cleaned: a half-built ``.publish-<run>``
    staging dir is deleted, and if the process died between the two renames of the swap
    (publish dir moved away, new one not yet in place), the previous layers are put back.
    Returns the run ids marked interrupted.
    """
    stale = con.execute(
        "SELECT run_id FROM ops.run WHERE status = 'running' AND run_id IS DISTINCT FROM ? ORDER BY started_at",
        [current_run],
    ).fetchall()
    marked = []
    for (run_id,) in stale:
        done = {r[0] for r in con.execute("SELECT stage FROM ops.run_stage WHERE run_id = ?", [run_id]).fetchall()}
        stage = next((s for s in STAGES if s not in done), None)
        con.execute(
            "UPDATE ops.run SET status = 'interrupted', failed_stage = ?, finished_at = coalesce(finished_at, now()), "
            "message = ? WHERE run_id = ?",
            [stage, f"the process stopped during stage {stage} (killed or crashed); nothing of that stage "
                    "was committed, and the next run redid it", run_id],
        )
        log.warning("run %s was interrupted during %s; marked 'interrupted'", run_id, stage)
        marked.append(run_id)
    clean_publish_leftovers(Path(publish_dir))
    return marked


def clean_publish_leftovers(publish_dir: Path) -> list[str]:
    """Remove the staging/old dirs a killed publication left; restore the layers if needed."""
    parent = publish_dir.parent
    actions: list[str] = []
    if not parent.is_dir():
        return actions
    olds = sorted(parent.glob(".publish-old-*"), key=lambda p: p.stat().st_mtime)
    if not publish_dir.exists() and olds:
        olds[-1].rename(publish_dir)  # killed between "old away" and "new in": put yesterday's back
        actions.append(f"restored {publish_dir} from {olds[-1].name}")
        olds = olds[:-1]
    for leftover in [*olds, *parent.glob(".publish-*")]:
        if leftover.exists() and leftover.is_dir() and leftover.name.startswith(".publish-"):
            shutil.rmtree(leftover, ignore_errors=True)
            actions.append(f"removed {leftover.name}")
    for a in actions:
        log.warning("publication leftovers: %s", a)
    return actions


# --- per-stage records ----------------------------------------------------------------------------


def _peak_rss_mb() -> float | None:
    """The process's peak resident memory since the last reset (VmHWM), in MB."""
    try:
        m = re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text())
        return int(m.group(1)) / 1024 if m else None
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak_rss() -> None:
    """Reset VmHWM so the next reading is this stage's own peak (Linux >= 4.0; best effort)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@dataclass
class StageRecord:
    """What a stage reports into ops.run_stage (set ``rows`` and ``detail`` inside the block)."""

    run_id: str
    stage: str
    rows: int | None = None
    detail: dict = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mb: float | None = None


def _stage_seq(stage: str) -> int:
    return STAGES.index(stage) + 1 if stage in STAGES else len(STAGES) + 1


@contextmanager
def stage(
    con: duckdb.DuckDBPyConnection, run_id: str, name: str, *, context: Callable[[], str | None] | None = None
) -> Iterator[StageRecord]:
    """Time a stage and write its ``ops.run_stage`` row when it ends (also when it fails).

    The row is written after the stage's own transaction committed; then the crash point
    ``name`` fires (tests). ``context`` names what the stage was working on when it failed
    (ingest: the file), for the message.
    """
    rec = StageRecord(run_id, name)
    _reset_peak_rss()
    started = datetime.now()
    t0, c0 = time.perf_counter(), _cpu_seconds()
    status, message = "succeeded", None
    try:
        yield rec
    except BaseException as exc:
        status, message = "failed", f"{type(exc).__name__}: {exc}"
        where = context() if context is not None else None
        if where:
            message = f"{where}: {message}"
        message = message[:2000]
        raise
    finally:
        rec.seconds = round(time.perf_counter() - t0, 3)
        rec.cpu_seconds = round(_cpu_seconds() - c0, 3)
        rec.peak_rss_mb = _peak_rss_mb()
        try:
            con.execute(
                "INSERT OR REPLACE INTO ops.run_stage(run_id, stage, seq, started_at, finished_at, status, "
                "seconds, cpu_seconds, peak_rss_mb, rows, detail, message) VALUES (?, ?, ?, ?, now(), ?, ?, ?, ?, ?, ?, ?)",
                [run_id, name, _stage_seq(name), started, status, rec.seconds, rec.cpu_seconds, rec.peak_rss_mb,
                 rec.rows, json.dumps(rec.detail, default=str), message],
            )
        except duckdb.Error as exc:  # a bookkeeping failure must not hide the stage's own error
            log.warning("could not record stage %s of run %s: %s", name, run_id, exc)
        log.info("stage %s %s in %.1f s (CPU %.1f s, peak %s MB)", name, status, rec.seconds, rec.cpu_seconds,
                 f"{rec.peak_rss_mb:.0f}" if rec.peak_rss_mb else "?")
    crash_point(name)


def ingest_failed_file(con: duckdb.DuckDBPyConnection, settings, run_id: str) -> str | None:
    """After an ingest error: the inbox file it was on (the first, in load order, this run did
    not record). Deliveries commit one by one, so the files before it are loaded."""
    from skadestue.ingest.delivery import discover

    try:
        files = [rel for rel, _, _ in discover(Path(settings.inbox), settings)]
        seen = {r[0] for r in con.execute("SELECT file_name FROM ops.run_file WHERE run_id = ?", [run_id]).fetchall()}
    except Exception:  # noqa: BLE001 - best effort, for the error message only
        return None
    return next((f for f in files if f not in seen), None)


# --- what waits in the inbox -----------------------------------------------------------------


def inbox_waiting(con: duckdb.DuckDBPyConnection | None, settings) -> list[dict]:
    """Files in the inbox the next run will load (content not loaded before), oldest first.

    Without a connection (the warehouse is busy) every file is listed with ``state`` unknown.
    """
    from skadestue.ingest.delivery import discover
    from skadestue.ingest.readers import content_hash

    inbox = Path(settings.inbox)
    if not inbox.is_dir():
        return []
    known: set[str] | None = None
    if con is not None:
        known = {r[0] for r in con.execute("SELECT content_hash FROM ops.delivery").fetchall()}
    out = []
    for rel, path, spec in discover(inbox, settings):
        st = path.stat()
        if known is not None and content_hash(path.read_bytes()) in known:
            continue
        out.append({
            "file": rel, "source": spec.source, "bytes": st.st_size,
            "modified": datetime.fromtimestamp(st.st_mtime).isoformat(timespec="seconds"),
            "state": "new" if known is not None else "unknown (warehouse busy)",
        })
    return sorted(out, key=lambda r: (r["modified"], r["file"]))


def recent_runs(con: duckdb.DuckDBPyConnection, n: int = 10) -> list[dict]:
    """The last ``n`` runs, newest first."""
    cur = con.execute(
        "SELECT run_id, status, started_at, finished_at, seconds, rows_read, rows_loaded, rows_quarantined, "
        "failed_stage, message FROM ops.run ORDER BY started_at DESC LIMIT ?",
        [n],
    )
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def run_stages(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict]:
    """The stage rows of one run, in order."""
    cur = con.execute(
        "SELECT stage, status, seconds, cpu_seconds, peak_rss_mb, rows, message FROM ops.run_stage "
        "WHERE run_id = ? ORDER BY seq",
        [run_id],
    )
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


# --- Prefect artifact ----------------------------------------------------------------------------


def run_summary_markdown(con: duckdb.DuckDBPyConnection, run_id: str) -> str:
    """The run as markdown: status, rows, quarantine, and a table of the stages."""
    row = con.execute(
        "SELECT status, started_at, finished_at, seconds, rows_read, rows_loaded, rows_quarantined, failed_stage, "
        "message, summary FROM ops.run WHERE run_id = ?",
        [run_id],
    ).fetchone()
    if row is None:
        return f"# Nightly run {run_id}\n\nNo record in ops.run."
    status, started, finished, seconds, read, loaded, quarantined, failed_stage, message, summary = row
    summary = json.loads(summary) if summary else {}
    lines = [
        f"# Nightly run {run_id}: {status}", "",
        f"Started {started:%Y-%m-%d %H:%M:%S}, finished {finished:%H:%M:%S} ({seconds or 0:.1f} s)."
        if finished else f"Started {started:%Y-%m-%d %H:%M:%S}.", "",
        "| rows read | loaded | quarantined at ingest | quarantined by gates | casualties | links |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {read or 0:,} | {loaded or 0:,} | {quarantined or 0:,} | {summary.get('rows_quarantined_by_gates', 0):,} "
        f"| {summary.get('casualties', 0):,} | {summary.get('links', 0):,} |", "",
        "| stage | status | wall s | CPU s | peak MB | rows |", "|---|---|---:|---:|---:|---:|",
    ]
    for s in run_stages(con, run_id):
        rows = "" if s["rows"] is None else f"{s['rows']:,}"
        lines.append(
            f"| {s['stage']} | {s['status']} | {s['seconds']:.1f} | {s['cpu_seconds'] or 0:.1f} | "
            f"{s['peak_rss_mb'] or 0:.0f} | {rows} |"
        )
    if failed_stage or message:
        lines += ["", f"**Failed in stage `{failed_stage}`**: {message}"]
    return "\n".join(lines)


def publish_run_artifact(con: duckdb.DuckDBPyConnection, run_id: str) -> str | None:
    """Attach the run summary to the current Prefect flow run (no-op outside Prefect)."""
    try:
        from prefect.artifacts import create_markdown_artifact
        from prefect.context import FlowRunContext, TaskRunContext
    except ImportError:  # pragma: no cover - prefect is a dependency
        return None
    if FlowRunContext.get() is None and TaskRunContext.get() is None:
        return None
    markdown = run_summary_markdown(con, run_id)
    try:
        create_markdown_artifact(markdown=markdown, key="nightly-run", description=f"Nightly run {run_id}")
    except Exception as exc:  # noqa: BLE001 - a report must never fail the run
        log.warning("could not create the run summary artifact: %s", exc)
        return None
    return markdown
