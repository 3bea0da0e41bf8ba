"""Benchmark what the quality gates add to a nightly run on demo data.

Runs the night stage by stage with the package functions the flow's tasks call (no Prefect:
its start-up would only make the share look smaller), in a fresh process so GX's import
and context creation are counted in the first validation. Validation = every
``validate_stage`` call (GX, result rows, row-level quarantine, Data Docs, trend ratios).

    .venv/bin/python bench/bench_validation.py --scale 1
Prints a table and writes bench/results/bench_validation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("SKADESTUE_PSEUDONYM_KEY", "bench-key")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from geodata.importer import import_geodata  # noqa: E402
from skadestue import db, ops  # noqa: E402
from skadestue.config import load_settings  # noqa: E402
from skadestue.demo import generate_demo  # noqa: E402

SHARED_KOMMUNER = REPO.parent / "shared" / "data" / "boundaries" / "dagi_kommuner.geojson"


def night(workdir: Path, scale: float, seed: int, prewarm: bool) -> dict:
    """Generate, import the gazetteer (not timed), then time one night stage by stage.

    ``prewarm``: start GX's import in a background thread when the night starts (what the
    flow should do); otherwise the first gate pays the import in the foreground.
    """
    kommuner = SHARED_KOMMUNER if SHARED_KOMMUNER.exists() else None
    paths = generate_demo(workdir / "demo", scale=scale, seed=seed, municipalities_geojson=kommuner)
    settings = load_settings(None, inbox=paths.inbox, warehouse=workdir / "warehouse.duckdb",
                             publish_dir=workdir / "publish", quality_dir=workdir / "quality")
    with db.warehouse(settings) as con:
        import_geodata(con, addresses=paths.addresses_csv, roads=paths.roads_geojson,
                       municipalities=paths.municipalities_geojson,
                       postcodes=paths.postcodes_geojson, places=paths.places_csv)
    times: dict[str, float] = {}
    run_id = ops.new_run_id()

    cpu: dict[str, float] = {}

    def timed(name: str, fn, *args, **kw):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn(*args, **kw)
        times[name] = times.get(name, 0.0) + time.perf_counter() - t0
        cpu[name] = cpu.get(name, 0.0) + time.process_time() - c0
        return out

    from skadestue.geocode import geocode_er_contacts, geocode_police_accidents
    from skadestue.hotspots import build_hotspots
    from skadestue.ingest import build_core, ingest_inbox
    from skadestue.link import link_casualties
    from skadestue.publish import publish_layers
    from skadestue.quality import validate_stage

    validations = {}

    def validate(con, stage):
        t0, c0 = time.perf_counter(), time.process_time()
        res = validate_stage(con, stage, run_id, settings, docs_dir=settings.quality_dir)
        validations[stage] = {"seconds": round(time.perf_counter() - t0, 2),
                              "cpu_seconds": round(time.process_time() - c0, 2), "failed": res.n_failed,
                              "critical_failures": res.critical_failures, "quarantined": res.n_quarantined}
        times["validate"] = times.get("validate", 0.0) + time.perf_counter() - t0
        cpu["validate"] = cpu.get("validate", 0.0) + time.process_time() - c0
        return res

    from skadestue.quality import gx_runtime

    with db.warehouse(settings) as con:
        t_start = time.perf_counter()
        if prewarm:
            gx_runtime.prewarm()
        ops.start_run(con, run_id, settings.inbox)
        timed("ingest", ingest_inbox, con, settings, run_id)
        timed("core", build_core, con, settings)
        t0, c0 = time.perf_counter(), time.process_time()
        gx_runtime.gx_context()  # the GX import + context (or what is left of it when prewarmed)
        gx_wait = time.perf_counter() - t0
        times["validate"] = gx_wait
        cpu["validate"] = time.process_time() - c0
        validate(con, "raw_er")
        validate(con, "raw_police")
        timed("geocode", geocode_police_accidents, con, settings)
        timed("geocode", geocode_er_contacts, con, settings)
        validate(con, "geocoded")
        timed("link", link_casualties, con, settings)
        validate(con, "linked")
        timed("hotspots", build_hotspots, con, settings)
        validate(con, "hotspots")
        timed("publish", publish_layers, con, settings, run_id)
        wall = time.perf_counter() - t_start
        trend = con.execute("SELECT * FROM quality.nightly_trend").df().to_dict("records")
    total = sum(times.values())
    # CPU: a prewarmed import ran on its own thread during ingest; move its cost to validation
    import_cpu = gx_runtime.CONTEXT_COST.get("cpu_seconds", 0.0)
    if prewarm:  # the whole prewarm thread: import, context and suite registration
        thread_cpu = gx_runtime.CONTEXT_COST.get("prewarm_cpu_seconds", import_cpu)
        cpu["ingest"] -= thread_cpu
        cpu["validate"] += thread_cpu
    cpu_total = sum(cpu.values())
    return {
        "cpu_seconds": {k: round(v, 2) for k, v in cpu.items()}, "cpu_total_seconds": round(cpu_total, 2),
        "validation_cpu_share": round(cpu["validate"] / cpu_total, 4),
        "gx_import_cpu_seconds": round(import_cpu, 2),
        "validation_cpu_share_without_import": round((cpu["validate"] - import_cpu) / cpu_total, 4),
        "scale": scale, "seed": seed, "run_id": run_id, "prewarm": prewarm,
        "gx_context_wait_seconds": round(gx_wait, 2), "wall_seconds": round(wall, 2),
        "seconds": {k: round(v, 2) for k, v in times.items()}, "total_seconds": round(total, 2),
        "validation_share": round(times["validate"] / total, 4), "validations": validations,
        "trend": [{k: (str(v) if k == "recorded_at" else v) for k, v in r.items()} for r in trend],
        "docs_index": str(settings.quality_dir / "index.html"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-prewarm", action="store_true", help="import GX in the foreground at the first gate")
    ap.add_argument("--keep", type=Path, help="keep the demo/warehouse here instead of a temp dir")
    args = ap.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = night(args.keep, args.scale, args.seed, not args.no_prewarm)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = night(Path(tmp), args.scale, args.seed, not args.no_prewarm)
    result["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                         "platform": platform.platform()}
    print(f"{'stage':<10}{'wall s':>10}{'share':>8}{'cpu s':>10}{'share':>8}")
    for k, v in result["seconds"].items():
        c = result["cpu_seconds"][k]
        print(f"{k:<10}{v:>10.2f}{v / result['total_seconds']:>8.1%}{c:>10.2f}{c / result['cpu_total_seconds']:>8.1%}")
    print(f"{'total':<10}{result['total_seconds']:>10.2f}{'':>8}{result['cpu_total_seconds']:>10.2f}")
    for stage, v in result["validations"].items():
        print(f"  validate {stage:<11} {v['seconds']:>6.2f}s failed={v['failed']} "
              f"quarantined={v['quarantined']} critical={v['critical_failures']}")
    print(f"GX import/context wait at the first gate: {result['gx_context_wait_seconds']:.2f}s "
          f"(prewarm={'on' if result['prewarm'] else 'off'}); wall time of the night {result['wall_seconds']:.2f}s")
    print(f"validation share of the night: wall {result['validation_share']:.1%}, CPU "
          f"{result['validation_cpu_share']:.1%} (GX import {result['gx_import_cpu_seconds']:.2f} CPU s; "
          f"without it {result['validation_cpu_share_without_import']:.1%})  (target < 10%)")
    name = "bench_validation" if result["prewarm"] else "bench_validation_no_prewarm"
    out = REPO / "bench" / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"written {out}")


if __name__ == "__main__":
    main()
