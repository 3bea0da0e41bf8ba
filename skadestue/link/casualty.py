"""core.casualty from the folded ER events, the injured police persons and the links."""

from __future__ import annotations

import logging

import duckdb

from skadestue.db import query
from skadestue.vocab import age_band_sql

log = logging.getLogger(__name__)


def build_casualties(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rebuild core.casualty, set casualty_id on core.er_contact and core.police_person, and
    give linked, badly placed ER contacts the police's coordinates.

    Returns the number of casualties by source.
    """
    sql = (
        query("link_casualty")
        .replace("__AGE_BAND_ER__", age_band_sql("coalesce(age, p_age)"))
        .replace("__AGE_BAND_POLICE__", age_band_sql("p.age"))
    )
    con.execute(sql)
    by_source = dict(
        con.execute("SELECT source, count(*) FROM core.casualty GROUP BY source ORDER BY source").fetchall()
    )
    log.info("core.casualty: %s", by_source)
    return {k: int(v) for k, v in by_source.items()}


def count_police_placed_contacts(con: duckdb.DuckDBPyConnection) -> int:
    """ER contacts whose coordinates now come from the linked police record."""
    return int(con.execute("SELECT count(*) FROM core.er_contact WHERE geocode_quality = 'police'").fetchone()[0])
