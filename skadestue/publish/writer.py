"""publish_layers: marts.* -> settings.publish_dir, atomically.

Everything is built in a sibling temp dir ``.publish-<run_id>`` and checked there; only then
is the old publish dir renamed away, the new one renamed into place and the old one deleted.
A reader never sees a half-written layer, and a failure leaves yesterday's layers in place.

Incremental nights (issue 9): every layer is fingerprinted (``skadestue.state``: its mart rows,
allow-listed columns, plus the settings that shape the files). When nothing changed since the
last publication, nothing is written: the files stay, the report says ``status='unchanged'``
and manifest.json keeps the run that wrote them. Otherwise only the changed layers are written:
a file whose layers are all unchanged is carried over from the previous publication as a hard
link (published files are never modified in place, so a link is safe), and the GeoPackages and
the DuckDB file are copied and only their changed layers replaced. ``layer_info`` and the
manifest say, per layer, which run wrote it. The fingerprints are recorded in ops.stage_state
(stage ``publish``) after the swap, so a killed run publishes again.

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
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio

from skadestue import state
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
    """What publish_layers wrote (``status='unchanged'``: nothing; the files are the last run's)."""

    run_id: str
    publish_dir: Path
    files: list[str] = field(default_factory=list)
    layer_rows: dict[str, int] = field(default_factory=dict)
    lokalraad_rows: dict[str, int] = field(default_factory=dict)
    suppressed_rows: dict[str, int] = field(default_factory=dict)
    #: published | unchanged
    status: str = "published"
    #: the run whose files are published (this run, or the last one when unchanged)
    published_run_id: str | None = None
    #: layers written by this run, and files carried over from the last publication
    layers_written: list[str] = field(default_factory=list)
    files_reused: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


#: Bump when the files' content or layout changes for the same marts (forces a full rewrite).
WRITER_VERSION = 2
STAGE = "publish"
LOKALRAAD_GEOPARQUET = f"{LOKALRAAD_DIR}/geoparquet"


def publish_layers(
    con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str, *, force: bool = False
) -> PublishReport:
    """Write both tiers of the published layers to ``settings.publish_dir`` atomically.

    Skips the writing when the marts and settings are those of the last publication (and
    ``force`` is false); rewrites only the changed layers otherwise."""
    if not _RUN_ID_RE.match(run_id):
        raise PublishError(f"run_id {run_id!r} may only hold letters, digits and _ . : -")
    t0 = time.perf_counter()
    _check_marts_fresh(con)
    for layer in LAYER_COLUMNS:
        check_columns(layer, _mart_columns(con, layer))
    target = Path(settings.publish_dir)
    fps = fingerprints(con, settings)
    previous = {} if force else _previous_publication(con, target)
    t_fp = round(time.perf_counter() - t0, 3)
    if previous.get("fingerprints") == fps:
        report = _unchanged(run_id, target, previous)
        report.seconds = {"fingerprint": t_fp, "total": round(time.perf_counter() - t0, 3)}
        log.info("run %s: marts unchanged since run %s; published layers kept", run_id, report.published_run_id)
        return report
    staging = target.parent / f".publish-{run_id}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        report = _build(con, settings, run_id, staging, fps, previous, target)
        _keep_maps(target, staging)
        _swap(staging, target, run_id)
    except Exception:
        shutil.rmtree(staging, ignore_errors=True)
        log.error("publication of run %s failed; %s left as it was", run_id, target)
        raise
    _record(con, fps, run_id)
    report.publish_dir = target
    report.seconds = {"fingerprint": t_fp, **report.seconds, "total": round(time.perf_counter() - t0, 3)}
    log.info("published run %s to %s: %s (layers written %s, files reused %s)", run_id, target,
             report.layer_rows, report.layers_written, len(report.files_reused))
    return report


def fingerprints(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, str]:
    """One fingerprint per layer (its published rows and columns), one for layer_info (the
    window, the descriptions' settings) and one for the lokalråd tier's settings; ``all``
    combines them."""
    fps: dict[str, str] = {}
    for layer, columns in LAYER_COLUMNS.items():
        select = ", ".join(c if c != "geom" else "ST_AsWKB(geom) AS geom" for c in columns)
        fps[layer] = state.fingerprint(con, f"SELECT {select} FROM marts.{layer}",
                                       {"v": WRITER_VERSION, "columns": columns, "crs": CRS})
    hs = settings.hotspot
    fps["layer_info"] = state.fingerprint(
        con, "SELECT period_start, period_end, n_unplaced FROM marts.hotspot_period WHERE period_type = 'window'",
        {"v": WRITER_VERSION, "descriptions": DESCRIPTIONS, "rule_min": hs.rule_min_accidents,
         "gi_band": hs.gi_distance_m, "radius": hs.junction_radius_m, "snap": hs.segment_snap_m,
         "stretch": hs.rule_stretch_m},
    )
    fps["lokalraad"] = hashlib.sha256(
        json.dumps({"v": WRITER_VERSION, "k": settings.publish.suppression_k}).encode()
    ).hexdigest()[:32]
    fps["all"] = hashlib.sha256(json.dumps(fps, sort_keys=True).encode()).hexdigest()[:32]
    return fps


def _previous_publication(con: duckdb.DuckDBPyConnection, target: Path) -> dict:
    """The last publication's manifest, when its files are all there and ops.stage_state
    records the same fingerprints (``skadestue run --full`` forgets them: all is rewritten)."""
    path = target / "manifest.json"
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}
    fps = manifest.get("fingerprints") or {}
    if not fps or state.stored(con, STAGE, "all") != fps.get("all"):
        return {}
    if not all((target / f).is_file() for f in manifest.get("files", [])):
        return {}
    return manifest


