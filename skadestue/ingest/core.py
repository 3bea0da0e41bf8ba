"""Build the core entities from staging: the newest delivery of each record key wins.

Core is derived, never edited by hand. A night rebuilds only the records delivered since core
was last built (issue 9), so its cost follows the night's deliveries, not the warehouse:

* The watermark is the highest ``ops.delivery.delivery_seq`` core was built from, stored in
  ``ops.stage_state`` (stage ``core``) in the same transaction as core itself, together with
  the number of staging rows at or below it and core's row counts. A killed run therefore
  never leaves a watermark without its core.
* Incremental build: the keys with a staging row above the watermark (``sygehus, kontakt_id``;
  ``uheld_id``; for police persons every accident with a new person *or* a new accident row,
  because counterpart and age depend on the accident's other persons and its date) are deleted
  from core and re-inserted from all of their staging versions, newest delivery winning - the
  same rows a full build gives them.
* Full build (no watermark, ``skadestue run --full`` / ``state.forget``, or staging/core not
  matching the stored counts): every core row deleted and rebuilt, as before.
* Later stages write into core (geocode: x/y, quality, a kommunekode taken from the point with
  ``kommunekode_geocoded``, police X/Y swapped or replaced with ``xy_flag`` and
  ``geocode_hash``; link: ``casualty_id``). Rebuilt rows start with those columns empty, as in a
  full build; rows of unchanged records keep them. Those stages tell their own work apart
  (migration 024's ``kommunekode_geocoded`` and ``geocode_hash``, the ``link.*`` row hashes), so
  a night gives the warehouse a full rebuild gives (tests/test_ingest_incremental.py).

Switch: the nightly flow calls ``build_core(con, settings)``, which follows
``INCREMENTAL_BY_DEFAULT`` (on). The later stages are idempotent on the rows core keeps: the
link stage re-applies the police's coordinates to every linked, badly placed contact each run,
and the geocode stage tells its own kommune apart (``kommunekode_geocoded``).
"""

from __future__ import annotations

import json
import logging
import re

import duckdb

from skadestue import db, state
from skadestue.config import Settings

log = logging.getLogger(__name__)

STAGE = "core"
#: Whether ``build_core`` (called without ``incremental``) updates core incrementally.
INCREMENTAL_BY_DEFAULT = True

#: Order matters: persons read core.police_accident (accident date for the CPR age).
CORE_QUERIES = (
    ("er_contact", "core_er_contact"),
    ("police_accident", "core_police_accident"),
    ("police_person", "core_police_person"),
)
#: What an incremental build rebuilds by: the record key, or the accident for persons.
REBUILD_KEYS = {
    "er_contact": ("sygehus", "kontakt_id"),
    "police_accident": ("uheld_id",),
    "police_person": ("uheld_id",),
}
_KEYS_LINE = re.compile(r"^[ \t]*__KEYS__[ \t]*$", re.MULTILINE)


def count_persons_without_accident(con: duckdb.DuckDBPyConnection) -> int:
    """Police persons whose UHELDS_ID has no accident in any delivery (kept, but reported)."""
    return int(
        con.execute(
            "SELECT count(*) FROM core.police_person p "
            "WHERE NOT EXISTS (SELECT 1 FROM core.police_accident a WHERE a.uheld_id = p.uheld_id)"
        ).fetchone()[0]
    )


def core_query(name: str, keys_table: str | None = None, key: tuple[str, ...] = ()) -> str:
    """The INSERT of a core table, for every key (full build) or only those in ``keys_table``."""
    filter_sql = f"SEMI JOIN {keys_table} USING ({', '.join(key)})" if keys_table else ""
    return _KEYS_LINE.sub(filter_sql, db.query(name))


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> int:
    return int(con.execute(sql, params or []).fetchone()[0])


def _watermark(con: duckdb.DuckDBPyConnection) -> int:
    return _one(con, "SELECT coalesce(max(delivery_seq), 0) FROM ops.delivery")


def _staged_upto(con: duckdb.DuckDBPyConnection, seq: int) -> dict[str, int]:
    return {t: _one(con, f"SELECT count(*) FROM staging.{t} WHERE delivery_seq <= ?", [seq]) for t, _ in CORE_QUERIES}


def _core_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {t: _one(con, f"SELECT count(*) FROM core.{t}") for t, _ in CORE_QUERIES}


def _previous(con: duckdb.DuckDBPyConnection) -> tuple[int | None, str]:
    """The watermark of the last build, or None and why core must be built in full."""
    raw = state.stored(con, STAGE)
    if raw is None:
        return None, "no earlier build recorded"
    try:
        prev = json.loads(raw)
        seq = int(prev["seq"])
    except (ValueError, KeyError, TypeError):
        return None, "unreadable build state"
    if _watermark(con) < seq:
        return None, "deliveries were removed since the last build"
    if _staged_upto(con, seq) != prev.get("staged"):
        return None, "staging changed below the watermark"
    if _core_counts(con) != prev.get("core"):
        return None, "core rows changed outside build_core"
    return seq, ""


