"""DuckDB connections with the spatial extension loaded from its wheel, and migrations.

The spatial extension ships in the ``duckdb-extension-spatial`` wheel; it is loaded from
there and never downloaded (``autoinstall_known_extensions=false``), so the pipeline runs
on a machine with no internet.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import re
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from skadestue.config import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = PROJECT_ROOT / "warehouse" / "migrations"
QUERIES_DIR = PROJECT_ROOT / "warehouse" / "queries"


def spatial_extension_path() -> Path:
    """Path of the spatial extension binary inside the installed wheel."""
    import duckdb_extension_spatial

    path = (
        Path(duckdb_extension_spatial.__file__).parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / "spatial.duckdb_extension"
    )
    if not path.exists():
        raise RuntimeError(
            f"The DuckDB spatial extension for duckdb {duckdb.__version__} is not at {path}. "
            "Install the matching wheel: pip install "
            f"duckdb-extension-spatial=={duckdb.__version__}"
        )
    return path


def load_spatial(con: duckdb.DuckDBPyConnection) -> None:
    """Load the spatial extension from the wheel, never from the network."""
    con.execute("SET autoinstall_known_extensions=false")
    con.execute("SET autoload_known_extensions=false")
    con.execute(f"LOAD '{spatial_extension_path()}'")


def connect(
    path: Path | str = ":memory:",
    *,
    settings: Settings | None = None,
    read_only: bool = False,
    migrate_schema: bool = True,
    busy_seconds: float = 0.0,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (or any DuckDB file) with spatial loaded and the schema current.

    ``busy_seconds``: while another process holds the file (DuckDB allows one writing process,
    or several read-only ones), retry for up to this long before raising.
    """
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = _open(str(path), read_only, busy_seconds)
    # a dropped table (a big delivery's temp cells: some 500 MB) goes back to the OS at once,
    # not on top of the next step's peak (DuckDB's default waits for drops over 512 MB); and
    # jemalloc's background threads return freed pages after their decay (skadestue/__init__)
    # even in an arena no thread allocates from any more: without them the core build after
    # a 1M-row delivery sometimes ran on top of the dropped cells (peak 1.9-2.2 GB, not 1.7)
    con.execute("SET allocator_bulk_deallocation_flush_threshold = '64MiB'")
    con.execute("SET allocator_background_threads = true")
    if settings is not None:
        con.execute(f"SET threads={int(settings.duckdb_threads)}")
        con.execute(f"SET memory_limit='{settings.duckdb_memory_limit}'")
    load_spatial(con)
    if migrate_schema and not read_only:
        migrate(con)
    return con


@contextmanager
def warehouse(settings: Settings, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Context manager: the warehouse of ``settings``, closed afterwards."""
    con = connect(
        settings.warehouse, settings=settings, read_only=read_only,
        busy_seconds=0.0 if read_only else settings.ops.warehouse_busy_seconds,
    )
    try:
        yield con
    finally:
        con.close()


def _open(path: str, read_only: bool, busy_seconds: float) -> duckdb.DuckDBPyConnection:
    """duckdb.connect, retried while another process holds the file's lock."""
    deadline = time.monotonic() + busy_seconds
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                raise
            log.info("%s is held by another process; retrying", path)
            time.sleep(0.5)


# --- One run at a time ---------------------------------------------------------------------


class RunLocked(RuntimeError):
    """Another run holds the warehouse's run lock (the message names it)."""


def lock_path(warehouse_path: Path | str) -> Path:
    """The run-lock file next to the warehouse: ``warehouse.duckdb.lock``."""
    return Path(f"{warehouse_path}.lock")


def lock_holder(warehouse_path: Path | str) -> dict | None:
    """Who holds the run lock now (pid, host, run_id, started_at, what), or None if free.

    The kernel releases an flock when its process dies, so a killed run never looks alive.
    """
    path = lock_path(warehouse_path)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


def describe_holder(holder: dict) -> str:
    """'run 2024…-ab12cd (pid 4711 on host, started 2024-03-05T02:00:01)'."""
    if not holder:
        return "another process (no details in the lock file)"
    return (f"{holder.get('what', 'run')} {holder.get('run_id') or ''} (pid {holder.get('pid')} on "
            f"{holder.get('host')}, started {holder.get('started_at')})").replace("  ", " ")


@contextmanager
def run_lock(
    warehouse_path: Path | str, *, wait_seconds: float = 0.0, run_id: str | None = None, what: str = "run"
) -> Iterator[dict]:
    """Hold the warehouse's exclusive run lock (``fcntl.flock`` on ``<warehouse>.lock``).

    Waits up to ``wait_seconds`` for a running holder, then raises :class:`RunLocked` naming it.
    The lock file records the holder (pid, host, run id, start time) for the waiting run and for
    ``skadestue status``; a crashed holder's lock is released by the kernel, so a stale file never
    blocks.
    """
    path = lock_path(warehouse_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + max(wait_seconds, 0.0)
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read_holder(path)
                if time.monotonic() >= deadline:
                    raise RunLocked(
                        f"the warehouse {warehouse_path} is in use by {describe_holder(holder)}; "
                        f"gave up after waiting {wait_seconds:g} s. Nothing was changed. Let that run "
                        "finish (see `skadestue status`), or raise ops.lock_wait_seconds in skadestue.toml; "
                        f"if pid {holder.get('pid')} is hung, stop it (kill {holder.get('pid')}) and run again."
                    ) from None
                if not announced:
                    log.warning("waiting up to %g s for %s to finish", wait_seconds, describe_holder(holder))
                    announced = True
                time.sleep(0.2)
        holder = {
            "what": what, "run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
            "started_at": dt.datetime.now().isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode("utf-8"), 0)
        try:
            yield holder
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


_MIGRATION_RE = re.compile(r"^(\d{3})_[\w-]+\.sql$")


def migrations() -> list[tuple[int, Path]]:
    """The numbered migrations in ``warehouse/migrations``, in order."""
    found = []
    for p in MIGRATIONS_DIR.glob("*.sql"):
        m = _MIGRATION_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply every migration not yet applied; returns the versions applied now."""
    con.execute("CREATE SCHEMA IF NOT EXISTS ops")
    con.execute(
        "CREATE TABLE IF NOT EXISTS ops.schema_migration("
        "version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP DEFAULT current_timestamp)"
    )
    done = {r[0] for r in con.execute("SELECT version FROM ops.schema_migration").fetchall()}
    applied = []
    for version, path in migrations():
        if version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(path.read_text(encoding="utf-8"))
            con.execute(
                "INSERT INTO ops.schema_migration(version, name) VALUES (?, ?)", [version, path.name]
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        log.info("applied migration %s", path.name)
        applied.append(version)
    return applied


def query(name: str) -> str:
    """The text of a named query in ``warehouse/queries/<name>.sql``."""
    return (QUERIES_DIR / f"{name}.sql").read_text(encoding="utf-8")
