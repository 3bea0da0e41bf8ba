"""Benchmark: maps and reports of all 8 municipalities (issue 8: under a minute on 2 cores).

Renders, for every kommune, the static map (A4 PNG 200 dpi + PDF), the interactive HTML map
and the annual report (HTML + PDF via headless Chromium when installed), plus the kredsråd
half-year status: what the nightly flow's ``render_latest`` does. The demo is built first
(without Prefect) unless ``--demo DIR`` names a folder that already holds ``warehouse.duckdb``
and ``publish/`` (e.g. ``data/demo`` after ``make demo``; it is copied, never changed).

Then the incremental nights (issue 9), with ``render_nightly`` as the flow calls it: the first
night renders every kommune; (a) a night where nothing changed renders nothing; (b) a night
where one casualty of one kommune changed (publication of the changed layer, then the maps)
renders that kommune only.

    .venv/bin/python bench/bench_maps.py [--scale 1] [--demo data/demo] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("SKADESTUE_PSEUDONYM_KEY", "bench-key")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def build_demo(out: Path, scale: float) -> None:
    """Demo deliveries -> published layers, with the package functions (no Prefect)."""
    from geodata.importer import import_geodata
    from skadestue import db
    from skadestue.config import load_settings
    from skadestue.demo import generate_demo
    from skadestue.geocode import geocode_er_contacts, geocode_police_accidents
    from skadestue.hotspots import build_hotspots
    from skadestue.ingest import build_core, ingest_inbox
    from skadestue.link import link_casualties
    from skadestue.publish import publish_layers

    boundaries = REPO.parent / "shared" / "data" / "boundaries" / "dagi_kommuner.geojson"
    paths = generate_demo(out, scale=scale, years=(2020, 2024),
                          municipalities_geojson=boundaries if boundaries.exists() else None)
    settings = load_settings(None, inbox=out / "inbox", warehouse=out / "warehouse.duckdb",
                             publish_dir=out / "publish", quality_dir=out / "quality")
    with db.warehouse(settings) as con:
        import_geodata(con, addresses=paths.addresses_csv, roads=paths.roads_geojson,
                       municipalities=paths.municipalities_geojson, postcodes=paths.postcodes_geojson,
                       places=paths.places_csv)
        con.execute("INSERT INTO ops.run(run_id, started_at, status) VALUES ('bench', now(), 'running')")
        ingest_inbox(con, settings, "bench")
        build_core(con, settings)
        geocode_police_accidents(con, settings)
        geocode_er_contacts(con, settings)
        link_casualties(con, settings)
        build_hotspots(con, settings)
        publish_layers(con, settings, "bench")


def cpu_seconds() -> tuple[float, float]:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def timed(fn, *a, **kw) -> tuple[object, dict]:
    """fn(*a, **kw) with its wall and CPU seconds (this process and its finished children)."""
    load = os.getloadavg()[0]
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    out = fn(*a, **kw)
    cpu1 = cpu_seconds()
    return out, {"wall_s": round(time.perf_counter() - t0, 2), "cpu_s_parent": round(cpu1[0] - cpu0[0], 2),
                 "cpu_s_children": round(cpu1[1] - cpu0[1], 2), "load_average": round(load, 1)}


def incremental_nights(settings, work: Path, workers: int) -> dict:
    """render_nightly on a copy of the demo: first night, a night with no change, and a night
    where one casualty of one kommune changed (its publication included)."""
    import shutil

    from skadestue import db
    from skadestue.maps import render_nightly
    from skadestue.publish import publish_layers

    work.mkdir(parents=True)
    shutil.copy(settings.warehouse, work / "warehouse.duckdb")
    shutil.copytree(settings.publish_dir, work / "publish", ignore=shutil.ignore_patterns("maps"))
    s = settings.model_copy(update={"warehouse": work / "warehouse.duckdb", "publish_dir": work / "publish"})
    out: dict = {}
    with db.warehouse(s) as con:
        report, _ = timed(publish_layers, con, s, "bench-first", force=True)
        maps, t = timed(render_nightly, s, con, pdf=True, workers=workers)
        out["first_night"] = {**t, "rendered": len(maps.rendered), "files": len(maps.files)}
        maps, t = timed(render_nightly, s, con, pdf=True, workers=workers)
        out["no_change"] = {**t, "rendered": len(maps.rendered), "kept": len(maps.kept), "steps": maps.seconds}
        # one casualty of the smallest kommune, in a year of its report's trend, changes severity
        code, cid = con.execute(
            "SELECT kommunekode, min(casualty_id) FROM marts.casualty_point WHERE kommunekode IS NOT NULL "
            "AND severity = 'slight' AND year(injury_date) = (SELECT year(max(period_end)) - 2 FROM "
            "marts.hotspot_period) GROUP BY 1 ORDER BY count(*) LIMIT 1").fetchone()
        con.execute("UPDATE marts.casualty_point SET severity = 'serious' WHERE casualty_id = ?", [cid])
        report, t_pub = timed(publish_layers, con, s, "bench-one")
        maps, t = timed(render_nightly, s, con, pdf=True, workers=workers)
        out["one_kommune_changed"] = {
            "kommune": code, "publish": {**t_pub, "layers_written": report.layers_written,
                                         "files_reused": len(report.files_reused)},
            "maps": {**t, "rendered": maps.rendered, "kept": len(maps.kept), "steps": maps.seconds},
        }
    print(json.dumps(out, indent=2), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="demo scale when building the demo")
    parser.add_argument("--demo", type=Path, help="an existing demo folder (warehouse.duckdb + publish/)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "maps.json")
    args = parser.parse_args()

    from skadestue.config import load_settings
    from skadestue.maps import render
    from skadestue.maps.render import default_half
    from skadestue.maps.report import find_chromium

    with tempfile.TemporaryDirectory() as tmp:
        demo = args.demo
        if demo is None:
            demo = Path(tmp) / "demo"
            t = time.perf_counter()
            build_demo(demo, args.scale)
            print(f"demo (scale {args.scale:g}) built in {time.perf_counter() - t:.0f} s", flush=True)
        settings = load_settings(None, warehouse=demo / "warehouse.duckdb", publish_dir=demo / "publish")
        load_before = os.getloadavg()
        cpu0 = cpu_seconds()
        t0 = time.perf_counter()
        result = render(settings, Path(tmp) / "out", maps=True, reports=True,
                        half=default_half(Path(settings.publish_dir)), pdf=True, workers=args.workers)
        wall = time.perf_counter() - t0
        cpu1 = cpu_seconds()
        n_files = len(result.files)
        sizes = {p.suffix: 0 for p in result.files}
        for p in result.files:
            sizes[p.suffix] += p.stat().st_size
        nights = incremental_nights(settings, Path(tmp) / "nights", args.workers)
    out = {
        "what": "maps (PNG 200 dpi + PDF + HTML) and annual reports (HTML + PDF) of all 8 kommuner + kredsråd status",
        "kommuner": len(settings.kommuner),
        "files": n_files,
        "bytes_by_type": sizes,
        "pdf_via_chromium": find_chromium() is not None,
        "workers": args.workers,
        "wall_seconds": round(wall, 1),
        "stage_seconds": result.seconds,
        "cpu_seconds_parent": round(cpu1[0] - cpu0[0], 1),
        "cpu_seconds_children": round(cpu1[1] - cpu0[1], 1),
        "incremental_nights": nights,
        "demo": str(args.demo) if args.demo else f"built, scale {args.scale:g}",
        "load_average_before": [round(v, 1) for v in load_before],
        "load_average_after": [round(v, 1) for v in os.getloadavg()],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "target": "under 60 s wall on 2 cores; a night with no change under 1 s",
    }
    print(json.dumps(out, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
