"""Benchmark the linkage step at national scale: ~500,000 ER contacts and ~60,000 injured
police persons (ten years), synthesised straight into the core tables (the demo generator
plus ingest and geocoding would take far longer than the linkage itself).

Two linkers run on the same data, each in a fresh process (so peak RSS is the linker's own):
- ``splink``: skadestue.link.link_casualties (the nightly step);
- ``exact``: plain exact-rule linkage in SQL (bench/exact_rule_link.sql): same CPR within
  30 days = one casualty; ER<->police on same CPR and dates <= 1 day apart, else on the same
  date, sex, age, kommune and road user when that pair is unique both ways.
Both are scored with skadestue.link.evaluate against the synthetic truth.

    .venv/bin/python bench/bench_link.py --contacts 500000 --police 60000
    .venv/bin/python bench/bench_link.py --contacts 50000 --police 6000   # quick
    .venv/bin/python bench/bench_link.py --night      # incremental: national warehouse + one night

``--night`` (issue 9) holds back the last two accident days of the synthetic data (police
accidents of each day, ER contacts arriving from it on: at national scale about 150-250
contacts and 20 injured persons a night), links the rest (a full run that also trains and
stores the model), then delivers and links the two nights one by one, each in a fresh process
(wall, CPU, peak RSS), re-runs with nothing new, and relinks the second night's warehouse in
full with the stored model to check that both give the same links, casualties and dark figure.
Its results go to the "incremental" entry of bench/results/bench_link.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("SKADESTUE_PSEUDONYM_KEY", "bench-key")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from skadestue import db  # noqa: E402

HOSPITALS = np.array([f"H{i:02d}" for i in range(20)])
ROAD_USERS = np.array(["cyclist", "car", "pedestrian", "moped", "motorcycle", "e_bike", "van", "truck", "other"])
RU_P = np.array([0.36, 0.30, 0.07, 0.07, 0.04, 0.06, 0.03, 0.02, 0.05])
#: Chance the police register a casualty, by road user (domain.md §4: ~10-25 % of cyclists).
POLICE_P = dict(zip(ROAD_USERS, [0.05, 0.20, 0.20, 0.12, 0.25, 0.05, 0.20, 0.20, 0.05], strict=True))
ER_P = 0.87
DIAGNOSES = np.array([f"DS{i:03d}" for i in range(22)])
SEVERITIES = np.array(["slight", "serious", "killed"])


def synthesise(n_contacts: int, n_police: int, seed: int = 1) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Core tables (er_contact, police_accident, police_person) and the ER truth, vectorised."""
    rng = np.random.default_rng(seed)
    n_er_events = int(n_contacts / 1.11)
    n = int(n_er_events / ER_P)  # all casualties
    ru = rng.choice(ROAD_USERS, n, p=RU_P)
    police_p = pd.Series(ru).map(POLICE_P).to_numpy()
    police_p *= 0.82 * n_police / police_p.sum()  # co-victims registered with them add ~20 %
    police = rng.random(n) < police_p
    in_er = rng.random(n) < ER_P  # independent of police (within road user)
    # accidents: casualties of one accident share time and place (1-3 casualties)
    acc_size = rng.choice([1, 2, 3], size=n, p=[0.75, 0.18, 0.07])
    acc_id = np.repeat(np.arange(n), acc_size)[:n]
    n_acc = int(acc_id.max()) + 1
    kommuner = np.array([f"{k:04d}" for k in rng.choice(np.arange(101, 860), 98, replace=False)])
    centre = np.column_stack([rng.uniform(440_000, 890_000, 98), rng.uniform(6_050_000, 6_400_000, 98)])
    acc_k = rng.integers(0, 98, n_acc)
    acc_xy = centre[acc_k] + rng.normal(0, 6_000, (n_acc, 2))
    acc_ts = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 3652 * 1440, n_acc), unit="min")
    acc_police = np.zeros(n_acc, bool)
    np.logical_or.at(acc_police, acc_id, police)
    police = acc_police[acc_id] & (police | (rng.random(n) < 0.5))  # co-victims often registered too
    ts = acc_ts[acc_id]
    k = kommuner[acc_k[acc_id]]
    xy = acc_xy[acc_id]
    sex = rng.choice(np.array(["M", "K"]), n)
    age = rng.integers(2, 95, n)
    pid = np.arange(n)
    again = np.flatnonzero(rng.random(n) < 0.02)
    pid[again] = rng.integers(0, n, len(again))
    sex, age = sex[pid], np.where(pid != np.arange(n), np.clip(age[pid] + rng.integers(0, 5, n), 0, 99), age)
    cpr = np.array([f"ps{p:08d}" for p in pid], dtype=object)
    severity = rng.choice(SEVERITIES, n, p=[0.75, 0.245, 0.005])
    dx = rng.choice(DIAGNOSES, n)
    event = pd.DataFrame({"event_id": np.arange(n), "acc": acc_id, "ts": ts, "k": k, "x": xy[:, 0], "y": xy[:, 1],
                          "sex": sex, "age": age, "cpr": cpr, "ru": ru, "severity": severity, "dx": dx,
                          "police": police, "in_er": in_er})
    er = _er_contacts(event[event["in_er"]], rng)
    accidents, persons = _police(event, acc_police, rng)
    truth = er[["sygehus", "kontakt_id", "event_id"]].merge(
        persons[["event_id", "uheld_id", "elementnr", "personnr"]], on="event_id", how="left").rename(
        columns={"uheld_id": "police_uheld_id", "elementnr": "police_elementnr", "personnr": "police_personnr"})
    truth.attrs["n_casualties"] = n  # every casualty, seen or not: the dark figure's truth
    return {"er_contact": er.drop(columns=["event_id"]), "police_accident": accidents,
            "police_person": persons.drop(columns=["event_id"])}, truth


