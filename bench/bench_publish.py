"""Benchmark: publication at national scale, full and on incremental nights (issue 9).

Needs a warehouse whose marts are built, e.g. the national one of the hotspot benchmark
(``bench/bench_hotspots.py --keep-warehouse PATH``), optionally thinned to ~560k casualties
(ten years of national deliveries) with ``--keep-share 0.56``. The warehouse is copied; the
copy is changed, never the original. Three publications into a temporary folder:

1. ``full``: everything written (``force=True``);
2. ``unchanged``: the same marts again: fingerprints only, nothing written;
3. ``night``: one casualty's hour changed in marts.casualty_point (what an ordinary night
   changes: new casualties fall in the current year, in no hotspot period): only that layer
   is written, the rest carried over.

    .venv/bin/python bench/bench_publish.py --warehouse /tmp/national.duckdb [--keep-share 0.56]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("SKADESTUE_PSEUDONYM_KEY", "bench-key")


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", type=Path, required=True, help="a warehouse with built marts (copied)")
    parser.add_argument("--keep-share", type=float, default=None,
                        help="keep this share of the casualties (thinned by hash, marts rebuilt)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "bench_publish.json")
    args = parser.parse_args()

    from skadestue import db
    from skadestue.config import Settings
    from skadestue.publish import publish_layers

    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        wh = Path(tmp) / "warehouse.duckdb"
        shutil.copy(args.warehouse, wh)
        settings = Settings(warehouse=wh, publish_dir=Path(tmp) / "publish")
        con = db.connect(wh, settings=settings)
        if args.keep_share is not None:
            import datetime as dt

            from skadestue.hotspots import build_hotspots

            con.execute(f"DELETE FROM core.casualty WHERE hash(casualty_id) % 1000 >= {int(args.keep_share * 1000)}")
            last = con.execute("SELECT max(injury_date) FROM core.casualty").fetchone()[0]
            build_hotspots(con, settings, as_of=dt.date(last.year + 1, 1, 1))
        rows = {t: con.execute(f"SELECT count(*) FROM marts.{t}").fetchone()[0]
                for t in ("hotspot_grid", "hotspot_junction", "hotspot_segment", "casualty_point", "plan_coverage")}
        print("mart rows", rows, flush=True)

        def run(name: str, **kw) -> None:
            load = os.getloadavg()[0]
            c, t = cpu_seconds(), time.perf_counter()
            r = publish_layers(con, settings, f"bench-{name}", **kw)
            results[name] = {"status": r.status, "wall_s": round(time.perf_counter() - t, 2),
                             "cpu_s": round(cpu_seconds() - c, 2), "load_average": round(load, 1),
                             "steps_wall_s": r.seconds, "layers_written": r.layers_written,
                             "files_reused": len(r.files_reused)}
            print(name, results[name], flush=True)

        run("full", force=True)
        run("unchanged")
        con.execute("UPDATE marts.casualty_point SET injury_hour = (coalesce(injury_hour, 0) + 1) % 24 "
                    "WHERE casualty_id = (SELECT min(casualty_id) FROM marts.casualty_point)")
        run("night")
        sizes = {str(p.relative_to(settings.publish_dir)): p.stat().st_size
                 for p in Path(settings.publish_dir).rglob("*") if p.is_file()}
        con.close()
    out = {
        "what": "publish_layers at national scale: full, unchanged night, ordinary night (casualty_point changed)",
        "mart_rows": rows,
        "runs": results,
        "file_bytes": sizes,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    print(f"{'run':<10} {'status':<10} {'wall s':>8} {'CPU s':>8}  written")
    for name, r in results.items():
        print(f"{name:<10} {r['status']:<10} {r['wall_s']:>8} {r['cpu_s']:>8}  {', '.join(r['layers_written']) or '-'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
