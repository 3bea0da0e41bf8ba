"""Benchmark the whole nightly run at national scale (issue 9): one command, one table.

(a) full rebuild: 10 years of deliveries (demo generator at --scale, ~500,000 ER contacts and
    ~60,000 police persons by default) into a fresh warehouse whose gazetteer holds the demo's
    addresses plus a synthetic national gazetteer up to --addresses (2.5 million; built by
    bench_geocode.build_gazetteer, moved 2,000 km north so it never overlaps the region);
(b) one ordinary night: the last lines of each last-year ER file (1/365 of it: the contacts of the
    last days of December, the files are in arrival order) are held back from (a) and delivered as
    the next night's files. The runs are pinned to ``--as-of`` (default 31 December of the last
    year), so these contacts fall in the year in progress, as yesterday's contacts do;
(c) a late night: the same share of the year before's files (a closed year, part of the hotspot
    periods) arrives late, so the periods that hold it are rebuilt.

All run the real stages (flows.nightly.run_nightly without Prefect, so the server's start-up is
not counted; ops.run_stage records wall time, CPU seconds and peak memory per stage, the peak
reset at each stage's start), maps and reports included. Targets on 2 cores: (a) < 5 min and
< 8 GB, (b) < 30 s.

    .venv/bin/python bench/bench_nightly.py                         # national scale
    .venv/bin/python bench/bench_nightly.py --scale 1 --addresses 200000 --years 2   # a quick look
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
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("SKADESTUE_PSEUDONYM_KEY", "bench-key")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from skadestue.runtime import prepare_environment  # noqa: E402

prepare_environment(Path(tempfile.gettempdir()) / "skadestue_bench_prefect")

from geodata.importer import import_geodata  # noqa: E402
from skadestue import db  # noqa: E402
from skadestue.config import load_settings  # noqa: E402
from skadestue.demo import generate_demo  # noqa: E402

TARGETS = {"full": (300.0, 8192.0), "night": (30.0, None), "late": (30.0, None)}


def _hwm_reset() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(rows: list, phase: str, name: str, fn, *a, **kw):
    _hwm_reset()
    t, c = time.perf_counter(), _cpu()
    out = fn(*a, **kw)
    rows.append({"phase": phase, "stage": name, "seconds": round(time.perf_counter() - t, 2),
                 "cpu_seconds": round(_cpu() - c, 2), "peak_rss_mb": round(_hwm_mb())})
    print(f"  {phase:<6} {name:<22} {rows[-1]['seconds']:8.1f} s  CPU {rows[-1]['cpu_seconds']:8.1f} s  "
          f"peak {rows[-1]['peak_rss_mb']:6.0f} MB", flush=True)
    return out


def pad_gazetteer(warehouse: Path, n_total: int, seed: int) -> dict:
    """Add a synthetic national gazetteer (other kommunekoder, far north) up to n_total addresses."""
    from bench_geocode import build_gazetteer

    con = db.connect(warehouse)
    try:
        have = con.execute("SELECT count(*) FROM gazetteer.address").fetchone()[0]
        n_more = max(0, n_total - have)
        if n_more == 0:
            return {"addresses": have}
        con.execute("ATTACH ':memory:' AS nat")
        con.execute("USE nat")
        db.migrate(con)
        build_gazetteer(con, n_more, seed)
        con.execute("USE warehouse")
        region = {r[0] for r in con.execute("SELECT kommunekode FROM warehouse.gazetteer.municipality").fetchall()}
        clash = {r[0] for r in con.execute("SELECT DISTINCT kommunekode FROM nat.gazetteer.street").fetchall()} & region
        assert not clash, f"synthetic kommunekoder clash with the region's: {clash}"
        north = 2_000_000.0
        con.execute("BEGIN TRANSACTION")
        con.execute(f"INSERT INTO warehouse.gazetteer.address SELECT * REPLACE (y + {north} AS y) "
                    "FROM nat.gazetteer.address")
        con.execute(f"INSERT INTO warehouse.gazetteer.street SELECT * REPLACE (y + {north} AS y) "
                    "FROM nat.gazetteer.street")
        con.execute(f"INSERT INTO warehouse.gazetteer.junction SELECT * REPLACE (y + {north} AS y) "
                    "FROM nat.gazetteer.junction")
        con.execute("COMMIT")
        con.execute("DETACH nat")
        return {t: con.execute(f"SELECT count(*) FROM gazetteer.{t}").fetchone()[0]
                for t in ("address", "street", "junction")}
    finally:
        con.close()


def hold_back_night(inbox: Path, night: Path, year: int) -> int:
    """Move the last 1/365 of each of ``year``'s ER files' lines into a same-named night file."""
    (night / "skadestue").mkdir(parents=True, exist_ok=True)
    held = 0
    for path in sorted((inbox / "skadestue").glob(f"*_{year}.csv")):
        data = path.read_bytes()
        nl = b"\r\n" if b"\r\n" in data[:4096] else b"\n"
        lines = data.rstrip(nl).split(nl)
        k = max(1, (len(lines) - 1) // 365)
        if len(lines) - 1 <= k:
            continue
        path.write_bytes(nl.join(lines[:-k]) + nl)
        (night / "skadestue" / f"{path.stem}_nat_{night.name}.csv").write_bytes(nl.join([lines[0], *lines[-k:]]) + nl)
        held += k
    return held


def stage_rows(warehouse: Path, run_id: str, phase: str) -> list[dict]:
    con = db.connect(warehouse, read_only=True)
    try:
        rows = con.execute(
            "SELECT stage, seconds, cpu_seconds, peak_rss_mb, rows FROM ops.run_stage WHERE run_id = ? ORDER BY seq",
            [run_id]).fetchall()
    finally:
        con.close()
    return [{"phase": phase, "stage": s, "seconds": round(w, 2), "cpu_seconds": round(c or 0, 2),
             "peak_rss_mb": round(p or 0), "rows": n} for s, w, c, p, n in rows]


def run_night(settings, run_id: str) -> tuple[dict, float, float, float]:
    from flows.nightly import run_nightly

    _hwm_reset()
    t, c = time.perf_counter(), _cpu()
    summary = run_nightly(str(settings.inbox), str(settings.warehouse), str(settings.publish_dir),
                          str(settings.quality_dir), None, run_id)
    return summary, time.perf_counter() - t, _cpu() - c, _hwm_mb()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=13.2, help="demo scale (13.2 x 10 years ~ 500,000 ER contacts)")
    ap.add_argument("--police-reporting", type=float, default=0.18, help="police share (0.18 ~ 60,000 persons)")
    ap.add_argument("--years", type=int, default=10)
    ap.add_argument("--last-year", type=int, default=2024)
    ap.add_argument("--addresses", type=int, default=2_500_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--as-of", default=None,
                    help="the date the runs treat as today (default: 31 December of --last-year)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the data here (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "bench_nightly.json")
    args = ap.parse_args()
    args.as_of = args.as_of or f"{args.last_year}-12-31"
    os.environ["SKADESTUE_AS_OF"] = args.as_of  # read by every stage's settings

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_nightly_")
        work = Path(tmp.name)
    else:
        work = args.workdir
        shutil.rmtree(work, ignore_errors=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    load = os.getloadavg()
    print(f"bench_nightly: scale {args.scale:g}, {args.years} years, {args.addresses:,} addresses ({machine}, "
          f"load {load[0]:.1f})", flush=True)
    rows: list[dict] = []
    shared = REPO.parent / "shared" / "data" / "boundaries" / "dagi_kommuner.geojson"
    years = (args.last_year - args.years + 1, args.last_year)
    paths = timed(rows, "setup", "generate deliveries", generate_demo, work, scale=args.scale, years=years,
                  seed=args.seed, police_reporting=args.police_reporting,
                  municipalities_geojson=shared if shared.exists() else None)
    settings = load_settings(None, inbox=work / "inbox", warehouse=work / "warehouse.duckdb",
                             publish_dir=work / "publish", quality_dir=work / "quality")
    with db.warehouse(settings) as con:
        timed(rows, "setup", "import demo gazetteer", import_geodata, con, addresses=paths.addresses_csv,
              roads=paths.roads_geojson, municipalities=paths.municipalities_geojson,
              postcodes=paths.postcodes_geojson, places=paths.places_csv)
    gaz = timed(rows, "setup", "pad national gazetteer", pad_gazetteer, settings.warehouse, args.addresses, args.seed)
    nights = {"night": hold_back_night(settings.inbox, work / "night", args.last_year),
              "late": hold_back_night(settings.inbox, work / "late", args.last_year - 1)}

    phases = [("full", "(a) full rebuild", None), ("night", "(b) one ordinary night", work / "night"),
              ("late", "(c) a night with late records for a closed year", work / "late")]
    summaries, verdict = {}, {}
    for phase, title, files in phases:
        for f in (files / "skadestue").glob("*.csv") if files else ():
            shutil.copy(f, settings.inbox / "skadestue" / f.name)
        print(title, flush=True)
        summary, wall, cpu, peak = run_night(settings, f"bench-{phase}")
        stage_list = stage_rows(settings.warehouse, f"bench-{phase}", phase)
        rows += stage_list
        # each stage resets the peak: the run's peak is the largest stage peak
        peak = max([peak, *(r["peak_rss_mb"] for r in stage_list)])
        rows.append({"phase": phase, "stage": "TOTAL", "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
                     "peak_rss_mb": round(peak), "rows": summary["rows_read"]})
        summaries[phase] = summary
        limit_s, limit_mb = TARGETS[phase]
        verdict[phase] = {"seconds": round(wall, 1), "peak_rss_mb": round(peak), "target_seconds": limit_s,
                          "target_peak_mb": limit_mb,
                          "met": wall < limit_s and (limit_mb is None or peak < limit_mb)}

    full = summaries["full"]
    counts = {"er_contacts": full["er_contacts"], "police_accidents": full["police_accidents"],
              "casualties": full["casualties"], "rows_read_full": full["rows_read"],
              "rows_read_night": summaries["night"]["rows_read"], "rows_read_late": summaries["late"]["rows_read"],
              "rows_held_back": nights, "as_of": args.as_of, "gazetteer": gaz}
    with db.warehouse(settings, read_only=True) as con:
        counts["police_persons"] = con.execute("SELECT count(*) FROM core.police_person").fetchone()[0]

    print()
    print(f"{'phase':<6} {'stage':<24} {'wall s':>8} {'CPU s':>8} {'peak MB':>8} {'rows':>10}")
    for r in rows:
        n = r.get("rows")
        print(f"{r['phase']:<6} {r['stage']:<24} {r['seconds']:8.1f} {r['cpu_seconds']:8.1f} {r['peak_rss_mb']:8.0f} "
              f"{'' if n is None else f'{n:,}':>10}")
    print(f"\ncounts: {json.dumps(counts)}")
    for phase, title, _ in phases:
        v = verdict[phase]
        limit = f"< {v['target_seconds']:.0f} s" + (f", < {v['target_peak_mb']:.0f} MB" if v["target_peak_mb"] else "")
        print(f"{title}: {v['seconds']:.1f} s, peak {v['peak_rss_mb']} MB (target {limit}): "
              f"{'met' if v['met'] else 'NOT met'}")
    result = {"args": {k: str(v) for k, v in vars(args).items()}, "machine": machine,
              "load_average_at_start": [round(x, 1) for x in load],
              "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
              "counts": counts, "stages": rows, "verdict": verdict}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"written to {args.out}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
