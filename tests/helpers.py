"""Small helpers several test modules share (imported as ``from helpers import ...``)."""

from __future__ import annotations

import pandas as pd


def insert(con, table: str, rows: list[dict]) -> None:
    """Insert dict rows by column name (missing columns take their defaults / NULL)."""
    if not rows:
        return
    con.register("_rows", pd.DataFrame(rows))
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows")
    con.unregister("_rows")


def unconstrain(con, table: str) -> None:
    """Replace ``table`` by a same-typed copy without keys/NOT NULL, to plant impossible rows."""
    schema, name = table.split(".")
    con.execute(f"CREATE TABLE {schema}._free AS SELECT * FROM {table} LIMIT 0")
    con.execute(f"DROP TABLE {table}")
    con.execute(f"ALTER TABLE {schema}._free RENAME TO {name}")


def replace_er_locations(con, rows: list[tuple[str | None, str | None]]) -> None:
    """core.er_contact holds exactly one OUH contact per (location text, kommunekode hint)."""
    con.execute("DELETE FROM core.er_contact")
    insert(con, "core.er_contact", [
        {"sygehus": "OUH Odense", "kontakt_id": f"OUH-{k:04d}", "delivery_id": "er-test",
         "ankomst": pd.Timestamp("2024-03-05 14:32"), "injury_date": pd.Timestamp("2024-03-05").date(),
         "road_user": "cyclist", "counterpart": "car", "severity": "slight",
         "ulykkessted": text, "kommunekode": kom}
        for k, (text, kom) in enumerate(rows)
    ])


def load_and_geocode(con, settings, run_id: str) -> None:
    """The night's stages before linkage, without Prefect: ingest the inbox, build core, geocode."""
    from skadestue.geocode import geocode_er_contacts, geocode_police_accidents
    from skadestue.ingest import build_core, ingest_inbox

    ingest_inbox(con, settings, run_id)
    build_core(con, settings)
    geocode_police_accidents(con, settings)
    geocode_er_contacts(con, settings)
