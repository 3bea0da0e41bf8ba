"""Rebuild the core entities from staging: the newest delivery of each record key wins.

Core is derived, never edited: every run deletes and re-inserts it, so re-running a night
gives the same core. Geocoding and linkage fill their columns afterwards.
"""

from __future__ import annotations

import logging

import duckdb

from skadestue import db
from skadestue.config import Settings

log = logging.getLogger(__name__)

#: Order matters: persons read core.police_accident (accident date for the CPR age).
CORE_QUERIES = (
    ("er_contact", "core_er_contact"),
    ("police_accident", "core_police_accident"),
    ("police_person", "core_police_person"),
)


def count_persons_without_accident(con: duckdb.DuckDBPyConnection) -> int:
    """Police persons whose UHELDS_ID has no accident in any delivery (kept, but reported)."""
    return int(
        con.execute(
            "SELECT count(*) FROM core.police_person p "
            "WHERE NOT EXISTS (SELECT 1 FROM core.police_accident a WHERE a.uheld_id = p.uheld_id)"
        ).fetchone()[0]
    )


def build_core(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, int]:
    """Rebuild core.er_contact, core.police_accident and core.police_person in one transaction.

    Returns the row count of each table, plus ``police_person_without_accident``.
    """
    counts: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for table, query in CORE_QUERIES:
            con.execute(db.query(query))
            counts[table] = int(con.execute(f"SELECT count(*) FROM core.{table}").fetchone()[0])
        counts["police_person_without_accident"] = count_persons_without_accident(con)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    if counts["police_person_without_accident"]:
        log.warning(
            "%d police persons have no accident row in any delivery (kept in core)",
            counts["police_person_without_accident"],
        )
    log.info("core rebuilt: %s", counts)
    return counts
