"""DuckDB connections with the spatial extension loaded from its wheel, and migrations.

The spatial extension ships in the ``duckdb-extension-spatial`` wheel; it is loaded from
there and never downloaded (``autoinstall_known_extensions=false``), so the pipeline runs
on a machine with no internet.
"""

from __future__ import annotations

import logging
import re
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
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (or any DuckDB file) with spatial loaded and the schema current."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
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
    con = connect(settings.warehouse, settings=settings, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


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
