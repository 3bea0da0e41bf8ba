"""Benchmark the nightly pipeline stage by stage on generated demo data.

Calls the package functions the flow's tasks call (without Prefect, whose own start-up is
measured separately), and reports wall time per stage and the process's peak memory.

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
from skadestue.publish import publish_layers  # noqa: E402
from skadestue.quality import validate_stage  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(scale: float, workdir: Path, municipalities: Path | None) -> dict:
    timings: dict[str, float] = {}

    def timed(name, fn, *a, **kw):
        t = time.perf_counter()
        out = fn(*a, **kw)
        timings[name] = round(time.perf_counter() - t, 2)
        print(f"  {name:<22} {timings[name]:8.2f} s   peak RSS {peak_rss_mb():7.0f} MB", flush=True)
        return out

    out = workdir / f"scale{scale:g}"
    paths = timed("generate demo", generate_demo, out, scale=scale, municipalities_geojson=municipalities)
    settings = load_settings(
        None, inbox=out / "inbox", warehouse=out / "warehouse.duckdb",
        publish_dir=out / "publish", quality_dir=out / "quality",
    )
    run_id = "bench"
    with db.warehouse(settings) as con:
        timed("geodata import", import_geodata, con, addresses=paths.addresses_csv, roads=paths.roads_geojson,
              municipalities=paths.municipalities_geojson, postcodes=paths.postcodes_geojson)
        con.execute("INSERT INTO ops.run(run_id, started_at, status) VALUES (?, now(), 'running')", [run_id])
        ingest = timed("ingest", ingest_inbox, con, settings, run_id)
        timed("build core", build_core, con, settings)
        timed("geocode police", geocode_police_accidents, con, settings)
        timed("geocode er", geocode_er_contacts, con, settings)
        timed("link", link_casualties, con, settings)
        timed("hotspots", build_hotspots, con, settings)
        for stage in ("raw_er", "raw_police", "geocoded", "linked", "hotspots"):
            timed(f"validate {stage}", validate_stage, con, stage, run_id, settings, docs_dir=settings.quality_dir)
        timed("publish", publish_layers, con, settings, run_id)
        counts = dict(
            er_contacts=con.execute("SELECT count(*) FROM core.er_contact").fetchone()[0],
            police_persons=con.execute("SELECT count(*) FROM core.police_person").fetchone()[0],
            casualties=con.execute("SELECT count(*) FROM core.casualty").fetchone()[0],
            rows_read=con.execute("SELECT sum(rows_read) FROM ops.delivery").fetchone()[0],
        )
    del ingest
    return {
        "scale": scale,
        "counts": counts,
        "seconds": timings,
        "total_seconds": round(sum(timings.values()), 2),
        "peak_rss_mb": round(peak_rss_mb()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, action="append", help="demo scale (repeatable)")
    parser.add_argument("--municipalities", type=Path,
                        default=REPO.parent / "shared" / "data" / "boundaries" / "dagi_kommuner.geojson")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    scales = args.scale or [1.0]
    municipalities = args.municipalities if args.municipalities.exists() else None
    args.out.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    for scale in scales:
        print(f"scale {scale:g} ({machine})", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            result = bench(scale, Path(tmp), municipalities)
        result["machine"] = machine
        print(json.dumps(result, indent=2))
        (args.out / f"pipeline_scale{scale:g}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
