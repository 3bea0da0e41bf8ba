"""Maps and reports per kommune, for all kommuner, and for the nightly flow (``render_latest``).

Everything here reads the published layers (``settings.publish_dir``) and the gazetteer of the
warehouse (``settings.warehouse``, read-only, or a connection the caller already holds). Work
for several kommuner is spread over ``workers`` processes (spawned, so no DuckDB connection or
thread is inherited); the gazetteer is read once in the calling process and handed to them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import duckdb

from skadestue import state
from skadestue.config import Settings
from skadestue.maps import data
from skadestue.maps.data import Background, MapDataError, Period

log = logging.getLogger(__name__)

MAPS_DIR = "maps"


def map_stem(kommunekode: str, period: Period) -> str:
    return f"kort_{kommunekode}_{period.slug}"


def report_stem(kommunekode: str, year: int) -> str:
    return f"trafikanalyse_{kommunekode}_{year}"


def kredsraad_stem(half: str) -> str:
    return f"kredsraad_{half.upper().replace(' ', '')}"


@dataclass
class KommuneJob:
    """One kommune's outputs; plain data, so it can go to a worker process."""

    kommunekode: str
    background: Background
    publish_dir: Path
    out_dir: Path
    k: int
    buffer_m: float
    map_period: Period | None = None  # draw the maps of this period
    report_year: int | None = None  # write the annual report of this year
    report_period: Period | None = None  # its top places
    plan: object | None = None  # all plan rows (DataFrame) or None
    plan_loaded: bool = False
    run_id: str | None = None
    pdf: bool = True


@dataclass
class RenderResult:
    files: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _render_job(job: KommuneJob) -> list[Path]:
    """Maps (PNG, PDF, HTML) and/or the annual report of one kommune."""
    from skadestue.maps.interactive import render_html
    from skadestue.maps.report import ReportInputs, downscale_png, render_annual
    from skadestue.maps.static import MapLayers, render_static
    from skadestue.maps.stats import CasualtyStats

    written: list[Path] = []
    bg = job.background
    map_pngs: dict[Period, Path] = {}

    def draw(period: Period) -> Path:
        jn = data.junctions(job.publish_dir, job.kommunekode, period)
        layers = MapLayers(job.kommunekode, bg.navn, period, bg, jn, job.k)
        stem = job.out_dir / map_stem(job.kommunekode, period)
        files = render_static(layers, stem.with_suffix(".png"), stem.with_suffix(".pdf") if job.pdf else None)
        cells = data.grid(job.publish_dir, job.kommunekode, period, 100)
        html = render_html(bg=bg, period=period, title=layers.title, junctions=jn, cells=cells,
                           plan=data.plan_for(job.plan, job.kommunekode, period), buffer_m=job.buffer_m,
                           k=job.k, out=stem.with_suffix(".html"))
        written.extend([*files, html.path])
        map_pngs[period] = files[0]
        return files[0]

    if job.map_period is not None:
        draw(job.map_period)
    if job.report_year is not None:
        period = job.report_period
        png = map_pngs.get(period) or draw(period)
        stats = CasualtyStats(data.casualty_points(job.publish_dir), job.k)
        try:
            inputs = ReportInputs(
                kommunekode=job.kommunekode, navn=bg.navn, year=job.report_year, top_period=period,
                junctions=data.junctions(job.publish_dir, job.kommunekode, period),
                plan=data.plan_for(job.plan, job.kommunekode, period), plan_loaded=job.plan is not None,
                buffer_m=job.buffer_m, map_png=downscale_png(png), run_id=job.run_id, k=job.k,
            )
            written.extend(render_annual(stats, inputs, job.out_dir / f"{report_stem(job.kommunekode, job.report_year)}.html",
                                         pdf=job.pdf))
        finally:
            stats.close()
    return written


def report_period_for(publish_dir: Path, year: int) -> Period:
    """The period of a report's top places: the analysis window ending in ``year``, else one
    containing it, else the calendar year, else the newest window."""
    periods = data.published_periods(publish_dir)
    for test in (lambda p: p.type == "window" and p.end.year == year,
                 lambda p: p.type == "window" and p.start.year <= year <= p.end.year,
                 lambda p: p.type == "year" and p.start.year == year,
                 lambda p: p.type == "window"):
        match = [p for p in periods if test(p)]
        if match:
            return match[0]
    raise MapDataError(f"no published period to rank places for {year}")


def default_year(publish_dir: Path) -> int:
    """The last full year of the newest analysis window."""
    return data.resolve_period(publish_dir, None).end.year


def _check_kommune(settings: Settings, kommunekode: str) -> str:
    code = kommunekode.strip().zfill(4)
    if code not in settings.kommuner:
        have = ", ".join(f"{c} {n}" for c, n in settings.kommuner.items())
        raise MapDataError(f"--kommune {kommunekode}: not one of the district's kommuner ({have}).")
    return code


