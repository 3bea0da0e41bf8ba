"""Benchmark the nightly pipeline stage by stage on generated demo data.

Calls the package functions the flow's tasks call, in the flow's order (ingest, the raw
quality gates, geocoding, its gate, linkage, its gate, hotspots, their gate, publication, the
lokalråd maps and reports; ``--no-maps`` leaves them out),
without Prefect (whose own start-up is measured separately). Reports wall and CPU time per
stage, the process's peak memory, and the **validation share**: the time of the quality
gates (Great Expectations, result rows, quarantine, Data Docs, trend ratios) over the time
of the night (every stage from ingest to maps; generating the demo and importing the
gazetteer are set-up, not part of a night).

Like ``flows.nightly.run_nightly``, the night starts by importing GX in the background
(``skadestue.quality.prewarm``), so the import overlaps with ingest; ``--no-prewarm`` makes
the first gate import it in the foreground. CPU time of the prewarm thread is counted as
validation in the CPU share (it ran during ingest, so it is moved out of ingest's figure).

    .venv/bin/python bench/run_all.py --scale 1 --scale 5
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

from geodata.importer import import_geodata  # noqa: E402
from skadestue import db  # noqa: E402
from skadestue.config import load_settings  # noqa: E402
from skadestue.demo import generate_demo  # noqa: E402
from skadestue.geocode import geocode_er_contacts, geocode_police_accidents  # noqa: E402
from skadestue.hotspots import build_hotspots  # noqa: E402
from skadestue.ingest import build_core, ingest_inbox  # noqa: E402
from skadestue.link import link_casualties  # noqa: E402
from skadestue.maps import render_latest  # noqa: E402
from skadestue.publish import publish_layers  # noqa: E402
from skadestue.quality import gx_runtime, prewarm, validate_stage  # noqa: E402

SETUP = ("generate demo", "geodata import")
TARGET_SHARE = 0.10


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """CPU seconds of the whole process (all threads, user + system)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def bench(scale: float, workdir: Path, municipalities: Path | None, use_prewarm: bool = True,
          with_maps: bool = True) -> dict:
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def timed(name, fn, *a, **kw):
        t, c = time.perf_counter(), cpu_seconds()
        out = fn(*a, **kw)
        timings[name] = round(time.perf_counter() - t, 2)
        cpu[name] = round(cpu_seconds() - c, 2)
        print(f"  {name:<22} {timings[name]:8.2f} s  {cpu[name]:8.2f} CPU s   peak RSS {peak_rss_mb():7.0f} MB",
              flush=True)
        return out

    out = workdir / f"scale{scale:g}"
    paths = timed("generate demo", generate_demo, out, scale=scale, municipalities_geojson=municipalities)
    settings = load_settings(
        None, inbox=out / "inbox", warehouse=out / "warehouse.duckdb",
        publish_dir=out / "publish", quality_dir=out / "quality",
    )
    run_id = "bench"

    def gate(stage: str) -> None:
        result = timed(f"validate {stage}", validate_stage, con, stage, run_id, settings,
                       docs_dir=settings.quality_dir)
        gates[stage] = {"failed": result.n_failed, "critical_failures": result.critical_failures,
                        "quarantined": result.n_quarantined}

    gates: dict[str, dict] = {}
    with db.warehouse(settings) as con:
        timed("geodata import", import_geodata, con, addresses=paths.addresses_csv, roads=paths.roads_geojson,
              municipalities=paths.municipalities_geojson, postcodes=paths.postcodes_geojson)
        con.execute("INSERT INTO ops.run(run_id, started_at, status) VALUES (?, now(), 'running')", [run_id])
        night_start, night_cpu_start = time.perf_counter(), cpu_seconds()
        warming = prewarm() if use_prewarm else None  # what the nightly run does first
        ingest = timed("ingest", ingest_inbox, con, settings, run_id)
        timed("build core", build_core, con, settings)
        if warming is not None:  # the first gate would wait for the GX import here
            timed("validate gx import wait", warming.join)
        gate("raw_er")
        gate("raw_police")
        timed("geocode police", geocode_police_accidents, con, settings)
        timed("geocode er", geocode_er_contacts, con, settings)
        gate("geocoded")
        timed("link", link_casualties, con, settings)
        gate("linked")
        timed("hotspots", build_hotspots, con, settings)
        gate("hotspots")
        timed("publish", publish_layers, con, settings, run_id)
        if with_maps:  # the nightly flow renders the lokalråd maps and reports after publication
            timed("maps", render_latest, settings, con)
        night_wall, night_cpu_total = time.perf_counter() - night_start, cpu_seconds() - night_cpu_start
        counts = dict(
            er_contacts=con.execute("SELECT count(*) FROM core.er_contact").fetchone()[0],
            police_persons=con.execute("SELECT count(*) FROM core.police_person").fetchone()[0],
            casualties=con.execute("SELECT count(*) FROM core.casualty").fetchone()[0],
            rows_read=con.execute("SELECT sum(rows_read) FROM ops.delivery").fetchone()[0],
        )
    del ingest
    night = {k: v for k, v in timings.items() if k not in SETUP}
    validation = sum(v for k, v in night.items() if k.startswith("validate "))
    night_total = sum(night.values())
    # CPU of the whole process from ingest to publish. The prewarm thread (GX import, context,
    # suites) ran while ingest/core were timed and ended before the first gate (joined above):
    # its CPU is counted as validation, the wait for it adds none (the thread is counted).
    prewarm_cpu = gx_runtime.CONTEXT_COST.get("prewarm_cpu_seconds", 0.0) if use_prewarm else 0.0
    gates_cpu = sum(v for k, v in cpu.items() if k.startswith("validate ") and k != "validate gx import wait")
    validation_cpu = gates_cpu + prewarm_cpu
    import_cpu = gx_runtime.CONTEXT_COST.get("cpu_seconds", 0.0)
    return {
        "scale": scale,
        "counts": counts,
        "seconds": timings,
        "cpu_seconds": cpu,
        "total_seconds": round(sum(timings.values()), 2),
        "night_seconds": round(night_total, 2),
        "night_wall_seconds": round(night_wall, 2),
        "validation_seconds": round(validation, 2),
        "validation_share": round(validation / night_total, 4),
        "validation_share_without_maps": round(validation / (night_total - night.get("maps", 0.0)), 4),
        "night_cpu_seconds": round(night_cpu_total, 2),
        "validation_cpu_seconds": round(validation_cpu, 2),
        "validation_cpu_share": round(validation_cpu / night_cpu_total, 4),
        "gx_prewarm": use_prewarm,
        "gx_prewarm_cpu_seconds": round(prewarm_cpu, 2),
        "gx_import_and_context_cpu_seconds": round(import_cpu, 2),
        "validation_cpu_share_without_gx_import": round((validation_cpu - import_cpu) / night_cpu_total, 4),
        "gates": gates,
        "peak_rss_mb": round(peak_rss_mb()),
    }


