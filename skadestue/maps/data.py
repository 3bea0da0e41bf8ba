"""What the maps and reports read: the lokalråd tier of the published layers and the gazetteer.

Hotspot counts come only from ``publish/lokalraad/geoparquet`` (small emergency-ward counts
already suppressed). The casualty statistics of the reports are aggregated from the
published ``casualty_point`` layer and suppressed here with the same rule and the same k
(``skadestue.maps.suppress``) before anything is drawn or written. The municipal boundary and
the road network come from the warehouse's gazetteer (offline reference data, no people).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb
import geopandas as gpd
import pandas as pd
import shapely

from skadestue.config import Settings

log = logging.getLogger(__name__)

CRS = "EPSG:25832"
SOURCE_LINE = "Kilde: politiets registreringer og skadestueregistrering"


class MapDataError(RuntimeError):
    """The published layers or the gazetteer lack what a map or report needs."""


@dataclass(frozen=True)
class Period:
    """A published hotspot period (the analysis window or one calendar year)."""

    start: dt.date
    end: dt.date
    type: str  # window | year

    @property
    def label(self) -> str:
        """'2020–2024' or '2024'."""
        return str(self.start.year) if self.start.year == self.end.year else f"{self.start.year}–{self.end.year}"

    @property
    def slug(self) -> str:
        return self.label.replace("–", "-")


def lokalraad_dir(publish_dir: Path) -> Path:
    return Path(publish_dir) / "lokalraad" / "geoparquet"


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise MapDataError(
            f"{what} is missing: {path} does not exist. Run `skadestue run` (or `skadestue demo`) so "
            "the layers are published, or point --publish at the folder that holds them."
        )
    return path


def published_periods(publish_dir: Path) -> list[Period]:
    """The periods of the lokalråd junction layer, newest first (windows before years)."""
    path = _require(lokalraad_dir(publish_dir) / "hotspot_junction.parquet", "The lokalråd junction layer")
    frame = pd.read_parquet(path, columns=["period_start", "period_end", "period_type"]).drop_duplicates()
    periods = [
        Period(pd.Timestamp(r.period_start).date(), pd.Timestamp(r.period_end).date(), r.period_type)
        for r in frame.itertuples()
    ]
    return sorted(periods, key=lambda p: (p.end, p.type == "window", p.start), reverse=True)


def resolve_period(publish_dir: Path, period: str | None) -> Period:
    """``'2020-2024'``, ``'2024'`` or None (the newest analysis window) -> a published Period."""
    periods = published_periods(publish_dir)
    if not periods:
        raise MapDataError("The published layers hold no period: did the last run find any casualties?")
    if period is None:
        windows = [p for p in periods if p.type == "window"]
        return (windows or periods)[0]
    m = re.fullmatch(r"\s*(\d{4})\s*(?:[-–]\s*(\d{4}))?\s*", period)
    if not m:
        raise MapDataError(f"--period {period!r}: write a year (2024) or a span of years (2020-2024).")
    first, last = int(m.group(1)), int(m.group(2) or m.group(1))
    for p in periods:
        if p.start.year == first and p.end.year == last:
            return p
    have = ", ".join(sorted({p.slug for p in periods}))
    raise MapDataError(f"--period {period}: not among the published periods ({have}). Pick one of those.")


def _read_layer(path: Path, kommunekode: str | None, period: Period | None) -> gpd.GeoDataFrame:
    filters = []
    if kommunekode is not None:
        filters.append(("kommunekode", "=", kommunekode))
    if period is not None:
        filters.append(("period_start", "=", pd.Timestamp(period.start)))
        filters.append(("period_end", "=", pd.Timestamp(period.end)))
    frame = gpd.read_parquet(path, filters=filters or None)
    if frame.crs is None:
        frame = frame.set_crs(CRS)
    return frame


def junctions(publish_dir: Path, kommunekode: str | None, period: Period | None) -> gpd.GeoDataFrame:
    """Lokalråd junction rows of the kommune and period, ordered by rank."""
    path = _require(lokalraad_dir(publish_dir) / "hotspot_junction.parquet", "The lokalråd junction layer")
    frame = _read_layer(path, kommunekode, period)
    return frame.sort_values(["kommunekode", "rank_in_kommune", "junction_id"]).reset_index(drop=True)


def grid(publish_dir: Path, kommunekode: str, period: Period, cell_size_m: int) -> gpd.GeoDataFrame:
    """Lokalråd grid cells of one size, kommune and period."""
    path = _require(lokalraad_dir(publish_dir) / "hotspot_grid.parquet", "The lokalråd grid layer")
    frame = _read_layer(path, kommunekode, period)
    return frame[frame["cell_size_m"] == cell_size_m].sort_values("rank_in_kommune").reset_index(drop=True)


def casualty_points(publish_dir: Path) -> Path:
    """Path of the published casualty layer (aggregated and suppressed before use)."""
    return _require(Path(publish_dir) / "geoparquet" / "casualty_point.parquet", "The published casualty layer")


def manifest(publish_dir: Path) -> dict:
    path = Path(publish_dir) / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def find_chromium() -> str | None:
    """A headless-capable Chromium/Chrome on this machine (SKADESTUE_CHROMIUM overrides)."""
    override = os.environ.get("SKADESTUE_CHROMIUM")
    if override:
        return override if Path(override).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def parse_half(half: str) -> tuple[dt.date, dt.date, str]:
    """'2024H2' -> (2024-07-01, 2024-12-31, '2. halvår 2024')."""
    m = re.fullmatch(r"\s*(\d{4})\s*[Hh]\s*([12])\s*", half)
    if not m:
        raise ValueError(f"--half {half!r}: write the year and the half, e.g. 2024H2 (July-December) or 2025H1.")
    year, h = int(m.group(1)), int(m.group(2))
    start = dt.date(year, 1 if h == 1 else 7, 1)
    end = dt.date(year, 6, 30) if h == 1 else dt.date(year, 12, 31)
    return start, end, f"{h}. halvår {year}"


# --- Gazetteer (warehouse) ---------------------------------------------------------------------


@contextmanager
def open_warehouse(settings: Settings, con: duckdb.DuckDBPyConnection | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """``con`` if given, else the warehouse opened read-only (closed afterwards)."""
    if con is not None:
        yield con
        return
    from skadestue import db

    if not Path(settings.warehouse).exists():
        raise MapDataError(
            f"The warehouse {settings.warehouse} does not exist: the maps draw the boundary and roads "
            "from its gazetteer. Pass --warehouse, or import the geodata first (`skadestue geodata import`)."
        )
    try:
        c = db.connect(settings.warehouse, settings=settings, read_only=True)
    except duckdb.IOException as exc:
        raise MapDataError(
            f"Cannot open {settings.warehouse} read-only ({exc}). A nightly run may be writing to it: "
            "try again when it has finished."
        ) from exc
    try:
        yield c
    finally:
        c.close()


@dataclass
class Background:
    """The offline background of one kommune: its boundary and its road network."""

    kommunekode: str
    navn: str
    boundary: shapely.Geometry
    roads: gpd.GeoDataFrame  # vejklasse, major (bool), geometry


#: GeoDanmark road classes drawn as main roads.
MAJOR_ROAD_CLASSES = ("Trafikvej-Gennemfart", "Trafikvej-Fordeling", "Motorvej", "Motortrafikvej")


def background(con: duckdb.DuckDBPyConnection, kommunekode: str, settings: Settings | None = None) -> Background:
    """Boundary and roads of ``kommunekode`` from the gazetteer."""
    row = con.execute(
        "SELECT navn, ST_AsWKB(geom) FROM gazetteer.municipality WHERE kommunekode = ?", [kommunekode]
    ).fetchone()
    if row is None or row[1] is None:
        raise MapDataError(
            f"Kommune {kommunekode} is not in the gazetteer's boundaries: import the DAGI kommuner "
            "with `skadestue geodata import --municipalities ...`."
        )
    navn = row[0] or (settings.kommuner.get(kommunekode) if settings else None) or kommunekode
    boundary = shapely.from_wkb(bytes(row[1]))
    roads = con.execute(
        "SELECT coalesce(vejklasse, '') AS vejklasse, ST_AsWKB(geom) AS wkb FROM gazetteer.road_segment "
        "WHERE kommunekode = ? AND geom IS NOT NULL",
        [kommunekode],
    ).df()
    geoms = shapely.from_wkb([bytes(b) for b in roads["wkb"]]) if len(roads) else []
    frame = gpd.GeoDataFrame(
        {"vejklasse": roads["vejklasse"], "major": roads["vejklasse"].isin(MAJOR_ROAD_CLASSES)},
        geometry=gpd.GeoSeries(geoms, crs=CRS),
        crs=CRS,
    )
    return Background(kommunekode=kommunekode, navn=navn, boundary=boundary, roads=frame)


def plan_coverage(publish_dir: Path, con: duckdb.DuckDBPyConnection | None) -> pd.DataFrame | None:
    """Hotspot rows of plan_coverage (nearest measure, gap flag), or None when there is no plan.

    Read from the published layers when they carry it, else from the warehouse's marts. Only
    the plan columns are used; counts always come from the lokalråd layers.
    """
    cols = ["row_type", "layer", "junction_id", "kommunekode", "period_start", "period_end",
            "tiltag_id", "tiltag_navn", "tiltag_type", "tiltag_status", "tiltag_year", "distance_m", "gap"]
    for path in (lokalraad_dir(publish_dir) / "plan_coverage.parquet",
                 Path(publish_dir) / "geoparquet" / "plan_coverage.parquet"):
        if path.exists():
            frame = pd.read_parquet(path)
            return _plan_rows(frame, cols)
    if con is None:
        return None
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'marts' AND table_name = 'plan_coverage'"
    ).fetchone()[0]
    if not exists:
        return None
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'marts' AND table_name = 'plan_coverage'"
    ).fetchall()}
    if not set(cols) <= have:
        log.warning("marts.plan_coverage lacks %s: plan gaps left out of the maps", sorted(set(cols) - have))
        return None
    frame = con.execute(f"SELECT {', '.join(cols)} FROM marts.plan_coverage").df()
    return _plan_rows(frame, cols)


def _plan_rows(frame: pd.DataFrame, cols: list[str]) -> pd.DataFrame | None:
    if not set(cols) <= set(frame.columns):
        return None
    frame = frame[cols]
    frame = frame[(frame["row_type"] == "hotspot") & (frame["layer"] == "hotspot_junction")]
    if frame.empty:
        return None
    frame = frame.assign(
        period_start=pd.to_datetime(frame["period_start"]).dt.date,
        period_end=pd.to_datetime(frame["period_end"]).dt.date,
    )
    return frame.reset_index(drop=True)


def plan_for(plan: pd.DataFrame | None, kommunekode: str, period: Period) -> pd.DataFrame | None:
    """Plan rows of one kommune and period keyed by junction_id (None when no plan)."""
    if plan is None:
        return None
    mine = plan[(plan["kommunekode"] == kommunekode) & (plan["period_start"] == period.start)
                & (plan["period_end"] == period.end)]
    return mine.drop_duplicates("junction_id").set_index("junction_id") if not mine.empty else None