def _unchanged(run_id: str, target: Path, previous: dict) -> PublishReport:
    files = [*previous.get("files", []), "manifest.json"]
    return PublishReport(
        run_id=run_id, publish_dir=target, files=files,
        layer_rows=previous.get("layer_rows", {}), lokalraad_rows=previous.get("lokalraad_rows", {}),
        suppressed_rows=previous.get("suppressed_rows", {}), status="unchanged",
        published_run_id=previous.get("run_id"), files_reused=files,
    )


def _record(con: duckdb.DuckDBPyConnection, fps: dict[str, str], run_id: str) -> None:
    """Store the fingerprints of what is now published (after the swap: a run killed before
    this point publishes again)."""
    con.execute("BEGIN TRANSACTION")
    try:
        state.forget(con, STAGE)
        for part, fp in fps.items():
            state.record(con, STAGE, part, fp, run_id)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def _build(
    con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str, out: Path,
    fps: dict[str, str], previous: dict, prev_dir: Path,
) -> PublishReport:
    """Every file of both tiers into ``out`` (changed layers written, the rest carried over), checked."""
    report = PublishReport(run_id=run_id, publish_dir=out, published_run_id=run_id)
    published_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    old_fps = previous.get("fingerprints") or {}
    old_layers = previous.get("layers") or {}
    same_info = old_fps.get("layer_info") == fps["layer_info"]
    same_lokal = same_info and old_fps.get("lokalraad") == fps["lokalraad"]
    changed = [layer for layer in LAYER_COLUMNS if old_fps.get(layer) != fps[layer] or layer not in old_layers]
    lokal_changed = [layer for layer in HOTSPOT_LAYERS if layer in changed or not same_lokal]
    report.layers_written = changed
    layers = {  # which run wrote each layer, when
        layer: ({"run_id": run_id, "published_at": published_at.isoformat()} if layer in changed
                else old_layers[layer])
        for layer in LAYER_COLUMNS
    }
    report.layer_rows = {
        layer: (con.execute(f"SELECT count(*) FROM marts.{layer}").fetchone()[0] if layer in changed
                else previous["layer_rows"][layer])
        for layer in LAYER_COLUMNS
    }
    timer = _Timer(report)
    with timer("frames"):
        frames = {layer: _layer_arrow(con, layer) for layer in changed}
    with timer("lokalraad_suppress"):
        k = settings.publish.suppression_k
        lokal = {
            layer: suppress_counts(_layer_frame(con, layer), LAYER_COUNT_COLUMNS[layer], k)
            for layer in lokal_changed
        }
    report.lokalraad_rows = {
        layer: (len(lokal[layer]) if layer in lokal else previous["lokalraad_rows"][layer]) for layer in HOTSPOT_LAYERS
    }
    report.suppressed_rows = {
        layer: (int(lokal[layer]["suppressed"].sum()) if layer in lokal else previous["suppressed_rows"][layer])
        for layer in HOTSPOT_LAYERS
    }
    info = _layer_info(con, settings, report.layer_rows, layers, lokalraad=False)
    lokal_info = _layer_info(con, settings, report.lokalraad_rows, layers, lokalraad=True)

    def carry(rel: str) -> bool:
        """Hard-link ``rel`` from the previous publication; False when there is none."""
        src = prev_dir / rel
        if not previous or not src.is_file():
            return False
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        os.link(src, out / rel)
        report.files_reused.append(rel)
        return True

    def engineers_gpkg() -> None:  # in a thread: copying and GDAL writing release the GIL
        with timer("gpkg"):
            _write_gpkg(out / GPKG_FILE, {layer: frames[layer] for layer in changed}, info,
                        base=prev_dir / GPKG_FILE if previous else None)

    def rest() -> None:  # the DuckDB file, the engineers' GeoParquet and the lokalråd tier
        with timer("duckdb"):
            _write_duckdb(con, out / DUCKDB_FILE, info, changed, prev_dir / DUCKDB_FILE if previous else None)
        with timer("geoparquet"):
            for layer in LAYER_COLUMNS:
                if layer in changed or not carry(f"geoparquet/{layer}.parquet"):
                    _write_geoparquet(out / "geoparquet", {layer: frames[layer] if layer in frames
                                                           else _layer_arrow(con, layer)})
        with timer("lokalraad"):
            rel_gpkg = f"{LOKALRAAD_DIR}/{LOKALRAAD_GPKG}"
            if lokal_changed or not carry(rel_gpkg):
                _write_gpkg(out / rel_gpkg, lokal, lokal_info, base=prev_dir / rel_gpkg if previous else None)
            for layer in HOTSPOT_LAYERS:
                if layer in lokal or not carry(f"{LOKALRAAD_GEOPARQUET}/{layer}.parquet"):
                    frame = lokal[layer] if layer in lokal else suppress_counts(
                        _layer_frame(con, layer), LAYER_COUNT_COLUMNS[layer], settings.publish.suppression_k)
                    _write_geoparquet(out / LOKALRAAD_GEOPARQUET, {layer: frame})

    with ThreadPoolExecutor(max_workers=1) as pool:
        gpkg_job = pool.submit(engineers_gpkg)
        rest()
        gpkg_job.result()
    with timer("verify"):
        _verify_outputs(out, report.layer_rows, report.lokalraad_rows)
    report.files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    report.files_reused = sorted(report.files_reused)
    _write_manifest(out, report, published_at, fps, layers)
    report.files.append("manifest.json")
    return report


