"""Benchmark ingestion throughput: ER rows per second from CSV to ``core``, and peak memory.

Generates a small demo, replicates its ER rows (with new kontakt_ids, so every row is a new
record, and new synthetic people on shifted days, so CPRs and arrival times are as distinct
as in a real export) into two big deliveries in the demo's dialects (half UTF-8 ``;``, half
Windows-1252 ``,`` with quoted fields), or with ``--single-file`` one UTF-8 delivery, then
times ``ingest_inbox`` + ``build_core`` on a warehouse in memory (or with
``--warehouse-file`` on disk) in a fresh process. Peak RSS is that process's maximum
resident set, CPU seconds are its user + system time (DuckDB's threads included): on a
shared machine they say more than the wall time.

Then one ordinary night into that warehouse (issue 9): ``--night-rows`` rows (default 150) in
a new delivery, of which 20 re-send records of the big delivery (corrections), ingested and
core brought up to date incrementally (``build_core(..., incremental=True)``); figures
``night_*``. Peak memory is also given per step (``*_peak_rss_mb``: the high-water mark reset
at the step's start).

    .venv/bin/python bench/bench_ingest.py --rows 1000000 --repeat 5
    .venv/bin/python bench/bench_ingest.py --rows 1000000 --single-file --out bench/results/bench_ingest_single_file.json
    .venv/bin/python bench/bench_ingest.py --rows 1000000 --warehouse-file --out bench/results/bench_ingest_file.json

The in-memory warehouse measures the ingest's own work; a warehouse file adds what DuckDB
spends compressing and writing the raw, staging and core rows to disk, as in production.

Files from 1 MB up go through the DuckDB path, smaller ones (the night's) through pandas
(``skadestue.ingest.delivery.SQL_MIN_BYTES``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shutil
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

from skadestue.config import Settings  # noqa: E402
from skadestue.db import connect  # noqa: E402
from skadestue.demo import generate_demo  # noqa: E402
from skadestue.ingest import build_core, ingest_inbox  # noqa: E402
from skadestue.ingest.er import ER_COLUMNS  # noqa: E402


def peak_rss_mb() -> float:
    """This process's peak resident set in MB: VmHWM (reset by exec, so a child measured
    alone), else ru_maxrss (which Linux carries over from the parent at fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> None:
    """Reset this process's resident-set high-water mark (VmHWM), where Linux allows it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def cpu_s() -> float:
    """User + system CPU seconds of this process (all threads, DuckDB's included)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def demo_er_rows(workdir: Path) -> pd.DataFrame:
    """The demo's ER rows under the canonical column names (text), from every ER delivery."""
    paths = generate_demo(workdir / "demo", scale=0.5, years=(2022, 2023), seed=3)
    frames = []
    for path in sorted((paths.inbox / "skadestue").glob("*.csv")):
        data = path.read_bytes()
        enc = "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            text = data.decode("cp1252")
        first = text.splitlines()[0]
        sep = ";" if first.count(";") > first.count(",") else ","
        df = pd.read_csv(
            pd.io.common.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
            on_bad_lines="skip", engine="python",
        )
        df.columns = [c.strip().lower() for c in df.columns]
        if "ankomsttidspunkt" in df.columns:
            df = df.rename(columns={"ankomsttidspunkt": "ankomst"})
        frames.append(df.reindex(columns=list(ER_COLUMNS), fill_value=""))
    return pd.concat(frames, ignore_index=True)


def _shift_days(text: pd.Series, days: np.ndarray) -> pd.Series:
    """Dates in the demo's two main formats moved by ``days`` (other texts, the deliberately
    broken ones among them, unchanged)."""
    out = text.copy()
    for pattern, fmt in ((r"^\d{2}-\d{2}-\d{4} \d{2}:\d{2}$", "%d-%m-%Y %H:%M"),
                         (r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$", "%Y-%m-%d %H:%M:%S")):
        hit = text.str.match(pattern, na=False).to_numpy()
        stamps = pd.to_datetime(text[hit], format=fmt, errors="coerce")
        moved = (stamps + pd.to_timedelta(days[hit], unit="D")).dt.strftime(fmt)
        out[hit] = moved.where(stamps.notna(), text[hit])
    return out


def _other_people(cpr: pd.Series, rng: np.random.Generator) -> pd.Series:
    """Each well-formed CPR turned into another synthetic person: a new day of birth (1-28)
    and serial digits, keeping the century digit and the sex digit (so the facts stay valid)."""
    m = cpr.str.extract(r"^(\d{2})(\d{4})(-?)(\d)(\d{2})(\d)$")
    ok = m[0].notna().to_numpy()
    n = int(ok.sum())
    day = pd.Series(rng.integers(1, 29, n)).astype(str).str.zfill(2).to_numpy()
    serial = pd.Series(rng.integers(0, 100, n)).astype(str).str.zfill(2).to_numpy()
    out = cpr.copy()
    out[ok] = day + m.loc[ok, 1] + m.loc[ok, 2] + m.loc[ok, 3] + serial + m.loc[ok, 5]
    return out


def write_big_delivery(rows: pd.DataFrame, n: int, inbox: Path, night: Path | None = None,
                       night_rows: int = 150, single_file: bool = False) -> list[Path]:
    """n rows replicated from ``rows`` with unique kontakt_ids, in two files/dialects; and the
    next night's delivery under ``night`` (new contacts plus 20 corrections of big rows).

    The copies are other people on other days: every replica's dates move by a day more and
    its CPR numbers become new synthetic persons, so CPRs and arrival times are nearly all
    distinct, as in real exports (nothing in the ingest gets cheaper by repetition)."""
    idx = np.resize(np.arange(len(rows)), n)
    big = rows.iloc[idx].reset_index(drop=True)
    big["kontakt_id"] = "B-" + pd.Series(np.arange(n)).astype(str) + "-" + big["kontakt_id"]
    replica = np.arange(n) // len(rows)
    big["ankomst"] = _shift_days(big["ankomst"], replica)
    big["ulykke_tid"] = _shift_days(big["ulykke_tid"], replica)
    big["cpr"] = _other_people(big["cpr"], np.random.default_rng(7))
    half = n if single_file else n // 2
    out = inbox / "skadestue"
    out.mkdir(parents=True, exist_ok=True)
    a, b = out / "big_utf8.csv", out / "big_cp1252.csv"
    big.iloc[:half].to_csv(a, sep=";", index=False, encoding="utf-8", quoting=csv.QUOTE_MINIMAL)
    if not single_file:
        big.iloc[half:].to_csv(b, sep=",", index=False, encoding="cp1252", errors="replace",
                               quoting=csv.QUOTE_MINIMAL)
    if night is not None:
        nightly = big.iloc[np.linspace(0, n - 1, night_rows).astype(int)].reset_index(drop=True)
        fresh = np.arange(len(nightly)) >= 20  # the first 20 keep their key: corrections
        nightly.loc[fresh, "kontakt_id"] = "N-" + pd.Series(np.arange(len(nightly)))[fresh].astype(str)
        nightly["afslutning"] = "indlagt"
        (night / "skadestue").mkdir(parents=True, exist_ok=True)
        nightly.to_csv(night / "skadestue" / "night.csv", sep=";", index=False, encoding="utf-8")
    return [a] if single_file else [a, b]


def timed_ingest(inbox: Path, rows: int, night: Path | None = None, warehouse: str = ":memory:") -> dict:
    """Ingest the inbox and build core on a warehouse (in memory by default), then (with
    ``night``) one more night into it; the figures of this process."""
    rss_before = peak_rss_mb()
    settings = Settings(inbox=inbox, pseudonym_key="bench-key")
    con = connect(warehouse)
    load_before = os.getloadavg()[0]
    reset_peak()
    t0, c0 = time.perf_counter(), cpu_s()
    report = ingest_inbox(con, settings, "bench")
    t1, c1 = time.perf_counter(), cpu_s()
    ingest_peak = peak_rss_mb()
    reset_peak()
    core = build_core(con, settings)
    t2, c2 = time.perf_counter(), cpu_s()
    core_peak = peak_rss_mb()  # before the checks below, whose hash tables are the bench's own
    out = {
        "warehouse": "memory" if warehouse == ":memory:" else "file",
        "rows": rows,
        "rows_loaded": report.rows_loaded,
        "rows_quarantined": report.rows_quarantined,
        "distinct_cpr_pseudonyms": con.execute(
            "SELECT count(DISTINCT cpr_pseudonym) FROM raw.er_contact").fetchone()[0],
        "distinct_arrivals": con.execute("SELECT count(DISTINCT ankomst) FROM staging.er_contact").fetchone()[0],
        "core_er_contact": core["er_contact"],
        "ingest_s": round(t1 - t0, 2),
        "build_core_s": round(t2 - t1, 2),
        "total_s": round(t2 - t0, 2),
        "rows_per_s": round(rows / (t2 - t0)),
        "ingest_cpu_s": round(c1 - c0, 2),
        "build_core_cpu_s": round(c2 - c1, 2),
        "total_cpu_s": round(c2 - c0, 2),
        "rows_per_cpu_s": round(rows / (c2 - c0)),
        "load_avg_1min_before": round(load_before, 1),
        "load_avg_1min_after": round(os.getloadavg()[0], 1),
        "peak_rss_mb_before_ingest": round(rss_before),
        "ingest_peak_rss_mb": round(ingest_peak),
        "build_core_peak_rss_mb": round(core_peak),
        "peak_rss_mb": round(max(ingest_peak, core_peak)),
    }
    if night is not None:
        for f in (night / "skadestue").glob("*.csv"):
            shutil.copy(f, inbox / "skadestue" / f.name)
        reset_peak()
        t3, c3 = time.perf_counter(), cpu_s()
        nightly = ingest_inbox(con, settings, "bench-night")
        t4, c4 = time.perf_counter(), cpu_s()
        core2 = build_core(con, settings, incremental=True)
        t5, c5 = time.perf_counter(), cpu_s()
        out |= {
            "night_rows": nightly.rows_read,
            "night_files_skipped": len(nightly.skipped_duplicates),
            "night_core_full_build": core2["full_build"],
            "night_core_rebuilt_er_contact": core2["rebuilt_er_contact"],
            "night_core_er_contact": core2["er_contact"],
            "night_ingest_s": round(t4 - t3, 2),
            "night_build_core_s": round(t5 - t4, 2),
            "night_ingest_cpu_s": round(c4 - c3, 2),
            "night_build_core_cpu_s": round(c5 - c4, 2),
            "night_peak_rss_mb": round(peak_rss_mb()),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "bench_ingest.json"))
    ap.add_argument("--night-rows", type=int, default=150)
    ap.add_argument("--warehouse-file", action="store_true",
                    help="a warehouse file on disk, as in production (default: in memory)")
    ap.add_argument("--warehouse", help=argparse.SUPPRESS)  # internal: the child's warehouse
    ap.add_argument("--single-file", action="store_true",
                    help="all rows in one UTF-8 delivery (a full reload) instead of two dialects")
    ap.add_argument("--repeat", type=int, default=1,
                    help="timed runs on the same files, each in a fresh process; the median run "
                         "(by rows/s) is reported, with the best run's speed (the code's own when "
                         "the machine is quiet: as timeit's docs argue, slower runs measure other "
                         "load) and the highest peak memory of all, every run under 'runs' (this "
                         "machine's speed swings by a third within minutes)")
    ap.add_argument("--child", help=argparse.SUPPRESS)  # internal: ingest this inbox, print JSON
    ap.add_argument("--night", help=argparse.SUPPRESS)  # internal: then this night's files
    args = ap.parse_args()
    if args.child:
        print(json.dumps(timed_ingest(Path(args.child), args.rows, Path(args.night) if args.night else None,
                                      args.warehouse or ":memory:")))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sample = demo_er_rows(work)
        inbox = work / "inbox"
        files = write_big_delivery(sample, args.rows, inbox, work / "night", args.night_rows, args.single_file)
        size_mb = sum(f.stat().st_size for f in files) / 1e6
        del sample
        # The timed part runs in a fresh process, so its peak memory is the ingest's own
        # (imports + warehouse + ingest), not the data generation's; after the files just
        # written are on disk, as a night's deliveries are, not flushed during the timing.
        os.sync()
        runs = []
        for _ in range(max(1, args.repeat)):
            child = subprocess.run(
                [sys.executable, __file__, "--rows", str(args.rows), "--child", str(inbox),
                 "--night", str(work / "night"),
                 *(["--warehouse", str(work / "warehouse.duckdb")] if args.warehouse_file else [])],
                check=True, capture_output=True, text=True,
            )
            runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
            for f in (work / "night" / "skadestue").glob("*.csv"):  # the child added the night
                (inbox / "skadestue" / f.name).unlink(missing_ok=True)
            (work / "warehouse.duckdb").unlink(missing_ok=True)
        median = sorted(runs, key=lambda r: r["rows_per_s"])[len(runs) // 2]
        result = {"files": len(files), "csv_mb": round(size_mb, 1), **median}
        result |= {"cpus": os.cpu_count(), "python": platform.python_version()}
        if len(runs) > 1:
            best = max(runs, key=lambda r: r["rows_per_s"])
            result |= {"best_rows_per_s": best["rows_per_s"], "best_total_s": best["total_s"],
                       "max_peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}
            keys = ("total_s", "rows_per_s", "total_cpu_s", "peak_rss_mb", "load_avg_1min_before")
            result["runs"] = [{k: r[k] for k in keys} for r in runs]
    print(f"{'metric':<26} value")
    for k, v in result.items():
        print(f"{k:<26} {v}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