def _changed_keys(con: duckdb.DuckDBPyConnection, since: int) -> dict[str, str]:
    """Temp tables of the keys to rebuild (rows delivered after ``since``)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _core_keys_er_contact AS "
        "SELECT DISTINCT sygehus, kontakt_id FROM staging.er_contact WHERE delivery_seq > ?", [since])
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _core_keys_police_accident AS "
        "SELECT DISTINCT uheld_id FROM staging.police_accident WHERE delivery_seq > ?", [since])
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _core_keys_police_person AS "
        "SELECT uheld_id FROM staging.police_person WHERE delivery_seq > ? "
        "UNION SELECT uheld_id FROM _core_keys_police_accident", [since])
    return {t: f"_core_keys_{t}" for t, _ in CORE_QUERIES}


#: The record key of each core table (unique: migration 021 dropped the indexes, build_core keeps it).
RECORD_KEYS = {
    "er_contact": ("sygehus", "kontakt_id"),
    "police_accident": ("uheld_id",),
    "police_person": ("uheld_id", "elementnr", "personnr"),
}


class CoreKeyError(RuntimeError):
    """A rebuilt core key holds more than one row (a bug: nothing was committed)."""


def _check_unique(con: duckdb.DuckDBPyConnection, table: str, keys_table: str, key: tuple[str, ...]) -> None:
    """One row per record key among the rebuilt rows (a full build is unique by its QUALIFY)."""
    record = ", ".join(RECORD_KEYS[table])
    n, distinct = con.execute(
        f"SELECT count(*), count(DISTINCT ({record})) FROM core.{table} SEMI JOIN {keys_table} USING ({', '.join(key)})"
    ).fetchone()
    if n != distinct:
        raise CoreKeyError(
            f"core.{table}: {n} rebuilt rows for {distinct} keys ({record}); nothing was committed. "
            "This is a bug in build_core: run `skadestue run --full` and report it")


def _drop_keys(con: duckdb.DuckDBPyConnection) -> None:
    for t, _ in CORE_QUERIES:
        con.execute(f"DROP TABLE IF EXISTS temp.main._core_keys_{t}")


def build_core(
    con: duckdb.DuckDBPyConnection, settings: Settings | None = None, *, run_id: str | None = None,
    full: bool = False, incremental: bool | None = None,
) -> dict[str, int]:
    """Bring core.er_contact, core.police_accident and core.police_person up to date with
    staging in one transaction: only the records delivered since the last build
    (``incremental``, default ``INCREMENTAL_BY_DEFAULT``), or all of them (not incremental,
    first build, ``full=True``, or the stored state not matching; see the module doc).

    Returns the row count of each table, ``police_person_without_accident``, ``full_build``
    (1 or 0) and ``rebuilt_<table>`` (keys rebuilt: records, or accidents for persons).
    """
    counts: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        seq = _watermark(con)
        if incremental is None:
            incremental = INCREMENTAL_BY_DEFAULT
        since, why = (None, "full build asked for") if full or not incremental else _previous(con)
        if since is None:
            for table, query in CORE_QUERIES:
                con.execute(f"DELETE FROM core.{table}")
                con.execute(core_query(query))
                counts[f"rebuilt_{table}"] = _one(con, f"SELECT count(*) FROM core.{table}")
        else:
            keys = _changed_keys(con, since)
            for table, query in CORE_QUERIES:
                key = REBUILD_KEYS[table]
                k = keys[table]
                match = " AND ".join(f"c.{c} = k.{c}" for c in key)
                con.execute(f"DELETE FROM core.{table} AS c USING {k} AS k WHERE {match}")
                con.execute(core_query(query, k, key))
                counts[f"rebuilt_{table}"] = _one(con, f"SELECT count(*) FROM {k}")
                _check_unique(con, table, k, key)
            _drop_keys(con)
        core = _core_counts(con)
        counts.update(core)
        counts["police_person_without_accident"] = count_persons_without_accident(con)
        counts["full_build"] = int(since is None)
        state.record(con, STAGE, "", json.dumps(
            {"seq": seq, "staged": _staged_upto(con, seq), "core": core}, sort_keys=True), run_id)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    if counts["police_person_without_accident"]:
        log.warning(
            "%d police persons have no accident row in any delivery (kept in core)",
            counts["police_person_without_accident"],
        )
    if since is None:
        log.info("core built in full (%s): %s", why, counts)
    else:
        log.info("core updated with the deliveries after #%d: %s", since, counts)
    return counts
