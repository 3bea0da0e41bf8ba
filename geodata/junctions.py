"""Derived gazetteer tables: named streets and road junctions (SQL in warehouse/queries)."""

from __future__ import annotations

import logging

import duckdb

from skadestue.db import query
from skadestue.geocode.normalise import normalise

log = logging.getLogger(__name__)


def build_streets(con: duckdb.DuckDBPyConnection) -> int:
    """Fill gazetteer.street from addresses and road segments; returns the row count.

    ``navn_norm`` is the folded name (Python, once per distinct name); streets known only
    from the road data get their postcodes from the postcode polygon under their point.
    """
    con.execute("DELETE FROM gazetteer.street")
    con.execute(query("gazetteer_streets"))
    names = con.execute("SELECT DISTINCT vejnavn FROM gazetteer.street").df()
    names["navn_norm"] = names["vejnavn"].map(normalise)
    con.register("_g_street_names", names)
    con.execute("""UPDATE gazetteer.street s SET navn_norm = n.navn_norm
                   FROM _g_street_names n WHERE s.vejnavn = n.vejnavn""")
    con.unregister("_g_street_names")
    con.execute("""
        UPDATE gazetteer.street s SET postnumre = p.postnumre
        FROM (SELECT s2.kommunekode, s2.vejkode, list(DISTINCT p.postnr ORDER BY p.postnr) AS postnumre
              FROM gazetteer.street s2
              JOIN gazetteer.postcode p ON ST_Intersects(p.geom, s2.geom)
              WHERE s2.postnumre IS NULL AND s2.geom IS NOT NULL
              GROUP BY ALL) p
        WHERE s.kommunekode = p.kommunekode AND s.vejkode = p.vejkode
    """)
    return con.execute("SELECT count(*) FROM gazetteer.street").fetchone()[0]


def build_junctions(con: duckdb.DuckDBPyConnection) -> int:
    """Fill gazetteer.junction from the road-segment end nodes; returns the row count."""
    con.execute("DELETE FROM gazetteer.junction")
    con.execute(query("gazetteer_junctions"))
    return con.execute("SELECT count(*) FROM gazetteer.junction").fetchone()[0]

