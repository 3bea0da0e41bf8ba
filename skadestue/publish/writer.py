"""publish_layers: marts.* -> settings.publish_dir, atomically.

Everything is built in a sibling temp dir ``.publish-<run_id>`` and checked there; only then
is the old publish dir renamed away, the new one renamed into place and the old one deleted.
A reader never sees a half-written layer, and a failure leaves yesterday's layers in place.

Layout of the publish dir::

    skadestue.duckdb            engineers' tier: the four layers + layer_info (exact counts)
    skadestue.gpkg              the same layers (+ layer_info table), EPSG:25832
    geoparquet/<layer>.parquet  the same layers as GeoParquet
    lokalraad/skadestue_lokalraad.gpkg     hotspot layers only, small ER counts suppressed
    lokalraad/geoparquet/<layer>.parquet
    manifest.json               run id, time, files, row counts
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import geopandas as gpd
import pandas as pd
import pyogrio

from skadestue.config import Settings
from skadestue.db import query
from skadestue.publish.layers import (
    DESCRIPTIONS,
    HOTSPOT_LAYERS,
    LAYER_COLUMNS,
    LAYER_COUNT_COLUMNS,
    LAYER_KEYS,
    check_columns,
)
from skadestue.publish.suppression import suppress_counts

log = logging.getLogger(__name__)

CRS = "EPSG:25832"
DUCKDB_FILE = "skadestue.duckdb"
GPKG_FILE = "skadestue.gpkg"
LOKALRAAD_DIR = "lokalraad"
LOKALRAAD_GPKG = "skadestue_lokalraad.gpkg"
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")


class PublishError(RuntimeError):
    """Publication refused; the previous publish dir is left as it was."""


@dataclass
class PublishReport:
    """What publish_layers wrote."""

    run_id: str
    publish_dir: Path
    files: list[str] = field(default_factory=list)
    layer_rows: dict[str, int] = field(default_factory=dict)
    lokalraad_rows: dict[str, int] = field(default_factory=dict)
    suppressed_rows: dict[str, int] = field(default_factory=dict)


def publish_layers(con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str) -> PublishReport:
    """Write both tiers of the published layers to ``settings.publish_dir`` atomically."""
    if not _RUN_ID_RE.match(run_id):
        raise PublishError(f"run_id {run_id!r} may only hold letters, digits and _ . : -")
    _check_marts_fresh(con)
    for layer in LAYER_COLUMNS:
        check_columns(layer, _mart_columns(con, layer))
    target = Path(settings.publish_dir)
    staging = target.parent / f".publish-{run_id}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        report = _build(con, settings, run_id, staging)
        _keep_maps(target, staging)
        _swap(staging, target, run_id)
    except Exception:
        shutil.rmtree(staging, ignore_errors=True)
        log.error("publication of run %s failed; %s left as it was", run_id, target)
        raise
    report.publish_dir = target
    log.info("published run %s to %s: %s", run_id, target, report.layer_rows)
    return report


def _build(con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str, out: Path) -> PublishReport:
    """Every file of both tiers into ``out``, checked."""
    report = PublishReport(run_id=run_id, publish_dir=out)
    published_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    frames = {layer: _layer_frame(con, layer) for layer in LAYER_COLUMNS}
    report.layer_rows = {layer: len(f) for layer, f in frames.items()}
    info = _layer_info(con, settings, frames, run_id, published_at, lokalraad=False)
    _write_duckdb(con, out / DUCKDB_FILE, info)
    _write_gpkg(out / GPKG_FILE, frames, info)
    _write_geoparquet(out / "geoparquet", frames)

    k = settings.publish.suppression_k
    lokal = {
        layer: suppress_counts(frames[layer], LAYER_COUNT_COLUMNS[layer], k) for layer in HOTSPOT_LAYERS
    }
    report.lokalraad_rows = {layer: len(f) for layer, f in lokal.items()}
    report.suppressed_rows = {layer: int(f["suppressed"].sum()) for layer, f in lokal.items()}
    lokal_info = _layer_info(con, settings, lokal, run_id, published_at, lokalraad=True)
    _write_gpkg(out / LOKALRAAD_DIR / LOKALRAAD_GPKG, lokal, lokal_info)
    _write_geoparquet(out / LOKALRAAD_DIR / "geoparquet", lokal)

    _verify_outputs(out)
    report.files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    _write_manifest(out, report, published_at)
    report.files.append("manifest.json")
    return report


def _check_marts_fresh(con: duckdb.DuckDBPyConnection) -> None:
    """Refuse to publish marts that were not rebuilt from the current core.casualty."""
    n_core, n_mart, n_missing = con.execute(query("publish_check_marts")).fetchone()
    if n_core != n_mart or n_missing:
        raise PublishError(
            f"marts.casualty_point ({n_mart} rows) does not match core.casualty ({n_core} rows, "
            f"{n_missing} missing from the mart): run build_hotspots before publish_layers."
        )


def _mart_columns(con: duckdb.DuckDBPyConnection, layer: str) -> list[str]:
    """The column names of ``marts.<layer>``."""
    rows = con.execute(
        "SELECT column_name FROM duckdb_columns() "
        "WHERE schema_name = 'marts' AND table_name = ? ORDER BY column_index",
        [layer],
    ).fetchall()
    return [r[0] for r in rows]


def _layer_frame(con: duckdb.DuckDBPyConnection, layer: str) -> gpd.GeoDataFrame:
    """``marts.<layer>`` (allow-listed columns, stable order) as a GeoDataFrame in EPSG:25832."""
    columns = [c for c in LAYER_COLUMNS[layer] if c != "geom"]
    select = ", ".join(columns)
    order = ", ".join(LAYER_KEYS[layer])
    frame = con.execute(
        f"SELECT {select}, ST_AsHEXWKB(geom) AS geom FROM marts.{layer} ORDER BY {order}"
    ).df()
    geometry = gpd.GeoSeries.from_wkb(frame["geom"], crs=CRS)
    return gpd.GeoDataFrame(frame.drop(columns="geom"), geometry=geometry.rename("geom"), crs=CRS)


def _layer_info(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    frames: dict[str, pd.DataFrame],
    run_id: str,
    published_at: dt.datetime,
    *,
    lokalraad: bool,
) -> pd.DataFrame:
    """One row per layer: what it is, its periods, the run, the CRS and the counting rule."""
    hs = settings.hotspot
    window = con.execute(
        "SELECT period_start, period_end, n_unplaced FROM marts.hotspot_period "
        "WHERE period_type = 'window'"
    ).fetchone()
    k = settings.publish.suppression_k
    rows = []
    for layer, frame in frames.items():
        description = DESCRIPTIONS[layer].format(
            rule_min=hs.rule_min_accidents, gi_band=hs.gi_distance_m, radius=hs.junction_radius_m,
            snap=hs.segment_snap_m, stretch=hs.rule_stretch_m,
        )
        if lokalraad:
            counts = (
                f"Rows that include emergency-ward-only casualties (n_er_only > 0) show no count "
                f"from 1 to {k - 1}: such counts are NULL with suppressed = true and the columns "
                "named in suppressed_columns (complementary cells, score and the observed-vs-"
                "expected values derived from them too, so they cannot be recomputed)."
            )
        else:
            counts = "Exact counts (road engineers' tier; not for wide sharing)."
        rows.append(
            {
                "layer": layer,
                "tier": "lokalraad" if lokalraad else "engineers",
                "description": description,
                "counts": counts,
                "period_start": window[0] if window else None,
                "period_end": window[1] if window else None,
                "periods": "window (the analysis window) and each calendar year in it",
                "n_rows": len(frame),
                "n_unplaced_in_window": window[2] if window else None,
                "run_id": run_id,
                "published_at": published_at.isoformat(),
                "crs": CRS,
                "source": "Kilde: politiets registreringer og skadestueregistrering",
            }
        )
    return pd.DataFrame(rows)


def _write_duckdb(con: duckdb.DuckDBPyConnection, path: Path, info: pd.DataFrame) -> None:
    """The engineers' DuckDB file: the layers (GEOMETRY in EPSG:25832) and layer_info.

    DuckDB 1.5.5 does not keep a GEOMETRY('EPSG:25832') column type in the file (it reads
    back as plain GEOMETRY), so the CRS is stated in layer_info.crs.
    """
    con.execute(f"ATTACH '{_sql_path(path)}' AS publish_out")
    try:
        for layer, columns in LAYER_COLUMNS.items():
            select = ", ".join(columns)
            order = ", ".join(LAYER_KEYS[layer])
            con.execute(
                f"CREATE TABLE publish_out.{layer} AS "
                f"SELECT {select} FROM marts.{layer} ORDER BY {order}"
            )
        con.register("publish_layer_info", info)
        con.execute("CREATE TABLE publish_out.layer_info AS SELECT * FROM publish_layer_info")
        con.unregister("publish_layer_info")
    finally:
        con.execute("DETACH publish_out")


def _write_gpkg(path: Path, frames: dict[str, gpd.GeoDataFrame], info: pd.DataFrame) -> None:
    """One GeoPackage with a layer per frame (EPSG:25832) and the layer_info table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for layer, frame in frames.items():
        pyogrio.write_dataframe(frame, path, layer=layer, driver="GPKG", promote_to_multi=None)
    pyogrio.write_dataframe(info, path, layer="layer_info", driver="GPKG")