class _Timer:
    """Wall seconds per step into ``report.seconds``."""

    def __init__(self, report: PublishReport):
        self.report = report

    @contextmanager
    def __call__(self, name: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.report.seconds[name] = round(time.perf_counter() - t, 3)


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


def _layer_arrow(con: duckdb.DuckDBPyConnection, layer: str) -> pa.Table:
    """``marts.<layer>`` (allow-listed columns, stable order) as an Arrow table, geometry as WKB
    (written to GeoPackage and GeoParquet without a pandas/shapely round trip)."""
    columns = [c for c in LAYER_COLUMNS[layer] if c != "geom"]
    order = ", ".join(LAYER_KEYS[layer])
    table = con.execute(
        f"SELECT {', '.join(columns)}, ST_AsWKB(geom) AS geom FROM marts.{layer} ORDER BY {order}"
    ).arrow().read_all()
    types = [r[0] for r in con.execute(
        f"SELECT DISTINCT ST_GeometryType(geom)::VARCHAR FROM marts.{layer} WHERE geom IS NOT NULL"
    ).fetchall()]
    kind = _OGR_TYPES.get(types[0].upper(), "Unknown") if len(types) == 1 else "Unknown"
    return table.replace_schema_metadata({b"skadestue_geometry_type": kind.encode()})


_OGR_TYPES = {
    "POINT": "Point", "LINESTRING": "LineString", "POLYGON": "Polygon", "MULTIPOINT": "MultiPoint",
    "MULTILINESTRING": "MultiLineString", "MULTIPOLYGON": "MultiPolygon",
}


def _geo_metadata(table: pa.Table) -> bytes:
    """GeoParquet 1.0 metadata of a WKB ``geom`` column in EPSG:25832."""
    kind = (table.schema.metadata or {}).get(b"skadestue_geometry_type", b"Unknown").decode()
    return json.dumps({
        "version": "1.0.0", "primary_column": "geom",
        "columns": {"geom": {"encoding": "WKB", "geometry_types": [] if kind == "Unknown" else [kind],
                             "crs": _projjson()}},
    }).encode()


@functools.lru_cache(maxsize=1)
def _projjson() -> dict:
    import pyproj

    return pyproj.CRS.from_user_input(CRS).to_json_dict()


def _layer_info(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    n_rows: dict[str, int],
    layers: dict[str, dict],
    *,
    lokalraad: bool,
) -> pd.DataFrame:
    """One row per layer: what it is, its periods, the run that wrote it, the CRS and the counting rule."""
    hs = settings.hotspot
    window = con.execute(
        "SELECT period_start, period_end, n_unplaced FROM marts.hotspot_period "
        "WHERE period_type = 'window'"
    ).fetchone()
    k = settings.publish.suppression_k
    rows = []
    for layer, n in n_rows.items():
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
                "n_rows": n,
                "n_unplaced_in_window": window[2] if window else None,
                "run_id": layers[layer]["run_id"],
                "published_at": layers[layer]["published_at"],
                "crs": CRS,
                "source": "Kilde: politiets registreringer og skadestueregistrering",
            }
        )
    return pd.DataFrame(rows)


