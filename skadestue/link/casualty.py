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


def place_linked_contacts(con: duckdb.DuckDBPyConnection) -> int:
    """Give every linked ER contact that is unplaced or only uncertainly placed the police's
    coordinates (as link_casualty.sql does for the casualties it rebuilds), over all links
    (link.pair): idempotent, and it repairs contacts another stage re-geocoded since (their
    linkage input is unchanged, so an incremental night would not rebuild their casualty).
    Returns the number of contacts placed now."""
    n = con.execute("""
        UPDATE core.er_contact AS c
        SET x = p.x, y = p.y, geocode_quality = 'police', geocode_method = 'police',
            geocode_uncertainty_m = NULL
        FROM link.pair l
        JOIN link.contact lc ON lc.event_key = l.er_key
        JOIN link.police_person p ON p.police_key = l.police_key
        WHERE c.sygehus || '|' || c.kontakt_id = lc.contact_key
          AND p.geocode_quality = 'police'
          AND (c.geocode_quality IN ('none', 'C') OR c.x IS NULL)""").fetchone()[0]
    return int(n)


def count_police_placed_contacts(con: duckdb.DuckDBPyConnection) -> int:
    """ER contacts whose coordinates now come from the linked police record."""
    return int(con.execute("SELECT count(*) FROM core.er_contact WHERE geocode_quality = 'police'").fetchone()[0])