def _er_contacts(ev: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """First contacts, same-day transfers (3 %) and control visits (8 %), with ward noise."""
    n = len(ev)
    hosp = rng.integers(0, len(HOSPITALS), n)
    prim = ev.assign(kind="primary", h=hosp, ankomst=ev["ts"] + pd.to_timedelta(rng.integers(10, 120, n), unit="min"))
    tr = prim[rng.random(n) < 0.03].copy()
    tr["kind"], tr["h"] = "transfer", (tr["h"] + 1) % len(HOSPITALS)
    tr["ankomst"] += pd.to_timedelta(rng.integers(60, 240, len(tr)), unit="min")
    rv = prim[rng.random(n) < 0.08].copy()
    rv["kind"] = "return"
    rv["ankomst"] = rv["ankomst"].dt.normalize() + pd.to_timedelta(
        rng.integers(1, 15, len(rv)) * 1440 + rng.integers(480, 960, len(rv)), unit="min")
    c = pd.concat([prim, tr, rv], ignore_index=True)
    m = len(c)
    later = (c["kind"] != "primary").to_numpy()
    has_tid = np.where(later, rng.random(m) < 0.4, rng.random(m) < 0.65)
    placed = (rng.random(m) < 0.7) & ~(later & (rng.random(m) < 0.6))
    quality = rng.choice(np.array(["A", "B", "C"]), m, p=[0.6, 0.3, 0.1])
    err = np.select([quality == "A", quality == "B"], [10.0, 60.0], 300.0)
    no_cpr = rng.random(m) < 0.04
    ru_noise = rng.random(m) < 0.03
    out = pd.DataFrame({
        "sygehus": HOSPITALS[c["h"].to_numpy()],
        "kontakt_id": [f"K{i:08d}" for i in range(m)],
        "delivery_id": "bench",
        "ankomst": c["ankomst"].to_numpy(),
        "ulykke_tid": np.where(has_tid, c["ts"].to_numpy(), np.datetime64("NaT")),
        "cpr_pseudonym": np.where(no_cpr, None, c["cpr"].to_numpy()),
        "sex": np.where(no_cpr & (rng.random(m) < 0.05), None, c["sex"].to_numpy()),
        "age": np.where(no_cpr & (rng.random(m) < 0.05), np.nan, c["age"].to_numpy()),
        "road_user": np.where(ru_noise, rng.choice(ROAD_USERS, m), c["ru"].to_numpy()),
        "counterpart": "car",
        "ulykkessted": np.where(placed | (rng.random(m) < 0.3), "sted " + c["acc"].astype(str), None),
        "kommunekode": np.where(rng.random(m) < 0.8, c["k"].to_numpy(), None),
        "diagnose": c["dx"].to_numpy(),
        "severity": c["severity"].to_numpy(),
        "x": np.where(placed, c["x"].to_numpy() + rng.normal(0, 1, m) * err, np.nan),
        "y": np.where(placed, c["y"].to_numpy() + rng.normal(0, 1, m) * err, np.nan),
        "geocode_quality": np.where(placed, quality, "none"),
        "event_id": c["event_id"].to_numpy(),
    })
    out["injury_date"] = pd.to_datetime(out["ulykke_tid"].fillna(out["ankomst"])).dt.date
    out["age"] = out["age"].astype("Int64")
    return out


def _police(ev: pd.DataFrame, acc_police: np.ndarray, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Police accidents (their own X/Y for 90 %) and injured persons (typed age, 80 % CPR)."""
    p = ev[ev["police"]].copy()
    p["elementnr"] = p.groupby("acc").cumcount() + 1
    p["uheld_id"] = "U" + p["acc"].astype(str).str.zfill(8)
    n = len(p)
    acc = p.drop_duplicates("acc")
    has_xy = rng.random(len(acc)) < 0.9
    accidents = pd.DataFrame({
        "uheld_id": acc["uheld_id"].to_numpy(), "delivery_id": "bench",
        "uheldsdato": acc["ts"].dt.date.to_numpy(), "klokkeslaet": acc["ts"].dt.time.to_numpy(),
        "kommunekode": acc["k"].to_numpy(), "severity": "serious",
        "x": np.where(has_xy, acc["x"].to_numpy() + rng.normal(0, 20, len(acc)), np.nan),
        "y": np.where(has_xy, acc["y"].to_numpy() + rng.normal(0, 20, len(acc)), np.nan),
        "geocode_quality": np.where(has_xy, "police", "none"),
    })
    related = {"cyclist": "e_bike", "e_bike": "cyclist", "moped": "motorcycle", "car": "van", "van": "car"}
    swap = rng.random(n) < 0.05
    persons = pd.DataFrame({
        "uheld_id": p["uheld_id"].to_numpy(), "elementnr": p["elementnr"].to_numpy(), "personnr": 1,
        "delivery_id": "bench",
        "road_user": np.where(swap, p["ru"].map(related).fillna(p["ru"]).to_numpy(), p["ru"].to_numpy()),
        "counterpart": "car", "severity": p["severity"].to_numpy(),
        "age": np.where(rng.random(n) < 0.05, p["age"].to_numpy() + rng.choice([-1, 1], n), p["age"].to_numpy()),
        "sex": np.where(rng.random(n) < 0.01, None, p["sex"].to_numpy()),
        "cpr_pseudonym": np.where(rng.random(n) < 0.8, p["cpr"].to_numpy(), None),
        "event_id": p["event_id"].to_numpy(),
    })
    return accidents, persons


def write_warehouse(path: Path, tables: dict[str, pd.DataFrame], truth: pd.DataFrame, truth_dir: Path) -> None:
    """Load the synthetic core tables into a migrated warehouse file; truth as parquet."""
    con = db.connect(str(path))
    for name, frame in tables.items():
        con.register("src", frame)
        con.execute(f"INSERT INTO core.{name} BY NAME SELECT * FROM src")
        con.unregister("src")
    con.close()
    truth_dir.mkdir(parents=True, exist_ok=True)
    truth.to_parquet(truth_dir / "er_truth.parquet", index=False)
    (truth_dir / "total.json").write_text(json.dumps({"n_casualties": truth.attrs["n_casualties"]}))


def run_linker(method: str, warehouse: Path, truth_dir: Path) -> dict:
    """One linker on a copy of the warehouse, in this process; time, peak RSS and scores."""
    from skadestue.config import Settings
    from skadestue.link import link_casualties
    from skadestue.link.evaluate import evaluate_linkage

    con = db.connect(str(warehouse))
    con.execute("SET threads = 2")
    t0 = time.perf_counter()
    if method == "splink":
        link_casualties(con, Settings())
    else:
        con.execute((REPO / "bench" / "exact_rule_link.sql").read_text())
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    scores = evaluate_linkage(con, truth_dir).as_dict()
    dark = _dark_figure(con, truth_dir) if method == "splink" else {}
    con.close()
    return {"method": method, "seconds": round(seconds, 1), "peak_rss_mb": round(peak), **scores, **dark}


def _dark_figure(con, truth_dir: Path) -> dict:
    """Chapman (pooled, and stratified as marts.dark_figure publishes it) vs the true number
    of casualties; in this synthetic data ER capture is independent of police capture."""
    from skadestue.link.darkfigure import dark_figure_frame

    df = dark_figure_frame(con)
    total = df[df["stratum_level"] == "total"].iloc[0]
    strat = df[df["stratum_level"] == "total_stratified"].iloc[0]
    pooled_all = dark_figure_frame(con, sample="police_all")
    pooled_all = pooled_all[pooled_all["stratum_level"] == "total_stratified"].iloc[0]
    true_n = json.loads((truth_dir / "total.json").read_text())["n_casualties"]
    return {"dark_figure": {"true_total": true_n, "observed": int(total["n_observed"]),
                            "recapture_sample": str(strat["recapture_sample"]),
                            "pooled": round(float(total["estimate"])),
                            "pooled_ci": [round(float(total["ci_low"])), round(float(total["ci_high"]))],
                            "stratified": round(float(strat["estimate"])),
                            "stratified_ci": [round(float(strat["ci_low"])), round(float(strat["ci_high"]))],
                            "n_strata": int(strat["n_strata"]),
                            "stratified_all_police": round(float(pooled_all["estimate"])),
                            "stratified_all_police_ci": [round(float(pooled_all["ci_low"])),
                                                         round(float(pooled_all["ci_high"]))]}}


#: The nights: ER contacts arriving on or after the day, police accidents of or after it.
_NIGHT = {
    "er_contact": "ankomst >= DATE '{day}'",
    "police_person": "uheld_id IN (SELECT uheld_id FROM core.police_accident WHERE uheldsdato >= DATE '{day}')",
    "police_accident": "uheldsdato >= DATE '{day}'",
}


def hold_back_nights(warehouse: Path) -> list[dict[str, int]]:
    """Move the last two accident days' rows (and ER contacts arriving from then on) from core
    into main.night<i>_* tables; their counts per night."""
    con = db.connect(str(warehouse))
    last = con.execute("SELECT max(uheldsdato) FROM core.police_accident").fetchone()[0]
    counts = []
    for i, day in ((2, last), (1, last - dt.timedelta(days=1))):
        where = {t: w.format(day=day) for t, w in _NIGHT.items()}
        for table in where:
            con.execute(f"CREATE TABLE main.night{i}_{table} AS SELECT * FROM core.{table} WHERE {where[table]}")
        for table in where:
            con.execute(f"DELETE FROM core.{table} WHERE {where[table]}")
        counts.append({t: con.execute(f"SELECT count(*) FROM main.night{i}_{t}").fetchone()[0] for t in where})
    con.close()
    return counts[::-1]


def deliver_night(warehouse: Path, i: int) -> None:
    """Put held-back night ``i`` into core (as ingestion would, casualty_id NULL)."""
    con = db.connect(str(warehouse))
    for table in ("police_accident", "police_person", "er_contact"):
        con.execute(f"INSERT INTO core.{table} SELECT * FROM main.night{i}_{table}")
    con.close()


def run_night(mode: str, warehouse: Path) -> dict:
    """One linkage run in this (fresh) process: wall, CPU, peak RSS and what it redid."""
    from skadestue.config import Settings
    from skadestue.link import link_casualties

    con = db.connect(str(warehouse))
    con.execute("SET threads = 2")
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    report = link_casualties(con, Settings(), mode=mode)
    seconds = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    out = {"mode": report.mode, "seconds": round(seconds, 2),
           "cpu_seconds": round(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, 2),
           "peak_rss_mb": round(r1.ru_maxrss / 1024),
           **{k: getattr(report, k) for k in (
               "model_trained", "n_contacts_changed", "n_contacts_refolded", "n_er_events_rescored",
               "n_police_rescored", "n_pairs_scored", "n_casualties_rebuilt", "n_er_contacts", "n_er_events",
               "n_links", "by_source", "n_review_pairs", "dark_figure_estimate", "step_seconds")},
           "digest": {k: con.execute(v).fetchone()[0] for k, v in {
               "casualty": "SELECT sum(hash(c)) FROM (SELECT * FROM core.casualty) c",
               "members": "SELECT sum(hash(sygehus, kontakt_id, casualty_id)) FROM core.er_contact",
               "links": "SELECT sum(hash(er_key, police_key, match_probability)) FROM link.pair",
               "dark": "SELECT sum(hash(c)) FROM (SELECT * EXCLUDE (built_at) FROM marts.dark_figure) c",
           }.items()}}
    con.close()
    out["digest"] = {k: str(v) for k, v in out["digest"].items()}
    return out


def night_bench(args) -> None:
    """--night: a full link of all but the last day, then that day incrementally, then a relink."""
    def child(mode: str, wh: Path) -> dict:
        res = subprocess.run([sys.executable, __file__, "--run", "night", "--mode", mode, "--dir", str(wh)],
                             check=True, capture_output=True, text=True)
        return json.loads(res.stdout.strip().splitlines()[-1])

    with tempfile.TemporaryDirectory(prefix="bench_link_night_") as tmp:
        wh = Path(tmp) / "wh.duckdb"
        tables, truth = synthesise(args.contacts, args.police, args.seed)
        write_warehouse(wh, tables, truth, Path(tmp) / "truth")
        data = {"er_contacts": len(tables["er_contact"]), "police_persons": len(tables["police_person"])}
        del tables, truth
        night = hold_back_nights(wh)
        first = child("auto", wh)          # all but the last two days: full, trains the model
        deliver_night(wh, 1)
        night1 = child("auto", wh)         # first night after a full build (see README)
        deliver_night(wh, 2)
        (Path(tmp) / "relink.duckdb").write_bytes(wh.read_bytes())
        inc = child("auto", wh)            # an ordinary night
        again = child("auto", wh)          # nothing new
        relink = child("relink", Path(tmp) / "relink.duckdb")  # the same night, everything relinked
    same = {k: inc["digest"][k] == relink["digest"][k] for k in inc["digest"]}
    print(f"data: {data}; night: {night}")
    print(f"{'run':24} {'mode':12} {'wall s':>7} {'CPU s':>7} {'RSS MB':>7} {'events rescored':>16} {'links':>6}")
    for name, r in (("first (all but 2 days)", first), ("night 1 after full build", night1),
                    ("night 2 (ordinary)", inc), ("re-run (nothing new)", again),
                    ("same night, relink", relink)):
        print(f"{name:24} {r['mode']:12} {r['seconds']:7.2f} {r['cpu_seconds']:7.2f} {r['peak_rss_mb']:7d} "
              f"{r['n_er_events_rescored']:16d} {r['n_links']:6d}")
    print(f"incremental == relink: {same}")
    out = REPO / "bench" / "results" / "bench_link.json"
    result = json.loads(out.read_text()) if out.exists() else {}
    result["incremental"] = {
        "data": data, "night": night, "load_average_at_end": os.getloadavg(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "first": first, "night1_after_full_build": night1, "night_run": inc, "rerun": again, "relink": relink, "incremental_equals_relink": same}
    out.write_text(json.dumps(result, indent=2, default=str))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contacts", type=int, default=500_000)
    ap.add_argument("--police", type=int, default=60_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--night", action="store_true", help="measure one incremental night (see above)")
    ap.add_argument("--run", choices=["splink", "exact", "night"], help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="auto", help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run == "night":
        print(json.dumps(run_night(args.mode, args.dir), default=str))
        return
    if args.night:
        night_bench(args)
        return
    if args.run:  # child process: one linker
        wh = args.dir / f"{args.run}.duckdb"
        print(json.dumps(run_linker(args.run, wh, args.dir / "truth")))
        return
    with tempfile.TemporaryDirectory(prefix="bench_link_") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        tables, truth = synthesise(args.contacts, args.police, args.seed)
        write_warehouse(tmp / "splink.duckdb", tables, truth, tmp / "truth")
        data = {"er_contacts": len(tables["er_contact"]), "police_persons": len(tables["police_person"]),
                "police_accidents": len(tables["police_accident"]), "synth_seconds": round(time.perf_counter() - t0)}
        del tables, truth
        (tmp / "exact.duckdb").write_bytes((tmp / "splink.duckdb").read_bytes())
        rows = []
        for method in ("splink", "exact"):
            out = subprocess.run([sys.executable, __file__, "--run", method, "--dir", str(tmp)],
                                 check=True, capture_output=True, text=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"data: {data}")
    print(f"{'method':8} {'sec':>7} {'RSS MB':>7} | {'CPR both P/R/F1':>20} | {'no CPR P/R/F1':>20} | {'dedup P/R/F1':>20}")
    for r in rows:
        cells = [f"{r[k]['precision']:.3f}/{r[k]['recall']:.3f}/{r[k]['f1']:.3f}"
                 for k in ("links_cpr_both", "links_no_cpr", "dedup")]
        print(f"{r['method']:8} {r['seconds']:7.1f} {r['peak_rss_mb']:7d} | {cells[0]:>20} | {cells[1]:>20} | {cells[2]:>20}")
    if "dark_figure" in rows[0]:
        print(f"dark figure (splink links): {rows[0]['dark_figure']}")
    result = {"data": data, "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "results": rows}
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = out_dir / "bench_link.json"
    if previous.exists() and "incremental" in json.loads(previous.read_text()):
        result["incremental"] = json.loads(previous.read_text())["incremental"]
    previous.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