def _write_duckdb(
    con: duckdb.DuckDBPyConnection, path: Path, info: pd.DataFrame, changed: list[str], base: Path | None
) -> None:
    """The engineers' DuckDB file: the layers (GEOMETRY in EPSG:25832) and layer_info.

    With ``base`` (the last publication's file) the file is a copy of it with the ``changed``
    layers and layer_info replaced; without, every layer is written.

    DuckDB 1.5.5 does not keep a GEOMETRY('EPSG:25832') column type in the file (it reads
    back as plain GEOMETRY), so the CRS is stated in layer_info.crs.
    """
    write = list(LAYER_COLUMNS)
    if base is not None and base.is_file():
        shutil.copyfile(base, path)
        write = changed
    con.execute(f"ATTACH '{_sql_path(path)}' AS publish_out")
    try:
        for layer in write:
            columns = LAYER_COLUMNS[layer]
            select = ", ".join(columns)
            order = ", ".join(LAYER_KEYS[layer])
            con.execute(
                f"CREATE OR REPLACE TABLE publish_out.{layer} AS "
                f"SELECT {select} FROM marts.{layer} ORDER BY {order}"
            )
        con.register("publish_layer_info", info)
        con.execute("CREATE OR REPLACE TABLE publish_out.layer_info AS SELECT * FROM publish_layer_info")
        con.unregister("publish_layer_info")
    finally:
        con.execute("DETACH publish_out")


