"""Benchmark of the hotspot layers at national scale, and of grid + Gi* done the plain way.

1. National: a synthetic Denmark-sized road network (towns with street grids, rural roads
   between them, 98 kommuner) and 1,000,000 casualties over ten years (2015-2024), written
   straight into a warehouse file; then ``build_hotspots`` (every layer: 100 m / 1 km grid
   with Gi* and FDR, junctions, 100 / 500 m road windows, observed vs expected, plan join)
   runs in a fresh process: wall time, CPU time and peak RSS of that process, and the wall
   and CPU seconds of each stage of the build (``HotspotReport.timings``).
2. Plain way, smaller: the same kind of casualties in one region; grid counts and Gi* the
   plain way (a geopandas grid of every 100 m cell in the extent, ``sjoin`` of the points,
   ``esda.G_Local`` with distance-band weights and permutations on the full frame) beside
   ours (DuckDB grid assignment + the vectorised Gi*) on the same points; the ratio.

3. ``--incremental``: on the built national warehouse, in a fresh process, three more
   builds as a night would run them (issue 9): nothing changed; casualties added after the
   last closed year (no period rebuilt, only their casualty_point year); late casualties
   for a closed year (that year and the window rebuilt, the other years left as they were).

    .venv/bin/python bench/bench_hotspots.py [--casualties 1000000] [--plain-casualties 20000] [--incremental]

Results: bench/results/bench_hotspots.json. Synthetic data only (no people).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXTENT = (440_000.0, 6_050_000.0, 900_000.0, 6_400_000.0)   # roughly Denmark in EPSG:25832
SPACING = 150.0
SEVERITY = (["killed", "serious", "slight", "unknown"], [0.004, 0.17, 0.78, 0.046])
ROAD_USERS = (["cyclist", "car", "pedestrian", "moped", "motorcycle", "e_bike", "van", "other"],
              [0.38, 0.30, 0.06, 0.08, 0.04, 0.06, 0.03, 0.05])


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "n/a"


def _usage() -> dict:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": r.ru_utime + r.ru_stime, "peak_rss_mb": r.ru_maxrss / 1024}


# --------------------------------------------------------------------------------------------
# Synthetic national network and casualties
# --------------------------------------------------------------------------------------------

def make_network(rng: np.random.Generator, n_towns: int, extent=EXTENT) -> dict[str, pd.DataFrame]:
    """Towns with street grids (the middle streets Lokalvej-Primær), rural through roads to
    the nearest other town, 98 box kommuner."""
    x0, y0, x1, y1 = extent
    kx, ky = 14, 7
    kw, kh = (x1 - x0) / kx, (y1 - y0) / ky
    kom = pd.DataFrame([(f"{100 + i * ky + j:04d}", x0 + i * kw, y0 + j * kh) for i in range(kx) for j in range(ky)],
                       columns=["kommunekode", "x0", "y0"])
    cx = rng.uniform(x0 + 3000, x1 - 3000, n_towns)
    cy = rng.uniform(y0 + 3000, y1 - 3000, n_towns)
    n = np.clip(rng.lognormal(2.1, 0.45, n_towns).astype(int), 4, 30)
    code = np.array([f"{100 + int((a - x0) // kw) * ky + int((b - y0) // kh):04d}" for a, b in zip(cx, cy)])
    juncs, segs, streets = [], [], []
    vk_counter: dict[str, int] = {}
    for t in range(n_towns):
        k = n[t]
        u = (np.arange(k) - (k - 1) / 2) * SPACING
        gx, gy = np.meshgrid(cx[t] + u, cy[t] + u, indexing="ij")      # node (i, j)
        names_v = [f"T{t}V{i}" for i in range(k)]
        names_h = [f"T{t}H{j}" for j in range(k)]
        kode = code[t]
        base = vk_counter.get(kode, 100)
        vk_counter[kode] = base + 2 * k
        vk_v = [f"{base + i:04d}" for i in range(k)]
        vk_h = [f"{base + k + j:04d}" for j in range(k)]
        ii, jj = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
        juncs.append(pd.DataFrame({
            "junction_id": [f"J{kode}_{int(a)}_{int(b)}" for a, b in zip(gx.ravel(), gy.ravel())],
            "kommunekode": kode, "x": gx.ravel(), "y": gy.ravel(),
            "vejnavne": [[names_v[i], names_h[j]] for i, j in zip(ii.ravel(), jj.ravel())],
            "vejkoder": [[vk_v[i], vk_h[j]] for i, j in zip(ii.ravel(), jj.ravel())],
        }))
        for direction in ("v", "h"):
            for s in range(k):
                xs = gx[s, :] if direction == "v" else gx[:, s]
                ys = gy[s, :] if direction == "v" else gy[:, s]
                name = names_v[s] if direction == "v" else names_h[s]
                vejkode = vk_v[s] if direction == "v" else vk_h[s]
                klasse = "Lokalvej-Primær" if s == k // 2 else "Lokalvej-Tertiær"
                coords = ", ".join(f"{a:.1f} {b:.1f}" for a, b in zip(xs, ys))
                streets.append((kode, vejkode, name, f"LINESTRING ({coords})", SPACING * (k - 1)))
                segs.append(pd.DataFrame({
                    "kommunekode": kode, "vejkode": vejkode, "vejnavn": name, "vejklasse": klasse,
                    "x0": xs[:-1], "y0": ys[:-1], "x1": xs[1:], "y1": ys[1:],
                }))
    # rural roads: from each town's corner to the nearest other town's corner
    from scipy.spatial import cKDTree

    _, nn = cKDTree(np.column_stack([cx, cy])).query(np.column_stack([cx, cy]), k=2)
    for t in range(n_towns):
        o = nn[t, 1]
        half_t, half_o = (n[t] - 1) / 2 * SPACING, (n[o] - 1) / 2 * SPACING
        a = np.array([cx[t] + half_t, cy[t] + half_t])
        b = np.array([cx[o] - half_o, cy[o] - half_o])
        length = float(np.hypot(*(b - a)))
        steps = max(1, int(length // 500))
        pts = a + np.outer(np.linspace(0, 1, steps + 1), b - a)
        kode = code[t]
        vejkode = f"{9000 + (vk_counter.get(kode, 0) % 900):04d}"
        vk_counter[kode] = vk_counter.get(kode, 100) + 1
        name = f"Landevej {t}-{o}"
        coords = ", ".join(f"{p[0]:.1f} {p[1]:.1f}" for p in pts)
        streets.append((kode, vejkode, name, f"LINESTRING ({coords})", length))
        segs.append(pd.DataFrame({
            "kommunekode": kode, "vejkode": vejkode, "vejnavn": name, "vejklasse": "Trafikvej-Gennemfart",
            "x0": pts[:-1, 0], "y0": pts[:-1, 1], "x1": pts[1:, 0], "y1": pts[1:, 1],
        }))
    seg = pd.concat(segs, ignore_index=True)
    street = pd.DataFrame(streets, columns=["kommunekode", "vejkode", "vejnavn", "wkt", "length_m"])
    street = street.drop_duplicates(["kommunekode", "vejkode"])
    return {"kommune": kom.assign(w=kw, h=kh), "junction": pd.concat(juncs, ignore_index=True),
            "segment": seg, "street": street}


def make_casualties(rng: np.random.Generator, net: dict[str, pd.DataFrame], n: int,
                    years: tuple[int, int] = (2015, 2024)) -> pd.DataFrame:
    """``n`` casualties: 40 % at junctions (busy central ones more often), 45 % along streets
    (by length), 15 % anywhere in a town's square; ~1.15 casualties per accident."""
    j, s = net["junction"], net["segment"]
    kind = rng.choice(3, size=n, p=[0.40, 0.45, 0.15])
    x = np.empty(n)
    y = np.empty(n)
    kom = np.empty(n, dtype=object)
    m = kind == 0
    w = rng.gamma(1.5, 1.0, len(j))
    pick = rng.choice(len(j), size=int(m.sum()), p=w / w.sum())
    x[m] = j["x"].to_numpy()[pick] + rng.normal(0, 8, m.sum())
    y[m] = j["y"].to_numpy()[pick] + rng.normal(0, 8, m.sum())
    kom[m] = j["kommunekode"].to_numpy()[pick]
    for flag in (1, 2):
        m = kind == flag
        length = np.hypot(s["x1"] - s["x0"], s["y1"] - s["y0"]).to_numpy()
        pick = rng.choice(len(s), size=int(m.sum()), p=length / length.sum())
        t = rng.random(m.sum())
        off = rng.normal(0, 5 if flag == 1 else 60, m.sum())
        dx, dy = (s["x1"] - s["x0"]).to_numpy()[pick], (s["y1"] - s["y0"]).to_numpy()[pick]
        norm = np.hypot(dx, dy)
        x[m] = s["x0"].to_numpy()[pick] + t * dx - off * dy / norm
        y[m] = s["y0"].to_numpy()[pick] + t * dy + off * dx / norm
        kom[m] = s["kommunekode"].to_numpy()[pick]
    days = (dt.date(years[1], 12, 31) - dt.date(years[0], 1, 1)).days + 1
    date = pd.to_datetime(dt.date(years[0], 1, 1)) + pd.to_timedelta(rng.integers(0, days, n), unit="D")
    source = rng.choice(["er", "police", "both"], size=n, p=[0.72, 0.10, 0.18])
    accident = np.arange(n) - (rng.random(n) < 0.13)          # ~13 % share an accident with the previous
    accident[0] = 0
    return pd.DataFrame({
        "casualty_id": [f"C{i:08d}" for i in range(n)],
        "source": source,
        "uheld_id": np.where(source == "er", None, [f"U{a:08d}" for a in accident]),
        "injury_date": date.date, "injury_hour": rng.integers(0, 24, n), "kommunekode": kom, "x": x, "y": y,
        "geocode_quality": np.where(source == "er", "A", "police"),
        "geocode_uncertainty_m": np.where(source == "er", rng.choice([5.0, 15.0, 400.0], size=n, p=[0.8, 0.15, 0.05]),
                                          np.nan),
        "road_user": rng.choice(ROAD_USERS[0], size=n, p=ROAD_USERS[1]),
        "counterpart": "car", "severity": rng.choice(SEVERITY[0], size=n, p=SEVERITY[1]),
        "age_band": "25-44", "sex": rng.choice(["M", "K"], size=n),
        "link_probability": np.where(source == "both", 0.97, np.nan), "n_er_contacts": (source != "police").astype(int),
    })


