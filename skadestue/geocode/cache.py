"""The gazetteer in memory for a small night: a memory-mapped Arrow cache (issue 9).

Reading a national gazetteer (2.5 M access addresses) out of DuckDB into pandas and indexing
it costs seconds, while an ordinary night geocodes about a hundred new texts. So the nightly
stage loads the gazetteer through :func:`load_gazetteer`:

* the key is the gazetteer's fingerprint (:func:`gazetteer_fingerprint`, an order-independent
  hash aggregate in DuckDB over every gazetteer column the matcher reads, ~0.2 CPU-s per
  million addresses), so any change to ``gazetteer.*`` (``skadestue geodata import``, a manual
  edit) gives a new key and the next load rebuilds the cache;
* on a miss the gazetteer is read from DuckDB exactly as :meth:`Gazetteer.load` reads it, and
  the tables the matcher is built from are written as Arrow IPC files into
  ``<warehouse>.cache/gazetteer/<fingerprint>/`` (written to a temporary directory and renamed,
  so a killed run never leaves half a cache; older fingerprints are removed);
* on a hit the files are memory-mapped: the address arrays (numbers, coordinates, category
  codes; 2.5 M rows) are used in place without a copy, and only the street tables (~100k
  rows) become Python objects. The fast path's composite address keys are cached as well.

The answers are the same as with :meth:`Gazetteer.load` (``tests/test_geocode_cache.py``
compares the built structures and the geocoded results). An in-memory warehouse has no cache
directory: it loads the plain way.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from skadestue.geocode.match import AddressIndex, Gazetteer, read_frames, street_keys, town_keys
from skadestue.state import fingerprint

log = logging.getLogger(__name__)

#: Bump when the cached layout changes (part of the key).
CACHE_VERSION = 1

#: The gazetteer columns the matcher reads (what the fingerprint covers).
_FINGERPRINT_SQL = {
    "street": "SELECT kommunekode, vejkode, vejnavn, postnumre, x, y, length_m, "
              "ST_AsWKB(geom) AS wkb FROM gazetteer.street",
    "address": "SELECT kommunekode, vejkode, husnr_tal, husnr_bogstav, postnr, postnrnavn, "
               "supplerendebynavn, x, y FROM gazetteer.address",
    "junction": "SELECT junction_id, kommunekode, x, y, vejnavne, vejkoder FROM gazetteer.junction",
    "place": "SELECT navn, navn_norm, kommunekode, x, y FROM gazetteer.place",
    "municipality": "SELECT kommunekode, navn FROM gazetteer.municipality",
    "postcode": "SELECT postnr, navn FROM gazetteer.postcode",
}
_CAT_COLUMNS = ("husnr_bogstav", "postnr", "postnrnavn")


def gazetteer_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """One digest of every gazetteer table the matcher reads (order-independent)."""
    parts = {t: fingerprint(con, sql) for t, sql in _FINGERPRINT_SQL.items()}
    return fingerprint(con, "SELECT 1 WHERE false", {"tables": parts, "version": CACHE_VERSION})


def default_cache_dir(con: duckdb.DuckDBPyConnection) -> Path | None:
    """``<warehouse file>.cache/gazetteer`` for a file-backed warehouse, None in memory."""
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
                      ).fetchone()
    path = row[0] if row else None
    if not path or path == ":memory:":
        return None
    return Path(path).with_name(Path(path).name + ".cache") / "gazetteer"


def load_gazetteer(con: duckdb.DuckDBPyConnection, cache_dir: Path | str | None = "auto",
                   *, report: dict | None = None) -> Gazetteer:
    """The gazetteer of ``con``: from the cache when its fingerprint is there, else read from
    DuckDB and cached. ``cache_dir="auto"``: next to the warehouse file; None: no cache.
    ``report`` (optional) receives ``gazetteer_cache``: hit | miss | off."""
    report = report if report is not None else {}
    if cache_dir == "auto":
        cache_dir = default_cache_dir(con)
    if cache_dir is None:
        report["gazetteer_cache"] = "off"
        return Gazetteer.load(con)
    cache_dir = Path(cache_dir)
    fp = gazetteer_fingerprint(con)
    target = cache_dir / fp
    if (target / "complete").exists():
        try:
            gaz = read_cache(target)
            report["gazetteer_cache"] = "hit"
            return gaz
        except Exception:  # a damaged cache is rebuilt, never trusted
            log.exception("gazetteer cache %s unreadable; rebuilding it", target)
            shutil.rmtree(target, ignore_errors=True)
    report["gazetteer_cache"] = "miss"
    frames = read_frames(con)
    gaz, tables = _build(frames)
    try:
        _write_cache(cache_dir, fp, tables, gaz)
    except OSError:  # a full or read-only disk costs speed, not the run
        log.exception("could not write the gazetteer cache to %s", cache_dir)
    return gaz


def _build(frames: dict) -> tuple[Gazetteer, dict[str, pa.Table]]:
    """The Gazetteer from DuckDB's frames, and the Arrow tables that rebuild it."""
    streets = frames["streets"]
    keys = street_keys(streets["vejnavn"])
    towns = town_keys(frames["towns"])
    addresses = AddressIndex(frames.pop("addresses"), len(streets))
    gaz = Gazetteer.from_frames(streets=streets, addresses=addresses, towns=towns,
                                junctions=frames["junctions"], places=frames["places"],
                                kommune_names=frames["kommune_names"], keys=keys)
    st = streets.drop(columns=["geom", "key_b"])
    st["wkb"] = [None if g is None else shapely.to_wkb(g) for g in streets["geom"]]
    st["key_a"], st["key_b"] = keys["key_a"].to_numpy(), keys["key_b"].to_numpy()
    tables = {
        "streets": pa.Table.from_pandas(st, preserve_index=False),
        "start": pa.table({"start": np.asarray(addresses.start, dtype=np.int64)}),
        "addresses": pa.table({"tal": addresses.tal, "x": addresses.x, "y": addresses.y,
                               **{c: addresses._cats[c][0] for c in _CAT_COLUMNS}}),
        "towns": pa.Table.from_pandas(towns, preserve_index=False),
        "junctions": pa.Table.from_pandas(frames["junctions"], preserve_index=False),
        "places": pa.Table.from_pandas(frames["places"], preserve_index=False),
        "kommuner": pa.table({"kommunekode": list(frames["kommune_names"]),
                              "navn": list(frames["kommune_names"].values())}),
    }
    for c in _CAT_COLUMNS:
        tables[f"cat_{c}"] = pa.table({"value": pa.array(addresses._cats[c][1].tolist(), pa.string())})
    return gaz, tables