def machine_state() -> dict:
    """What the figures depend on: the load while measuring and whether imports were cached."""
    load = os.getloadavg()
    return {
        "load_average_1_5_15": [round(x, 2) for x in load],
        # PYTHONDONTWRITEBYTECODE=1 without .pyc files in site-packages makes every import
        # compile its source, which doubles GX's import (a normal pip install writes .pyc)
        "python_writes_bytecode": not sys.dont_write_bytecode,
        "pycache_prefix": sys.pycache_prefix,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, action="append", help="demo scale (repeatable)")
    parser.add_argument("--municipalities", type=Path,
                        default=REPO.parent / "shared" / "data" / "boundaries" / "dagi_kommuner.geojson")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--no-prewarm", action="store_true", help="import GX at the first gate, in the foreground")
    parser.add_argument("--no-maps", action="store_true", help="leave out the maps and reports stage")
    args = parser.parse_args()
    scales = args.scale or [1.0]
    municipalities = args.municipalities if args.municipalities.exists() else None
    args.out.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    for scale in scales:
        print(f"scale {scale:g} ({machine}, load {os.getloadavg()[0]:.1f})", flush=True)
        before = machine_state()
        with tempfile.TemporaryDirectory() as tmp:
            result = bench(scale, Path(tmp), municipalities, use_prewarm=not args.no_prewarm,
                           with_maps=not args.no_maps)
        result["machine"] = machine
        result["machine_state"] = {"before": before, "after": machine_state()}
        print(json.dumps(result, indent=2))
        print(f"night (ingest..{'maps' if not args.no_maps else 'publish'}): {result['night_seconds']:.2f} s wall, {result['night_cpu_seconds']:.2f} CPU s; "
              f"validation {result['validation_seconds']:.2f} s, {result['validation_cpu_seconds']:.2f} CPU s "
              f"(GX prewarm {'on' if result['gx_prewarm'] else 'off'})")
        print(f"validation share: {result['validation_share']:.1%} of the night's wall time, "
              f"{result['validation_cpu_share']:.1%} of its CPU time in this process (target < {TARGET_SHARE:.0%}); "
              f"{result['validation_share_without_maps']:.1%} of the wall time without the maps stage")
        name = f"pipeline_scale{scale:g}" + ("" if result["gx_prewarm"] else "_no_prewarm")
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