def write_warehouse(path: Path, net: dict[str, pd.DataFrame], cas: pd.DataFrame) -> None:
    """The gazetteer tables and core.casualty the hotspot build reads."""
    from skadestue.db import connect

    con = connect(path)
    con.register("k", net["kommune"])
    con.execute("INSERT INTO gazetteer.municipality SELECT kommunekode, 'K' || kommunekode, "
                "ST_MakeEnvelope(x0, y0, x0 + w, y0 + h) FROM k")
    con.register("j", net["junction"])
    con.execute("INSERT INTO gazetteer.junction BY NAME SELECT junction_id, kommunekode, x, y, vejnavne, vejkoder, "
                "2 AS n_roads FROM j")
    con.register("s", net["segment"])
    con.execute("INSERT INTO gazetteer.road_segment BY NAME SELECT 'S' || row_number() OVER () AS segment_id, "
                "kommunekode, vejkode, vejnavn, vejklasse, ST_Distance(ST_Point(x0, y0), ST_Point(x1, y1)) AS length_m, "
                "ST_MakeLine(ST_Point(x0, y0), ST_Point(x1, y1)) AS geom FROM s")
    con.register("st", net["street"])
    con.execute("INSERT INTO gazetteer.street BY NAME SELECT kommunekode, vejkode, vejnavn, lower(vejnavn) AS navn_norm, "
                "length_m, ST_GeomFromText(wkt) AS geom, ST_X(ST_StartPoint(ST_GeomFromText(wkt))) AS x, "
                "ST_Y(ST_StartPoint(ST_GeomFromText(wkt))) AS y FROM st")
    con.register("c", cas)
    con.execute("INSERT INTO core.casualty BY NAME SELECT * FROM c")
    con.close()