def _write_gpkg(path: Path, frames: dict[str, gpd.GeoDataFrame], info: pd.DataFrame,
                base: Path | None = None) -> None:
    """One GeoPackage with a layer per frame (EPSG:25832) and the layer_info table.

    With ``base`` (the last publication's GeoPackage) the file starts as a copy of it and only
    the layers in ``frames`` and layer_info are replaced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if base is not None and base.is_file():
        shutil.copyfile(base, path)
    for layer, frame in frames.items():
        if isinstance(frame, pa.Table):
            kind = (frame.schema.metadata or {}).get(b"skadestue_geometry_type", b"Unknown").decode()
            pyogrio.write_arrow(frame.replace_schema_metadata(None), path, layer=layer, driver="GPKG",
                                geometry_name="geom", geometry_type=kind, crs=CRS,
                                layer_options={"OVERWRITE": "YES"})
        else:
            pyogrio.write_dataframe(frame, path, layer=layer, driver="GPKG", promote_to_multi=None,
                                    layer_options={"OVERWRITE": "YES"})
    pyogrio.write_dataframe(info, path, layer="layer_info", driver="GPKG", layer_options={"OVERWRITE": "YES"})


def _write_geoparquet(directory: Path, frames: dict[str, gpd.GeoDataFrame]) -> None:
    """``<layer>.parquet`` per frame, GeoParquet with the CRS in its metadata."""
    directory.mkdir(parents=True, exist_ok=True)
    for layer, frame in frames.items():
        if isinstance(frame, pa.Table):
            pq.write_table(frame.replace_schema_metadata({b"geo": _geo_metadata(frame)}),
                           directory / f"{layer}.parquet")
        else:
            frame.to_parquet(directory / f"{layer}.parquet", index=False)


def _verify_outputs(out: Path, layer_rows: dict[str, int] | None = None,
                    lokalraad_rows: dict[str, int] | None = None) -> None:
    """Re-read the written GeoPackages: only allow-listed columns, right CRS, right row counts."""
    for path, lokalraad in ((out / GPKG_FILE, False), (out / LOKALRAAD_DIR / LOKALRAAD_GPKG, True)):
        layers = {name for name, _ in pyogrio.list_layers(path)}
        expected = set(HOTSPOT_LAYERS if lokalraad else LAYER_COLUMNS) | {"layer_info"}
        if layers != expected:
            raise PublishError(f"{path.name} holds layers {sorted(layers)}, expected {sorted(expected)}")
        rows = lokalraad_rows if lokalraad else layer_rows
        for layer in layers - {"layer_info"}:
            meta = pyogrio.read_info(path, layer=layer)
            check_columns(layer, [*meta["fields"], "geom"], lokalraad=lokalraad)
            if meta["crs"] != CRS:
                raise PublishError(f"{path.name}:{layer} has CRS {meta['crs']}, expected {CRS}")
            if rows is not None and meta["features"] != rows[layer]:
                raise PublishError(f"{path.name}:{layer} holds {meta['features']} rows, expected {rows[layer]}")


def _write_manifest(out: Path, report: PublishReport, published_at: dt.datetime,
                    fps: dict[str, str], layers: dict[str, dict]) -> None:
    """manifest.json: which run, when, which files, how many rows, which run wrote each layer,
    and the fingerprints the next run compares against."""
    manifest = {
        "run_id": report.run_id,
        "published_at": published_at.isoformat(),
        "crs": CRS,
        "files": report.files,
        "layer_rows": report.layer_rows,
        "lokalraad_rows": report.lokalraad_rows,
        "suppressed_rows": report.suppressed_rows,
        "layers": layers,
        "layers_written": report.layers_written,
        "files_reused": report.files_reused,
        "fingerprints": fps,
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