def _write_cache(cache_dir: Path, fp: str, tables: dict[str, pa.Table], gaz: Gazetteer) -> None:
    """Write the tables (plus the fast path's address keys) atomically; drop older caches."""
    from skadestue.geocode.fast import build_index

    fi = gaz._fast_index = build_index(gaz)
    tables = {**tables, "fast": pa.table({"akey": fi.akey, "afirst": fi.afirst}),
              "fast_usable": pa.table({"usable": [bool(fi.usable)]})}
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{fp}.", dir=cache_dir))
    try:
        for name, table in tables.items():
            with pa.OSFile(str(tmp / f"{name}.arrow"), "wb") as sink, \
                    pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
        (tmp / "complete").write_text(fp)
        os.replace(tmp, cache_dir / fp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in cache_dir.iterdir():
        if old.name != fp:
            shutil.rmtree(old, ignore_errors=True)
    log.info("gazetteer cache written: %s", cache_dir / fp)


def _read(path: Path) -> pa.Table:
    return pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()


def _np(table: pa.Table, column: str) -> np.ndarray:
    """A column as numpy, zero-copy from the memory map (read-only)."""
    return table.column(column).combine_chunks().to_numpy(zero_copy_only=False)


def read_cache(target: Path) -> Gazetteer:
    """The Gazetteer from a cache directory written by :func:`_write_cache`."""
    from skadestue.geocode.fast import build_index

    st = _read(target / "streets.arrow").to_pandas()
    keys = pd.DataFrame({"key_a": st.pop("key_a").to_numpy(dtype=object),
                         "key_b": st.pop("key_b").to_numpy(dtype=object)})
    st["geom"] = shapely.from_wkb([None if w is None else bytes(w) for w in st.pop("wkb")])
    addr = _read(target / "addresses.arrow")
    cats = {c: (_np(addr, c), np.asarray(_read(target / f"cat_{c}.arrow").column("value").to_pylist(),
                                        dtype=object)) for c in _CAT_COLUMNS}
    addresses = AddressIndex.from_arrays(_np(_read(target / "start.arrow"), "start"),
                                         _np(addr, "tal"), _np(addr, "x"), _np(addr, "y"), cats)
    kom = _read(target / "kommuner.arrow")
    gaz = Gazetteer.from_frames(
        streets=st, addresses=addresses, towns=_read(target / "towns.arrow").to_pandas(),
        junctions=_read(target / "junctions.arrow").to_pandas(),
        places=_read(target / "places.arrow").to_pandas(),
        kommune_names=dict(zip(kom.column("kommunekode").to_pylist(), kom.column("navn").to_pylist())),
        keys=keys)
    fast = _read(target / "fast.arrow")
    usable = _read(target / "fast_usable.arrow").column("usable")[0].as_py()
    gaz._fast_index = build_index(gaz, cached=(_np(fast, "akey"), _np(fast, "afirst"), usable))
    return gaz
