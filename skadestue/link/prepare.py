"""Linkage inputs: ER contacts folded into injury events, and injured police persons.

The working tables are TEMP tables of the warehouse connection (``link_*``); what a night
keeps for the next one is in schema ``link`` (skadestue.link.incremental).
"""

from __future__ import annotations

import logging

import duckdb
import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from skadestue.config import Settings
from skadestue.db import query

log = logging.getLogger(__name__)

#: CPR-less contacts placed at most this far apart count as the same place.
SAME_PLACE_M = 250.0
#: A later contact placed this far from its person's event is (with one more difference) a new injury.
NEW_PLACE_M = 1000.0


def fold_er_events(con: duckdb.DuckDBPyConnection, settings: Settings) -> tuple[int, int]:
    """Build ``link_contact``, ``link_contact_event`` and ``link_er_event``.

    Returns (number of ER contacts, number of injury events).
    """
    build_link_contacts(con)
    _assign_nocpr_person_keys(con, settings.link.return_visit_days)
    fold_events(con, settings)
    n_contacts = con.execute("SELECT count(*) FROM link_contact").fetchone()[0]
    n_events = con.execute("SELECT count(*) FROM link_er_event").fetchone()[0]
    log.info("folded %d ER contacts into %d injury events", n_contacts, n_events)
    return int(n_contacts), int(n_events)


def build_link_contacts(con: duckdb.DuckDBPyConnection, scope: str | None = None) -> None:
    """Build ``link_contact`` from core.er_contact: every contact, or only those whose key is
    in the table ``scope`` (column contact_key)."""
    where = "true" if scope is None else f"sygehus || '|' || kontakt_id IN (SELECT contact_key FROM {scope})"
    con.execute(query("link_contacts").replace("__SCOPE__", where))


def fold_events(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Fold the contacts of ``link_contact`` (person keys set) into ``link_contact_event`` and
    ``link_er_event``."""
    con.execute(
        query("link_er_events")
        .replace("$return_visit_days", str(int(settings.link.return_visit_days)))
        .replace("$new_place_m", repr(float(NEW_PLACE_M)))
    )


def _assign_nocpr_person_keys(con: duckdb.DuckDBPyConnection, return_visit_days: int) -> None:
    """Give CPR-less contacts a person key: connected components of "looks like the same
    person at the same place" pairs (link_nocpr_edges.sql). A component holding contacts of
    exactly one CPR person joins that person (a transfer typed without the CPR); otherwise
    the key names the component's smallest CPR-less contact key.

    Also leaves ``link_nocpr_component(contact_key, component)``: every node of the graph with
    its component's smallest contact key (what an incremental night re-opens)."""
    con.execute("CREATE OR REPLACE TEMP TABLE link_nocpr_component (contact_key VARCHAR, component VARCHAR)")
    edges = con.execute(
        query("link_nocpr_edges"),
        {"return_visit_days": int(return_visit_days), "same_place_m": SAME_PLACE_M},
    ).to_arrow_table()
    con.register("link_nocpr_edge", edges)
    try:
        nodes = con.execute(
            "SELECT contact_key, person_key FROM link_contact WHERE person_key IS NULL "
            "OR contact_key IN (SELECT key_b FROM link_nocpr_edge) ORDER BY contact_key"
        ).to_arrow_table()
    finally:
        con.unregister("link_nocpr_edge")
    if nodes.num_rows == 0:
        return
    keys = nodes.column("contact_key").to_pylist()
    index = {k: i for i, k in enumerate(keys)}
    a = np.array([index[k] for k in edges.column("key_a").to_pylist()], dtype=np.int64)
    b = np.array([index[k] for k in edges.column("key_b").to_pylist()], dtype=np.int64)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(len(keys), len(keys)))
    n_groups, labels = connected_components(graph, directed=False)
    person = pa.table({"contact_key": keys, "cpr_key": nodes.column("person_key"), "label": labels})
    con.register("link_nocpr_person", person)
    try:
        con.execute(query("link_nocpr_assign"))
        con.execute("INSERT INTO link_nocpr_component SELECT contact_key, "
                    "min(contact_key) OVER (PARTITION BY label) FROM link_nocpr_person")
    finally:
        con.unregister("link_nocpr_person")
    log.info("%d CPR-less contacts grouped into %d components (%d same-person pairs)",
             len(keys), n_groups, len(a))


def build_police_persons(con: duckdb.DuckDBPyConnection) -> int:
    """Build ``link_police_person`` (injured persons with their accident's date and place)."""
    con.execute(query("link_police_persons"))
    return int(con.execute("SELECT count(*) FROM link_police_person").fetchone()[0])


def police_orphans(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int, int, str]]:
    """Injured police persons whose accident is missing from core.police_accident."""
    return con.execute(query("link_police_orphans")).fetchall()
