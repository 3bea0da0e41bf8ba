"""``skadestue plan import FILE``: a municipality's traffic-safety plan into ``plan.measure``.

The file is a GeoPackage, GeoJSON or anything GDAL reads, one feature per measure with an
id, a name, a type, a status and a year (Danish or English field names, see ``FIELDS``).
Geometries are points, lines or polygons, in EPSG:25832 or any CRS the file declares
(reprojected). An import replaces the measures of the kommuner that the file covers, so each
municipality can deliver its own plan. Features that cannot be used are reported with a
reason (rows read = loaded + rejected); duplicate ids stop the import.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import geopandas as gpd
import pandas as pd
import pyogrio

log = logging.getLogger(__name__)

CRS = "EPSG:25832"
#: Accepted field names (case-insensitive), first match wins.
FIELDS: dict[str, tuple[str, ...]] = {
    "tiltag_id": ("tiltag_id", "tiltagid", "id", "tiltag_nr", "nr"),
    "navn": ("navn", "name", "tiltag", "titel", "beskrivelse"),
    "type": ("type", "tiltagstype", "kategori", "measure_type"),
    "status": ("status", "tilstand"),
    "year": ("aar", "år", "year", "udfoert_aar", "udført_år", "anlaegsaar"),
    "kommunekode": ("kommunekode", "komkode", "kommune_kode"),
}
STATUS_WORDS = {
    "udført": "udført", "udfoert": "udført", "udfort": "udført", "done": "udført", "færdig": "udført",
    "gennemført": "udført", "igang": "igang", "i gang": "igang", "under udførelse": "igang",
    "in progress": "igang", "planlagt": "planlagt", "planned": "planlagt", "forslag": "planlagt",
}


class PlanImportError(ValueError):
    """The plan file cannot be imported as it is; the message says what to fix."""


@dataclass
class PlanImportReport:
    """What ``import_plan`` did."""

    path: Path
    rows_read: int = 0
    loaded: int = 0
    rejected: list[dict] = field(default_factory=list)
    kommuner: list[str] = field(default_factory=list)
    replaced: int = 0


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[n] for n in names if n in lower), None)


def read_plan(path: Path) -> tuple[gpd.GeoDataFrame, dict[str, str | None]]:
    """The plan file as a GeoDataFrame in EPSG:25832 and the columns used for each field."""
    path = Path(path)
    if not path.exists():
        raise PlanImportError(f"{path}: no such file")
    layers = pyogrio.list_layers(path)
    if len(layers) == 0:
        raise PlanImportError(f"{path}: holds no layer")
    frame = pyogrio.read_dataframe(path, layer=layers[0][0])
    if frame.crs is None:
        bounds = frame.total_bounds
        if len(frame) and not (100_000 <= bounds[0] <= 1_000_000 and 5_000_000 <= bounds[1] <= 7_000_000):
            raise PlanImportError(
                f"{path}: the file declares no CRS and its coordinates are not EPSG:25832 metres; "
                "export it with its CRS (e.g. EPSG:25832 or EPSG:4326)."
            )
        frame = frame.set_crs(CRS)
    elif frame.crs.to_epsg() != 25832:
        frame = frame.to_crs(CRS)
    mapping = {key: _pick(list(frame.columns), names) for key, names in FIELDS.items()}
    if mapping["tiltag_id"] is None:
        raise PlanImportError(
            f"{path}: no id field (one of {', '.join(FIELDS['tiltag_id'])}); every measure needs the plan's own id."
        )
    return frame, mapping


def _normalise(frame: gpd.GeoDataFrame, mapping: dict[str, str | None], path: Path) -> tuple[pd.DataFrame, list[dict]]:
    """Measures with the standard columns, and the rejected features with reasons."""
    def col(key: str) -> pd.Series:
        name = mapping[key]
        return frame[name] if name else pd.Series(None, index=frame.index, dtype=object)

    ids = col("tiltag_id").astype("string").str.strip()
    status_raw = col("status").astype("string").str.strip().str.lower()
    status = status_raw.map(lambda s: STATUS_WORDS.get(s, s) if isinstance(s, str) else None)
    year = pd.to_numeric(col("year"), errors="coerce")
    out = pd.DataFrame({
        "tiltag_id": ids, "navn": col("navn").astype("string"), "type": col("type").astype("string"),
        "status": status, "year": year.round().astype("Int64"),
        "kommunekode": col("kommunekode").astype("string").str.strip().str.zfill(4),
        "wkb": frame.geometry.to_wkb() if len(frame) else pd.Series(dtype=object),
        "line": range(1, len(frame) + 1),
    })
    reasons = pd.Series("", index=frame.index)
    reasons[ids.isna() | (ids == "")] = "no tiltag_id"
    reasons[(reasons == "") & (frame.geometry.isna() | frame.geometry.is_empty)] = "no geometry"
    reasons[(reasons == "") & frame.geometry.notna() & ~frame.geometry.is_valid] = "invalid geometry (self-intersecting?)"
    bad_year = col("year").notna() & year.isna()
    reasons[(reasons == "") & bad_year] = "year is not a number"
    dup = ids[reasons == ""].duplicated(keep=False)
    if dup.any():
        raise PlanImportError(
            f"{path}: tiltag_id not unique: {sorted(set(ids[reasons == ''][dup]))}; give every measure its own id."
        )
    rejected = [
        {"feature": int(out.loc[i, "line"]), "tiltag_id": None if pd.isna(ids[i]) else str(ids[i]), "reason": r}
        for i, r in reasons.items() if r
    ]
    return out[reasons == ""].reset_index(drop=True), rejected


def import_plan(con: duckdb.DuckDBPyConnection, path: Path) -> PlanImportReport:
    """Load the plan file into ``plan.measure``, replacing the measures of its kommuner."""
    path = Path(path)
    frame, mapping = read_plan(path)
    measures, rejected = _normalise(frame, mapping, path)
    report = PlanImportReport(path=path, rows_read=len(frame), rejected=rejected)
    con.register("plan_frame", measures)
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE plan_new AS
            WITH g AS (
                SELECT f.* EXCLUDE (wkb, line), ST_GeomFromWKB(f.wkb) AS geom FROM plan_frame AS f
            ),
            kom AS (
                SELECT g.tiltag_id, min(m.kommunekode) AS kommunekode
                FROM g JOIN gazetteer.municipality AS m ON ST_Intersects(m.geom, ST_PointOnSurface(g.geom))
                WHERE g.kommunekode IS NULL
                GROUP BY ALL
            )
            SELECT g.* REPLACE (coalesce(g.kommunekode, k.kommunekode) AS kommunekode)
            FROM g LEFT JOIN kom AS k USING (tiltag_id)
            """
        )
        report.kommuner = [r[0] for r in con.execute(
            "SELECT DISTINCT kommunekode FROM plan_new WHERE kommunekode IS NOT NULL ORDER BY 1").fetchall()]
        report.replaced = con.execute(
            "SELECT count(*) FROM plan.measure WHERE kommunekode IN (SELECT kommunekode FROM plan_new) "
            "OR tiltag_id IN (SELECT tiltag_id FROM plan_new)"
        ).fetchone()[0]
        con.execute(
            "DELETE FROM plan.measure WHERE kommunekode IN (SELECT kommunekode FROM plan_new) "
            "OR tiltag_id IN (SELECT tiltag_id FROM plan_new)"
        )
        con.execute(
            "INSERT INTO plan.measure BY NAME SELECT *, ? AS source_file FROM plan_new",
            [path.name],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("plan_frame")
        con.execute("DROP TABLE IF EXISTS temp.plan_new")
    report.loaded = len(measures)
    assert report.loaded + len(report.rejected) == report.rows_read
    for r in rejected:
        log.warning("%s feature %s (%s) not imported: %s", path.name, r["feature"], r["tiltag_id"], r["reason"])
    log.info("plan %s: %d measures loaded for kommuner %s (%d replaced), %d rejected",
             path.name, report.loaded, report.kommuner, report.replaced, len(rejected))
    return report