def phase_build(path: str) -> None:
    """Child process: build_hotspots on the warehouse; prints its measurements as JSON."""
    from skadestue.config import Settings
    from skadestue.db import connect
    from skadestue.hotspots import build_hotspots

    settings = Settings()
    con = connect(path, settings=settings)
    con.execute("SET enable_progress_bar = false")
    start_cpu = _usage()["cpu_s"]
    t = time.perf_counter()
    report = build_hotspots(con, settings, as_of=dt.date(2025, 6, 1))
    wall = time.perf_counter() - t
    use = _usage()
    print(json.dumps({
        "wall_s": round(wall, 1), "cpu_s": round(use["cpu_s"] - start_cpu, 1), "peak_rss_mb": round(use["peak_rss_mb"]),
        "rows": report.rows, "gi_cells": report.gi_cells, "gi_hot_cells": report.gi_hot_cells,
        "n_in_window_placed": report.n_in_window_placed, "n_on_junction": report.n_on_junction,
        "n_on_road": report.n_on_road, "stages": report.timings, "threads": settings.duckdb_threads,
        "memory_limit": settings.duckdb_memory_limit,
    }))
    con.close()


def phase_incremental(path: str, n_new: int) -> None:
    """Child process: the nightly builds after a full one; prints their measurements as JSON."""
    from skadestue.config import Settings
    from skadestue.db import connect
    from skadestue.hotspots import build_hotspots

    settings = Settings()
    con = connect(path, settings=settings)
    con.execute("SET enable_progress_bar = false")

    def add(prefix: str, day: str) -> None:
        con.execute(
            "INSERT INTO core.casualty SELECT * REPLACE (? || casualty_id AS casualty_id, ?::DATE AS injury_date) "
            f"FROM core.casualty USING SAMPLE reservoir({int(n_new)} ROWS) REPEATABLE (7)", [prefix, day]
        )

    def build(name: str) -> dict:
        cpu = _usage()["cpu_s"]
        t = time.perf_counter()
        report = build_hotspots(con, settings, as_of=dt.date(2025, 6, 1))
        wall = time.perf_counter() - t
        return {"case": name, "wall_s": round(wall, 2), "cpu_s": round(_usage()["cpu_s"] - cpu, 2),
                "periods_rebuilt": report.periods_rebuilt, "periods_skipped": len(report.periods_skipped),
                "point_years_rebuilt": report.point_years_rebuilt, "plan_rebuilt": report.plan_rebuilt,
                "stages_cpu_s": {k: v["cpu_s"] for k, v in report.timings.items() if v["cpu_s"] >= 0.05}}

    out = [build("nothing changed")]
    add("N", "2025-03-01")
    out.append(build(f"{n_new} casualties after the last closed year"))
    add("L", "2023-06-01")
    out.append(build(f"{n_new} late casualties in closed year 2023"))
    out.append(build("nothing changed (again)"))
    print(json.dumps({"builds": out, "peak_rss_mb": round(_usage()["peak_rss_mb"]),
                      "casualties": con.execute("SELECT count(*) FROM core.casualty").fetchone()[0]}))
    con.close()


