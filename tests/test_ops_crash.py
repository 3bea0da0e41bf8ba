"""Crash safety and one-run-at-a-time, with real processes (issue 9).

* Kill-and-rerun: the nightly run (without Prefect, tests/ops_crash_driver.py) is SIGKILLed at
  named points - mid-transaction in ingest, geocode, link and hotspots, between deliveries, and
  between the two renames of the publication swap - each rerun continuing on the same
  warehouse; the end state (raw, staging, core, marts, ingest quarantine, published layers)
  must equal an uninterrupted run's, with no duplicate and no lost row.
* Concurrency: a second run while one holds the lock exits with a message naming the holder,
  a third waits and then runs; nothing is loaded twice.
* Readers (the published DuckDB file and GeoPackage held open) never block a run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from skadestue import db, ops

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "tests" / "ops_crash_driver.py"
#: Columns that legitimately differ between runs (when, which run, load order numbers).
RUN_COLUMNS = {"run_id", "built_at", "delivery_seq", "loaded_at", "noted_at", "quarantined_at", "created_at"}


@pytest.fixture(scope="module")
def template(tmp_path_factory, demo_setup):
    """Demo deliveries and a warehouse holding only their gazetteer (copied for each night)."""
    out = tmp_path_factory.mktemp("ops_crash")
    paths, settings, _ = demo_setup(out, scale=0.1, years=(2023, 2024), seed=3)
    shutil.copy(settings.warehouse, out / "template.duckdb")
    settings.warehouse.unlink()
    return out


def _night(template: Path, name: str) -> dict:
    base = template / name
    base.mkdir()
    shutil.copy(template / "template.duckdb", base / "warehouse.duckdb")
    return {"inbox": str(template / "inbox"), "warehouse": str(base / "warehouse.duckdb"),
            "publish_dir": str(base / "publish"), "quality_dir": str(base / "quality")}


def _config(night: dict, lock_wait: float = 900) -> str:
    """Settings of the driven runs; the maps (tested in test_maps/test_flow) are left out to keep
    the many runs of this module short."""
    path = Path(night["warehouse"]).parent / f"skadestue_{lock_wait:g}.toml"
    path.write_text(f"[ops]\nlock_wait_seconds = {lock_wait}\n\n[publish]\nmaps = false\n")
    return str(path)


def _args(night: dict, crash: str | None = None, config: str | None = None, run_id: str | None = None) -> list:
    args = [sys.executable, str(DRIVER), night["inbox"], night["warehouse"], night["publish_dir"],
            night["quality_dir"]]
    config = config or _config(night)
    for opt, value in (("--crash", crash), ("--config", config), ("--run-id", run_id)):
        if value:
            args += [opt, value]
    return args


def _drive(night: dict, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != ops.CRASH_ENV}
    return subprocess.run(_args(night, **kw), capture_output=True, text=True, timeout=1200, env=env, cwd=REPO)


def _tables(con, schemas: tuple[str, ...]) -> list[str]:
    return [f"{s}.{t}" for s, t in con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN "
        f"({', '.join(repr(s) for s in schemas)}) AND table_type = 'BASE TABLE' ORDER BY 1, 2").fetchall()]


def _select(con, table: str) -> str:
    """SELECT of a table without run-specific columns, geometry as WKT, in a total order."""
    schema, name = table.split(".")
    cols = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position", [schema, name]).fetchall()
    select = [f'ST_AsText("{c}") AS "{c}"' if t.startswith("GEOMETRY") else f'"{c}"'
              for c, t in cols if c not in RUN_COLUMNS]
    return f"SELECT {', '.join(select)} FROM {table}"


def snapshot(night: dict) -> dict[str, pd.DataFrame]:
    """Everything a rerun must reproduce: raw, staging, core, marts, the ingest's quarantine and
    accounting, and the published layers (GeoParquet of both tiers)."""
    con = db.connect(night["warehouse"], read_only=True)
    try:
        snap = {}
        for table in _tables(con, ("raw", "staging", "core", "marts")):
            snap[table] = con.execute(f"{_select(con, table)} ORDER BY ALL").df()
        snap["quality.quarantine[ingest]"] = con.execute(
            f"{_select(con, 'quality.quarantine')} WHERE stage = 'ingest' ORDER BY ALL").df()
        snap["ops.delivery"] = con.execute(
            "SELECT delivery_id, source, file_name, content_hash, status, rows_read, rows_loaded, "
            "rows_quarantined FROM ops.delivery ORDER BY delivery_id").df()
    finally:
        con.close()
    publish = Path(night["publish_dir"])
    manifest = json.loads((publish / "manifest.json").read_text())
    snap["published files"] = pd.DataFrame({"file": sorted(manifest["files"])})
    for path in sorted(publish.rglob("*.parquet")):
        snap[f"published {path.relative_to(publish)}"] = pd.read_parquet(path)
    return snap


def assert_same(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for name, frame in want.items():
        pd.testing.assert_frame_equal(got[name], frame, obj=name, check_dtype=False)


@pytest.fixture(scope="module")
def baseline(template):
    """One uninterrupted run."""
    night = _night(template, "baseline")
    done = _drive(night)
    assert done.returncode == 0, done.stderr[-3000:]
    return snapshot(night)


def _runs(night: dict) -> list[tuple]:
    con = duckdb.connect(night["warehouse"], read_only=True)
    try:
        return con.execute("SELECT run_id, status, failed_stage FROM ops.run ORDER BY started_at").fetchall()
    finally:
        con.close()


def test_killed_at_every_point_then_rerun_gives_the_uninterrupted_result(template, request):
    night = _night(template, "chain")
    snapshots = {}
    publish = Path(night["publish_dir"])
    kills = [
        ("ingest/2-uncommitted", "ingest"),  # 2nd delivery written, not committed
        ("ingest/1", "ingest"),              # the rerun dies after its first delivery committed
        ("geocode-uncommitted", "geocode"),
        ("link-uncommitted", "link"),
        ("hotspots-uncommitted", "hotspots"),
    ]
    for i, (point, _) in enumerate(kills):
        killed = _drive(night, crash=point, run_id=f"kill{i}")
        assert killed.returncode == -signal.SIGKILL, f"{point}: {killed.returncode}\n{killed.stderr[-3000:]}"
        assert not publish.exists()
    # After the first kill mid-transaction nothing of delivery 2 is there; after the second, the
    # rerun's first delivery is. Count loaded deliveries now: ingest completed in kill 2's rerun.
    done = _drive(night, run_id="full1")
    assert done.returncode == 0, done.stderr[-3000:]
    snapshots["after the killed runs"] = snapshot(night)

    # Readers hold the published files open while the next run publishes: they never block it.
    reader = duckdb.connect(str(publish / "skadestue.duckdb"), read_only=True)
    before = reader.execute("SELECT count(*) FROM casualty_point").fetchone()[0]
    gpkg = sqlite3.connect(publish / "skadestue.gpkg")
    gpkg.execute("BEGIN")
    assert gpkg.execute("SELECT count(*) FROM casualty_point").fetchone()[0] == before

    killed = _drive(night, crash="publish-swap", run_id="kill5")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    # Killed between "old layers away" and "new layers in": the next start puts yesterday's back.
    assert not publish.exists()
    assert list(publish.parent.glob(".publish-old-*"))
    actions = ops.clean_publish_leftovers(publish)
    assert any(a.startswith("restored") for a in actions)
    assert not list(publish.parent.glob(".publish-*"))
    snapshots["publication restored"] = snapshot(night)
    # The readers still read their (old, complete) files.
    assert reader.execute("SELECT count(*) FROM casualty_point").fetchone()[0] == before
    assert gpkg.execute("SELECT count(*) FROM casualty_point").fetchone()[0] == before

    done = _drive(night, run_id="full2")
    assert done.returncode == 0, done.stderr[-3000:]
    reader.close()
    gpkg.close()
    snapshots["after the last run"] = snapshot(night)
    # The uninterrupted run, made now (lazily) so that it runs the same code as the chain.
    baseline = request.getfixturevalue("baseline")
    for when, snap in snapshots.items():
        try:
            assert_same(snap, baseline)
        except AssertionError as exc:
            raise AssertionError(f"{when}: {exc}") from None

    runs = _runs(night)
    assert [r[0] for r in runs] == ["kill0", "kill1", "kill2", "kill3", "kill4", "full1", "kill5", "full2"]
    assert [(r[1], r[2]) for r in runs] == [
        *[("interrupted", stage) for _, stage in kills], ("succeeded", None),
        ("interrupted", "publish"), ("succeeded", None),
    ]


def test_second_run_exits_third_waits_nothing_loaded_twice(template, baseline):
    night = _night(template, "concurrent")
    barrier = Path(night["warehouse"]).parent / "let-the-first-run-go"
    env = {k: v for k, v in os.environ.items() if k != ops.CRASH_ENV}
    first = subprocess.Popen([*_args(night, run_id="first"), "--wait-for", str(barrier)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    waiting = None
    try:
        deadline = time.monotonic() + 300
        while (holder := db.lock_holder(night["warehouse"])) is None:
            assert first.poll() is None, first.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.1)
        assert holder["pid"] == first.pid and holder["run_id"] == "first"

        waiting = subprocess.Popen(_args(night, config=_config(night, 900), run_id="third"),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
        refused = _drive(night, config=_config(night, 0.5), run_id="second")
        assert refused.returncode == 3, refused.stderr[-3000:]
        assert f"pid {first.pid}" in refused.stderr and "nightly run first" in refused.stderr
        assert "Nothing was changed" in refused.stderr
        assert waiting.poll() is None  # still waiting for the first
        assert db.lock_holder(night["warehouse"])["pid"] == first.pid
    finally:
        barrier.touch()
        out, err = first.communicate(timeout=1200)
    assert first.returncode == 0, err[-3000:]
    out, err = waiting.communicate(timeout=1200)
    assert waiting.returncode == 0, err[-3000:]
    assert "run third: 0 rows loaded" in out
    assert db.lock_holder(night["warehouse"]) is None

    # The refused run left no trace; the waiting one found every file loaded.
    assert [r[:2] for r in _runs(night)] == [("first", "succeeded"), ("third", "succeeded")]
    assert_same(snapshot(night), baseline)


def test_baseline_is_a_real_night(baseline):
    assert len(baseline["core.er_contact"]) > 300
    assert len(baseline["core.casualty"]) > 300
    deliveries = baseline["ops.delivery"]
    assert (deliveries["rows_read"] == deliveries["rows_loaded"] + deliveries["rows_quarantined"]).all()
    assert deliveries["content_hash"].is_unique