def render(
    settings: Settings,
    out_dir: Path,
    *,
    kommuner: list[str] | None = None,
    period: str | None = None,
    maps: bool = True,
    year: int | None = None,
    reports: bool = False,
    half: str | None = None,
    pdf: bool = True,
    workers: int | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> RenderResult:
    """Maps and/or annual reports of ``kommuner`` (all when None), and the kredsråd status for
    ``half`` when given. Returns the files written."""
    import time

    publish_dir = Path(settings.publish_dir)
    codes = [_check_kommune(settings, c) for c in (kommuner or list(settings.kommuner))]
    map_period = data.resolve_period(publish_dir, period) if maps else None
    report_year = (year or default_year(publish_dir)) if reports else None
    report_period = report_period_for(publish_dir, report_year) if reports else None
    if reports and year is not None and year > report_period.end.year:
        raise MapDataError(f"--year {year}: the published layers end in {report_period.end.year}.")
    t0 = time.perf_counter()
    with data.open_warehouse(settings, con) as c:
        backgrounds = {code: data.background(c, code, settings) for code in codes}
        plan = data.plan_coverage(publish_dir, c)
    run_id = data.manifest(publish_dir).get("run_id")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [
        KommuneJob(kommunekode=code, background=backgrounds[code], publish_dir=publish_dir, out_dir=out_dir,
                   k=settings.publish.suppression_k, buffer_m=settings.publish.plan_buffer_m,
                   map_period=map_period, report_year=report_year, report_period=report_period, plan=plan,
                   run_id=run_id, pdf=pdf)
        for code in codes
    ]
    result = RenderResult()
    result.seconds["gazetteer"] = round(time.perf_counter() - t0, 2)
    n_workers = max(1, min(workers or settings.duckdb_threads or 1, len(jobs)))
    t1 = time.perf_counter()
    if n_workers == 1:
        for job in jobs:
            result.files.extend(_render_job(job))
    else:
        with ProcessPoolExecutor(max_workers=n_workers, mp_context=get_context("spawn")) as pool:
            for files in pool.map(_render_job, jobs):
                result.files.extend(files)
    result.seconds["kommuner"] = round(time.perf_counter() - t1, 2)
    if half is not None:
        t2 = time.perf_counter()
        result.files.extend(render_kredsraad_status(settings, half, out_dir, pdf=pdf))
        result.seconds["kredsraad"] = round(time.perf_counter() - t2, 2)
    return result


def render_kredsraad_status(settings: Settings, half: str, out_dir: Path, *, pdf: bool = True) -> list[Path]:
    """The kredsråd's one-page half-year status into ``out_dir``."""
    from skadestue.maps.report import parse_half, render_kredsraad
    from skadestue.maps.stats import CasualtyStats

    publish_dir = Path(settings.publish_dir)
    start, end, _ = parse_half(half)
    top_period = report_period_for(publish_dir, end.year)
    jn = data.junctions(publish_dir, None, top_period)
    stats = CasualtyStats(data.casualty_points(publish_dir), settings.publish.suppression_k)
    try:
        last = stats.last_date()
        if last is None or start > last:
            raise MapDataError(f"--half {half}: the published casualties end {last}; pick an earlier half-year.")
        return render_kredsraad(stats, half=half, kommuner=dict(settings.kommuner), junctions=jn,
                                top_period=top_period, out_html=Path(out_dir) / f"{kredsraad_stem(half)}.html",
                                k=settings.publish.suppression_k, pdf=pdf)
    finally:
        stats.close()


def default_half(publish_dir: Path) -> str:
    """The second half of the newest analysis window's last year (the window ends with a full year)."""
    return f"{default_year(publish_dir)}H2"


@dataclass
class NightlyMaps:
    """What ``render_nightly`` did: the files now in ``<publish_dir>/maps``, which parts
    (kommuner, ``kredsraad``) it rendered and which it kept from an earlier night."""

    files: list[Path] = field(default_factory=list)
    rendered: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


MAPS_MANIFEST = "manifest.json"
STAGE = "maps"


def render_latest(settings: Settings, con: duckdb.DuckDBPyConnection | None = None, *,
                  pdf: bool = True, workers: int | None = None, force: bool = False) -> list[Path]:
    """The files of ``render_nightly`` (see there)."""
    return render_nightly(settings, con, pdf=pdf, workers=workers, force=force).files


def _part_of(name: str, codes: list[str]) -> str | None:
    """The part (kommunekode or 'kredsraad') a rendered file belongs to."""
    from skadestue.maps.fingerprint import KREDSRAAD

    if name.startswith("kredsraad_"):
        return KREDSRAAD
    for code in codes:
        if name.startswith((f"kort_{code}_", f"trafikanalyse_{code}_")):
            return code
    return None


def render_nightly(settings: Settings, con: duckdb.DuckDBPyConnection | None = None, *,
                   pdf: bool = True, workers: int | None = None, force: bool = False) -> NightlyMaps:
    """For the nightly flow, after publication: every kommune's map of the newest analysis
    window, its annual report of that window's last year and the kredsråd status of that
    year's second half, into ``<publish_dir>/maps`` (built beside it, then swapped in).

    Only the kommuner whose inputs changed since their last rendering are rendered (in
    ``workers`` processes); the others' files are carried over as hard links
    (``skadestue.maps.fingerprint``). A night where nothing changed writes nothing. The
    fingerprints are kept in ``maps/manifest.json`` and, when ``con`` is given (the warehouse,
    writable), in ops.stage_state (stage ``maps``), so ``skadestue run --full`` renders all
    again; ``force`` does too.

    Pass ``con`` when the caller holds the warehouse open."""
    import time

    from skadestue.maps.fingerprint import KREDSRAAD, part_fingerprints, today

    t0 = time.perf_counter()
    result = NightlyMaps()
    publish_dir = Path(settings.publish_dir)
    target = publish_dir / MAPS_DIR
    map_period = data.resolve_period(publish_dir, None)
    report_year = default_year(publish_dir)
    report_period = report_period_for(publish_dir, report_year)
    half = default_half(publish_dir)
    codes = [_check_kommune(settings, c) for c in settings.kommuner]
    with data.open_warehouse(settings, con) as c:
        plan = data.plan_coverage(publish_dir, c)
        fps = part_fingerprints(
            publish_dir, c, {code: settings.kommuner[code] for code in codes}, map_period=map_period,
            report_year=report_year, report_period=report_period, half=half, k=settings.publish.suppression_k,
            buffer_m=settings.publish.plan_buffer_m, pdf=pdf, plan=plan,
        )
        stored = state.stored_parts(c, STAGE) if con is not None else None
    result.seconds["fingerprint"] = round(time.perf_counter() - t0, 3)
    previous = _maps_manifest(target) if not force else {}
    prev_parts = previous.get("parts", {})

    def kept(part: str) -> bool:
        old = prev_parts.get(part)
        return (old is not None and old.get("fingerprint") == fps[part]
                and (stored is None or stored.get(part) == fps[part])
                and bool(old.get("files")) and all((target / f).is_file() for f in old["files"]))

    keep = [p for p in fps if kept(p)]
    todo = [p for p in fps if p not in keep]
    result.kept = keep
    if not todo and (target / MAPS_MANIFEST).is_file():
        result.files = sorted(p for p in target.iterdir() if p.is_file())
        result.seconds["total"] = round(time.perf_counter() - t0, 3)
        log.info("maps: nothing changed since the last rendering; %d files kept", len(result.files))
        return result

    staging = publish_dir / f".{MAPS_DIR}-new-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        parts: dict[str, dict] = {}
        for part in keep:
            for name in prev_parts[part]["files"]:
                os.link(target / name, staging / name)
            parts[part] = prev_parts[part]
        kommuner = [p for p in todo if p != KREDSRAAD]
        t1 = time.perf_counter()
        written: list[Path] = []
        if kommuner:
            written += render(settings, staging, kommuner=kommuner, maps=True, reports=True, pdf=pdf,
                              workers=workers, con=con).files
        if KREDSRAAD in todo:
            written += render_kredsraad_status(settings, half, staging, pdf=pdf)
        result.seconds["render"] = round(time.perf_counter() - t1, 2)
        stamp = today()
        for part in todo:
            mine = sorted(p.name for p in written if _part_of(p.name, codes) == part)
            parts[part] = {"fingerprint": fps[part], "files": mine, "rendered_at": stamp}
        manifest = {"map_period": map_period.slug, "report_year": report_year, "half": half,
                    "render_version": _render_version(), "parts": parts}
        (staging / MAPS_MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        old = publish_dir / f".{MAPS_DIR}-old-{os.getpid()}"
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except Exception:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if con is not None:
        _record(con, fps)
    result.rendered = todo
    result.files = sorted(p for p in target.iterdir() if p.is_file())
    result.seconds["total"] = round(time.perf_counter() - t0, 3)
    log.info("maps and reports for %s: rendered %s, kept %s (%s)", dt.date.today(), todo, keep, result.seconds)
    return result


def _render_version() -> int:
    from skadestue.maps.fingerprint import RENDER_VERSION

    return RENDER_VERSION


def _maps_manifest(target: Path) -> dict:
    path = target / MAPS_MANIFEST
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}


def _record(con: duckdb.DuckDBPyConnection, fps: dict[str, str]) -> None:
    """The fingerprints of what is now in ``maps/`` (after the swap: a killed run renders again)."""
    try:
        con.execute("BEGIN TRANSACTION")
    except duckdb.Error as exc:  # read-only or already in a transaction: the manifest still holds them
        log.warning("maps: fingerprints not recorded in ops.stage_state (%s)", exc)
        return
    try:
        state.forget(con, STAGE)
        for part, fp in fps.items():
            state.record(con, STAGE, part, fp)
        con.execute("COMMIT")
    except duckdb.Error as exc:
        con.execute("ROLLBACK")
        log.warning("maps: fingerprints not recorded in ops.stage_state (%s)", exc)