def _write_geoparquet(directory: Path, frames: dict[str, gpd.GeoDataFrame]) -> None:
    """``<layer>.parquet`` per frame, GeoParquet with the CRS in its metadata."""
    directory.mkdir(parents=True, exist_ok=True)
    for layer, frame in frames.items():
        frame.to_parquet(directory / f"{layer}.parquet", index=False)


def _verify_outputs(out: Path) -> None:
    """Re-read the written GeoPackages: only allow-listed columns, right CRS."""
    for path, lokalraad in ((out / GPKG_FILE, False), (out / LOKALRAAD_DIR / LOKALRAAD_GPKG, True)):
        layers = {name for name, _ in pyogrio.list_layers(path)}
        expected = set(HOTSPOT_LAYERS if lokalraad else LAYER_COLUMNS) | {"layer_info"}
        if layers != expected:
            raise PublishError(f"{path.name} holds layers {sorted(layers)}, expected {sorted(expected)}")
        for layer in layers - {"layer_info"}:
            meta = pyogrio.read_info(path, layer=layer)
            check_columns(layer, [*meta["fields"], "geom"], lokalraad=lokalraad)
            if meta["crs"] != CRS:
                raise PublishError(f"{path.name}:{layer} has CRS {meta['crs']}, expected {CRS}")