# --------------------------------------------------------------------------------------------
# Plain way vs ours: grid counts + Gi* on a smaller region
# --------------------------------------------------------------------------------------------

def plain_vs_ours(n: int, seed: int, permutations: int = 199, band_m: float = 300.0) -> dict:
    """Grid counts + Gi* on ``n`` casualties in one region, the plain way and ours."""
    import geopandas as gpd
    import shapely
    import warnings

    from esda.getisord import G_Local
    from libpysal.weights import DistanceBand

    from skadestue.db import connect
    from skadestue.hotspots.grid import getis_ord_gi_star

    rng = np.random.default_rng(seed)
    net = make_network(rng, 12, extent=(480_000.0, 6_100_000.0, 500_000.0, 6_120_000.0))
    cas = make_casualties(rng, net, n)
    pts = cas[["casualty_id", "x", "y"]].copy()

    # plain: every 100 m cell of the extent as a polygon, sjoin, G_Local on the full frame
    t0, c0 = time.perf_counter(), _usage()["cpu_s"]
    e0, n0 = np.floor(pts["x"].min() / 100) * 100, np.floor(pts["y"].min() / 100) * 100
    e1, n1 = np.ceil(pts["x"].max() / 100) * 100, np.ceil(pts["y"].max() / 100) * 100
    ex, ny = np.meshgrid(np.arange(e0, e1, 100), np.arange(n0, n1, 100))
    cells = gpd.GeoDataFrame({"e0": ex.ravel(), "n0": ny.ravel()},
                             geometry=shapely.box(ex.ravel(), ny.ravel(), ex.ravel() + 100, ny.ravel() + 100), crs=25832)
    points = gpd.GeoDataFrame(pts, geometry=gpd.points_from_xy(pts["x"], pts["y"]), crs=25832)
    joined = gpd.sjoin(points, cells, predicate="within")
    counts = joined.groupby("index_right").size()
    y = np.zeros(len(cells))
    y[counts.index.to_numpy()] = counts.to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = DistanceBand.from_array(np.column_stack([cells["e0"] + 50, cells["n0"] + 50]), threshold=band_m + 1e-6,
                                    binary=True, silence_warnings=True)
        g = G_Local(y, w, transform="B", star=True, permutations=permutations, seed=seed)
    plain_wall, plain_cpu = time.perf_counter() - t0, _usage()["cpu_s"] - c0
    plain = pd.DataFrame({"e0": cells["e0"].astype(int), "n0": cells["n0"].astype(int), "n": y, "z": g.Zs})
    plain = plain[plain["n"] > 0]

    # ours: DuckDB assignment of cells, counts, vectorised Gi* (occupied cells + band padding)
    con = connect(":memory:", migrate_schema=False)
    con.register("p", pts)
    t0, c0 = time.perf_counter(), _usage()["cpu_s"]
    cells_ours = con.execute(
        "SELECT '100m_' || (n0 // 100) || '_' || (e0 // 100) AS cell_id, e0, n0, count(*) AS value FROM ("
        "SELECT (floor(x / 100) * 100)::BIGINT AS e0, (floor(y / 100) * 100)::BIGINT AS n0 FROM p) "
        "GROUP BY ALL ORDER BY cell_id"
    ).df()
    gi = getis_ord_gi_star(cells_ours, 100, band_m, permutations, seed)
    ours_wall, ours_cpu = time.perf_counter() - t0, _usage()["cpu_s"] - c0
    con.close()
    merged = plain.merge(cells_ours.assign(z_ours=gi["gi_z"].to_numpy()), on=["e0", "n0"])
    assert len(merged) == len(plain) == len(cells_ours) and (merged["n"] == merged["value"]).all()
    return {
        "casualties": n, "cells_in_extent": len(cells), "occupied_cells": len(cells_ours),
        "permutations": permutations,
        "plain": {"wall_s": round(plain_wall, 2), "cpu_s": round(plain_cpu, 2),
                  "how": "geopandas grid of every 100 m cell in the extent + sjoin + esda.G_Local on the full frame"},
        "ours": {"wall_s": round(ours_wall, 2), "cpu_s": round(ours_cpu, 2),
                 "how": "DuckDB cell assignment + vectorised Gi* on occupied cells and the empty band around them"},
        "ratio_wall": round(plain_wall / max(ours_wall, 1e-9), 1),
        "ratio_cpu": round(plain_cpu / max(ours_cpu, 1e-9), 1),
        "counts_equal": True,
        "z_correlation": round(float(np.corrcoef(merged["z"], merged["z_ours"])[0, 1]), 4),
        "note": "z differs slightly: the plain way's study area is the whole extent (every empty cell), ours the "
                "occupied cells plus the empty cells within the band (test_hotspots checks ours equals esda on that set)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--casualties", type=int, default=1_000_000)
    parser.add_argument("--towns", type=int, default=1600)
    parser.add_argument("--plain-casualties", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "bench_hotspots.json")
    parser.add_argument("--keep-warehouse", type=Path,
                        help="also copy the generated warehouse here (to profile build_hotspots on it later)")
    parser.add_argument("--incremental", action="store_true",
                        help="also time the nightly (incremental) builds after the full one")
    parser.add_argument("--night-casualties", type=int, default=300,
                        help="casualties added per incremental case (default 300)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--warehouse", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "build":
        phase_build(args.warehouse)
        return
    if args.phase == "incremental":
        phase_incremental(args.warehouse, args.night_casualties)
        return
    result: dict = {"machine": f"{os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.1f} "
                               f"(uptime: {_uptime()})",
                    "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    with tempfile.TemporaryDirectory(prefix="bench_hotspots_") as tmp:
        wh = Path(tmp) / "national.duckdb"
        t = time.perf_counter()
        rng = np.random.default_rng(args.seed)
        net = make_network(rng, args.towns)
        cas = make_casualties(rng, net, args.casualties)
        write_warehouse(wh, net, cas)
        result["national_data"] = {
            "casualties": len(cas), "years": "2015-2024", "towns": args.towns,
            "junctions": len(net["junction"]), "road_segments": len(net["segment"]), "streets": len(net["street"]),
            "road_km": round(float(net["street"]["length_m"].sum()) / 1000), "kommuner": len(net["kommune"]),
            "generate_s": round(time.perf_counter() - t, 1),
        }
        print("national data:", result["national_data"], flush=True)
        del net, cas
        if args.keep_warehouse:
            import shutil

            shutil.copy(wh, args.keep_warehouse)
        out = subprocess.run([sys.executable, __file__, "--phase", "build", "--warehouse", str(wh)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"build_hotspots failed:\n{out.stderr[-4000:]}")
        result["national_build_hotspots"] = json.loads(out.stdout.strip().splitlines()[-1])
        result["national_build_hotspots"]["load_average_after"] = round(os.getloadavg()[0], 1)
        print("build_hotspots:", result["national_build_hotspots"], flush=True)
        if args.incremental:
            out = subprocess.run([sys.executable, __file__, "--phase", "incremental", "--warehouse", str(wh),
                                  "--night-casualties", str(args.night_casualties)], capture_output=True, text=True)
            if out.returncode != 0:
                result["national_incremental"] = {"error": out.stderr[-4000:]}
            else:
                result["national_incremental"] = json.loads(out.stdout.strip().splitlines()[-1])
                result["national_incremental"]["load_average_after"] = round(os.getloadavg()[0], 1)
            print("incremental:", result["national_incremental"], flush=True)
    result["grid_gi_plain_vs_ours"] = plain_vs_ours(args.plain_casualties, args.seed)
    print("plain vs ours:", result["grid_gi_plain_vs_ours"], flush=True)
    result["targets"] = {"wall_s": 60, "peak_rss_mb": 4096, "incremental_nothing_changed_s": 1}
    result["load_at_end"] = _uptime()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
