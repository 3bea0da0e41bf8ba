"""Benchmark what the quality gates add to a nightly run on demo data.

Runs the night stage by stage with the package functions the flow's tasks call (no Prefect:
its start-up would only make the share look smaller), in a fresh process so GX's import
and context creation are counted in the first validation. Validation = every
``validate_stage`` call (GX, result rows, row-level quarantine, Data Docs, trend ratios).

    .venv/bin/python bench/bench_validation.py --scale 1
Prints a table and writes bench/results/bench_validation.json.

    .venv/bin/python bench/bench_validation.py --national     # issue 9: gates at national size

``--national`` fills a warehouse straight with valid national-size tables (600,000 staged ER
rows, 560,000 ER contacts and casualties, 40,000 police accidents with 60,000 persons, a
200,000-row hotspot grid), then times every gate of the flow (all four, in flow order) three
ways on the same data: whole tables in GX as before (``incremental=False``), the first night
of the new gates (whole tables + remembering the row hashes), and an ordinary night after it
(150 new ER contacts/casualties and 20 police accidents; hotspots unchanged). Results under
``"national"`` in bench/results/bench_validation.json.
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


def fill_national(con, n_er: int, n_police: int, n_grid: int, start: int = 0, tag: str = "h") -> None:
    """Valid rows for every gated table (SQL, vectorised); ``start``/``tag`` make new keys."""
    er = f"""
        SELECT 'Sygehus ' || (i % 21) AS sygehus, '{tag}K' || i AS kontakt_id, 'er-{tag}' AS delivery_id,
               {1 if tag == 'h' else 2} AS delivery_seq, i AS line_no,
               TIMESTAMP '2016-01-01 08:00' + INTERVAL (i % 3500) DAY + INTERVAL (i % 600) MINUTE AS ankomst,
               TIMESTAMP '2016-01-01 07:30' + INTERVAL (i % 3500) DAY + INTERVAL (i % 600) MINUTE AS ulykke_tid,
               DATE '2016-01-01' + INTERVAL (i % 3500) DAY AS injury_date,
               md5(CAST(i AS VARCHAR)) || md5(CAST(i + 1 AS VARCHAR)) AS cpr_pseudonym,
               CASE WHEN i % 2 = 0 THEN 'K' ELSE 'M' END AS sex, i % 90 AS age,
               (['cyclist', 'car', 'pedestrian', 'moped'])[1 + i % 4] AS road_user,
               (['car', 'none', 'truck'])[1 + i % 3] AS counterpart,
               'Vej ' || (i % 5000) || ' ' || (i % 90) AS ulykkessted,
               lpad(CAST(101 + (i % 98) * 4 AS VARCHAR), 4, '0') AS kommunekode,
               'DS' || (100 + i % 800) AS diagnose, 'hjem' AS afslutning,
               (['slight', 'serious'])[1 + i % 2] AS severity
        FROM range({start}, {start + n_er}) t(i)"""
    con.execute(f"INSERT INTO staging.er_contact BY NAME {er}")
    con.execute(f"""INSERT INTO core.er_contact BY NAME
        SELECT * EXCLUDE (delivery_seq, line_no, ulykke_tid, diagnose, afslutning),
               450000.0 + (line_no % 400000) AS x, 6050000.0 + (line_no % 350000) AS y,
               'A' AS geocode_quality, 5.0 AS geocode_uncertainty_m FROM ({er})""")
    con.execute(f"""INSERT INTO core.casualty BY NAME
        SELECT 'C{tag}' || i AS casualty_id, (['er', 'both', 'police'])[1 + i % 3] AS source,
               DATE '2016-01-01' + INTERVAL (i % 3500) DAY AS injury_date, i % 24 AS injury_hour,
               lpad(CAST(101 + (i % 98) * 4 AS VARCHAR), 4, '0') AS kommunekode,
               450000.0 + (i % 400000) AS x, 6050000.0 + (i % 350000) AS y, 'A' AS geocode_quality,
               (['cyclist', 'car', 'pedestrian', 'moped'])[1 + i % 4] AS road_user,
               (['car', 'none', 'truck'])[1 + i % 3] AS counterpart,
               (['slight', 'serious'])[1 + i % 2] AS severity, '25-44' AS age_band,
               CASE WHEN i % 2 = 0 THEN 'K' ELSE 'M' END AS sex,
               CASE WHEN i % 3 = 1 THEN 0.97 END AS link_probability, 1 AS n_er_contacts
        FROM range({start}, {start + n_er}) t(i)""")
    pol = f"FROM range({start}, {start + n_police}) t(i)"
    con.execute(f"""INSERT INTO staging.police_accident BY NAME
        SELECT 'U{tag}' || i AS uheld_id, 'pa-{tag}' AS delivery_id, 1 AS delivery_seq, i AS line_no,
               DATE '2016-01-01' + INTERVAL (i % 3500) DAY AS uheldsdato, '510' AS kode_uheldssituation,
               lpad(CAST(101 + (i % 98) * 4 AS VARCHAR), 4, '0') AS kommunekode,
               450000.0 + (i % 400000) AS x, 6050000.0 + (i % 350000) AS y,
               0 AS antal_draebte, i % 2 AS antal_alv, 1 AS antal_let,
               CASE WHEN i % 2 = 1 THEN 'serious' ELSE 'slight' END AS severity {pol}""")
    con.execute(f"""INSERT INTO staging.police_person BY NAME
        SELECT 'U{tag}' || i AS uheld_id, p AS elementnr, 1 AS personnr, 'pp-{tag}' AS delivery_id,
               1 AS delivery_seq, i * 2 + p AS line_no, 'car' AS road_user,
               CASE WHEN p = 2 THEN 'A' ELSE 'L' END AS skadesgrad,
               CASE WHEN p = 2 THEN 'serious' ELSE 'slight' END AS severity, 40 AS age, 'M' AS sex,
               md5(CAST(i AS VARCHAR)) || md5(CAST(i AS VARCHAR)) AS cpr_pseudonym
        {pol}, range(1, 3) p(p) WHERE p = 1 OR i % 2 = 1""")
    if n_grid:  # the grid's gated columns only (its other columns are the hotspot stage's)
        con.execute("DROP TABLE IF EXISTS marts.hotspot_grid")
        con.execute("CREATE TABLE marts.hotspot_grid (cell_id VARCHAR, kommunekode VARCHAR, period_start DATE, "
                    "period_end DATE, n_killed INTEGER, n_serious INTEGER, n_slight INTEGER, score DOUBLE, "
                    "rank_in_kommune INTEGER)")
        con.execute(f"""INSERT INTO marts.hotspot_grid BY NAME
            SELECT '100m_' || (60000 + i % 4000) || '_' || (7000 + i // 4000) AS cell_id,
                   lpad(CAST(101 + (i % 98) * 4 AS VARCHAR), 4, '0') AS kommunekode,
                   DATE '2021-01-01' AS period_start, DATE '2025-12-31' AS period_end,
                   0 AS n_killed, i % 3 AS n_serious, 1 + i % 5 AS n_slight, 1.0 + i % 7 AS score,
                   1 + i // 98 AS rank_in_kommune
            FROM range({n_grid}) t(i)""")


def national(workdir: Path, n_er: int, n_police: int, n_grid: int, n_new: int) -> dict:
    """The four gates on a national-size warehouse: before, first night, an ordinary night."""
    import resource

    from skadestue.config import Settings
    from skadestue.quality import gx_runtime, validate_stage

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    settings = Settings(warehouse=workdir / "national.duckdb", publish_dir=workdir / "publish",
                        quality_dir=workdir / "quality")
    con = db.connect(settings.warehouse, settings=settings)
    t0 = time.perf_counter()
    fill_national(con, n_er, n_police, n_grid)
    built = time.perf_counter() - t0
    gx_runtime.gx_context()                      # the GX import is not the gates' work here
    stages = ("raw_er", "raw_police", "geocoded", "linked", "hotspots")

    def gates(run_id: str, incremental: bool) -> dict:
        out: dict = {}
        for stage in stages:
            t, c = time.perf_counter(), cpu()
            res = validate_stage(con, stage, run_id, settings, docs_dir=None, incremental=incremental)
            out[stage] = {"wall_s": round(time.perf_counter() - t, 2), "cpu_s": round(cpu() - c, 2),
                          "critical_failures": res.critical_failures}
        out["total_wall_s"] = round(sum(v["wall_s"] for v in out.values()), 2)
        out["total_cpu_s"] = round(sum(v["cpu_s"] for v in out.values() if isinstance(v, dict)), 2)
        return out

    result = {"rows": {"staging.er_contact": n_er, "core.er_contact": n_er, "core.casualty": n_er,
                       "staging.police_accident": n_police, "marts.hotspot_grid": n_grid,
                       "new_er_rows": n_new, "new_police_accidents": 20},
              "build_s": round(built, 1)}
    result["before_whole_tables"] = gates("before", incremental=False)
    result["first_night"] = gates("first", incremental=True)
    fill_national(con, n_new, 20, 0, start=10_000_000, tag="n")
    result["before_small_night"] = gates("before-night", incremental=False)
    result["small_night"] = gates("night", incremental=True)
    result["unchanged_night"] = gates("quiet", incremental=True)
    result["load_average_1min"] = round(os.getloadavg()[0], 1)
    con.close()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-prewarm", action="store_true", help="import GX in the foreground at the first gate")
    ap.add_argument("--keep", type=Path, help="keep the demo/warehouse here instead of a temp dir")
    ap.add_argument("--national", action="store_true", help="the gates on a national-size warehouse (issue 9)")
    ap.add_argument("--er-rows", type=int, default=560_000)
    args = ap.parse_args()
    if args.national:
        with tempfile.TemporaryDirectory() as tmp:
            res = national(Path(tmp), args.er_rows, 40_000, 200_000, 150)
        for k in ("before_whole_tables", "first_night", "before_small_night", "small_night", "unchanged_night"):
            per = " ".join(f"{s}={v['cpu_s']}" for s, v in res[k].items() if isinstance(v, dict))
            print(f"{k:<22} wall {res[k]['total_wall_s']:>7.2f}s  cpu {res[k]['total_cpu_s']:>7.2f}s  ({per})")
        out = REPO / "bench" / "results" / "bench_validation.json"
        previous = json.loads(out.read_text()) if out.exists() else {}
        out.write_text(json.dumps({**previous, "national": res}, indent=2, default=str))
        print(json.dumps(res, indent=2, default=str))
        return
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