def _write_manifest(out: Path, report: PublishReport, published_at: dt.datetime) -> None:
    """manifest.json: which run, when, which files, how many rows."""
    manifest = {
        "run_id": report.run_id,
        "published_at": published_at.isoformat(),
        "crs": CRS,
        "files": report.files,
        "layer_rows": report.layer_rows,
        "lokalraad_rows": report.lokalraad_rows,
        "suppressed_rows": report.suppressed_rows,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def _keep_maps(target: Path, new: Path) -> None:
    """Carry the last maps and reports (``maps/``, rendered after publication) into the new
    folder as hard links, so they stay readable until the next rendering replaces them."""
    maps = target / "maps"
    if maps.is_dir():
        shutil.copytree(maps, new / "maps", copy_function=os.link)


def _swap(new: Path, target: Path, run_id: str) -> None:
    """Put ``new`` in the place of ``target``: rename the old away, the new in, delete the old."""
    old = target.parent / f".publish-old-{run_id}"
    if old.exists():
        shutil.rmtree(old)
    had_old = target.exists()
    if had_old:
        target.rename(old)
    try:
        new.rename(target)
    except Exception:
        if had_old:
            old.rename(target)
        raise
    if had_old:
        shutil.rmtree(old, ignore_errors=True)


def _sql_path(path: Path) -> str:
    """A path quoted for a SQL string literal."""
    return str(path).replace("'", "''")
