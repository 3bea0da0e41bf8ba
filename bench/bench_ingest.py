"""Benchmark ingestion throughput: ER rows per second from CSV to ``core``, and peak memory.

Generates a small demo, replicates its ER rows (with new kontakt_ids, so every row is a new
record) into one big delivery in the demo's dialects (half UTF-8 ``;``, half Windows-1252
``,``), then times ``ingest_inbox`` + ``build_core`` on an in-memory warehouse. Peak RSS is
the process's maximum resident set (resource.getrusage).

    .venv/bin/python bench/bench_ingest.py --rows 1000000
"""

from __future__ import annotations

import argparse
import csv
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

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from skadestue.config import Settings  # noqa: E402
from skadestue.db import connect  # noqa: E402
from skadestue.demo import generate_demo  # noqa: E402
from skadestue.ingest import build_core, ingest_inbox  # noqa: E402
from skadestue.ingest.er import ER_COLUMNS  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


def write_big_delivery(rows: pd.DataFrame, n: int, inbox: Path) -> list[Path]:
    """n rows replicated from ``rows`` with unique kontakt_ids, in two files/dialects."""
    idx = np.resize(np.arange(len(rows)), n)
    big = rows.iloc[idx].reset_index(drop=True)
    big["kontakt_id"] = "B-" + pd.Series(np.arange(n)).astype(str) + "-" + big["kontakt_id"]
    half = n // 2
    out = inbox / "skadestue"
    out.mkdir(parents=True, exist_ok=True)
    a, b = out / "big_utf8.csv", out / "big_cp1252.csv"
    big.iloc[:half].to_csv(a, sep=";", index=False, encoding="utf-8", quoting=csv.QUOTE_MINIMAL)
    big.iloc[half:].to_csv(b, sep=",", index=False, encoding="cp1252", errors="replace",
                           quoting=csv.QUOTE_MINIMAL)
    return [a, b]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "bench_ingest.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sample = demo_er_rows(work)
        inbox = work / "inbox"
        files = write_big_delivery(sample, args.rows, inbox)
        size_mb = sum(f.stat().st_size for f in files) / 1e6
        del sample
        rss_before = peak_rss_mb()
        settings = Settings(inbox=inbox, pseudonym_key="bench-key")
        con = connect(":memory:")
        t0 = time.perf_counter()
        report = ingest_inbox(con, settings, "bench")
        t1 = time.perf_counter()
        core = build_core(con, settings)
        t2 = time.perf_counter()
        result = {
            "rows": args.rows,
            "csv_mb": round(size_mb, 1),
            "rows_loaded": report.rows_loaded,
            "rows_quarantined": report.rows_quarantined,
            "core_er_contact": core["er_contact"],
            "ingest_s": round(t1 - t0, 2),
            "build_core_s": round(t2 - t1, 2),
            "total_s": round(t2 - t0, 2),
            "rows_per_s": round(args.rows / (t2 - t0)),
            "peak_rss_mb_before": round(rss_before),
            "peak_rss_mb": round(peak_rss_mb()),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        }
    print(f"{'metric':<22} value")
    for k, v in result.items():
        print(f"{k:<22} {v}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
