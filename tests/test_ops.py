"""Run lock, recovery after a killed run, stage records and `skadestue status` (issue 9), fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import insert
from skadestue import db, ops
from skadestue.config import load_settings


def test_lock_names_the_holder_and_refuses_after_waiting(tmp_path):
    wh = tmp_path / "w.duckdb"
    with db.run_lock(wh, run_id="r1", what="nightly run") as holder:
        assert holder["pid"] == os.getpid()
        seen = db.lock_holder(wh)
        assert seen["run_id"] == "r1" and seen["pid"] == os.getpid()
        t0 = time.monotonic()
        with pytest.raises(db.RunLocked) as err:
            with db.run_lock(wh, wait_seconds=0.6, run_id="r2"):
                pass
        assert 0.5 < time.monotonic() - t0 < 5
        msg = str(err.value)
        assert f"pid {os.getpid()}" in msg and "nightly run r1" in msg and "ops.lock_wait_seconds" in msg
    assert db.lock_holder(wh) is None
    assert db.lock_path(wh).read_text() == ""  # released: no stale holder left in the file


def test_second_lock_waits_for_the_first(tmp_path):
    wh = tmp_path / "w.duckdb"
    order = []
    first_has_it = threading.Event()

    def first():
        with db.run_lock(wh, run_id="first"):
            first_has_it.set()
            time.sleep(0.8)
            order.append("first done")

    t = threading.Thread(target=first)
    t.start()
    first_has_it.wait(5)
    with db.run_lock(wh, wait_seconds=30, run_id="second"):
        order.append("second in")
    t.join()
    assert order == ["first done", "second in"]


def test_lock_of_a_killed_process_does_not_block(tmp_path):
    """The kernel releases an flock when its holder dies, whatever the lock file still says."""
    wh = tmp_path / "w.duckdb"
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        from skadestue import db
        with db.run_lock({str(wh)!r}, run_id="doomed"):
            print("locked", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9 and "locked" in proc.stdout
    assert json.loads(db.lock_path(wh).read_text())["run_id"] == "doomed"  # stale content
    assert db.lock_holder(wh) is None
    with db.run_lock(wh, wait_seconds=0, run_id="next") as holder:
        assert holder["run_id"] == "next"


def test_recover_marks_the_killed_run_interrupted_at_its_stage(fresh_warehouse, tmp_path):
    con = fresh_warehouse
    ops.start_run(con, "dead", tmp_path)
    for stage in ("ingest", "validate_raw", "geocode"):
        with ops.stage(con, "dead", stage) as rec:
            rec.rows = 7
    ops.start_run(con, "now", tmp_path)
    assert ops.recover(con, tmp_path / "publish", current_run="now") == ["dead"]
    status, stage, msg = con.execute(
        "SELECT status, failed_stage, message FROM ops.run WHERE run_id = 'dead'").fetchone()
    assert (status, stage) == ("interrupted", "validate_geocoded")
    assert "validate_geocoded" in msg
    assert con.execute("SELECT status FROM ops.run WHERE run_id = 'now'").fetchone()[0] == "running"
    assert ops.recover(con, tmp_path / "publish", current_run="now") == []


def test_stage_records_failure_with_context_and_timing(fresh_warehouse):
    con = fresh_warehouse
    with pytest.raises(ValueError):
        with ops.stage(con, "r", "ingest", context=lambda: "file skadestue/x.csv"):
            sum(i * i for i in range(200_000))
            raise ValueError("bad byte")
    with ops.stage(con, "r", "geocode") as rec:
        rec.rows, rec.detail = 12, {"A": 10}
    rows = con.execute("SELECT stage, seq, status, seconds, cpu_seconds, peak_rss_mb, rows, detail, message "
                       "FROM ops.run_stage WHERE run_id = 'r' ORDER BY seq").fetchall()
    assert [r[:3] for r in rows] == [("ingest", 1, "failed"), ("geocode", 3, "succeeded")]
    assert rows[0][8] == "file skadestue/x.csv: ValueError: bad byte"
    assert rows[0][3] > 0 and rows[0][4] > 0 and rows[0][5] > 10
    assert rows[1][6] == 12 and json.loads(rows[1][7]) == {"A": 10} and rows[1][8] is None


def test_publication_leftovers_are_restored_or_removed(tmp_path):
    publish = tmp_path / "publish"
    old = tmp_path / ".publish-old-run1"
    (old / "lokalraad").mkdir(parents=True)
    (old / "manifest.json").write_text("{}")
    (tmp_path / ".publish-run2" / "geoparquet").mkdir(parents=True)  # half-built staging
    actions = ops.clean_publish_leftovers(publish)
    assert (publish / "manifest.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["publish"]
    assert actions == ["restored " + str(publish) + " from .publish-old-run1", "removed .publish-run2"]
    # With the publish dir in place an old copy is simply removed.
    (tmp_path / ".publish-old-run3").mkdir()
    assert ops.clean_publish_leftovers(publish) == ["removed .publish-old-run3"]
    assert (publish / "manifest.json").exists()


def test_crash_point_kills_only_at_its_name(tmp_path):
    code = ("import sys; sys.path.insert(0, %r); from skadestue import ops; ops.crash_point('ingest'); "
            "print('passed', flush=True); ops.crash_point('geocode'); print('not reached')"
            % str(Path(__file__).resolve().parents[1]))
    env = {**os.environ, ops.CRASH_ENV: "geocode"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == -9
    assert proc.stdout == "passed\n"


def test_status_lists_runs_stages_and_the_waiting_inbox(tmp_path, monkeypatch):
    from skadestue.cli import app
    from skadestue.ingest.readers import content_hash

    inbox = tmp_path / "inbox"
    (inbox / "skadestue").mkdir(parents=True)
    (inbox / "politi").mkdir()
    loaded = inbox / "skadestue" / "svs_esbjerg_2024.csv"
    loaded.write_text("kontakt_id;sygehus\n1;SVS\n")
    (inbox / "skadestue" / "ouh_odense_2025.csv").write_text("kontakt_id;sygehus\n2;OUH\n")
    (inbox / "politi" / "uheld_2025.csv").write_text("UHELDS_ID\n1\n")
    wh = tmp_path / "w.duckdb"
    con = db.connect(wh)
    ops.start_run(con, "20250101T020000-aaaaaa", inbox)
    with ops.stage(con, "20250101T020000-aaaaaa", "ingest") as rec:
        rec.rows = 1
    insert(con, "ops.delivery", [dict(
        delivery_id="er_contact-x", delivery_seq=1, run_id="20250101T020000-aaaaaa", source="er_contact",
        file_name="skadestue/svs_esbjerg_2024.csv", content_hash=content_hash(loaded.read_bytes()),
        loaded_at="2025-01-01 02:00:01", status="loaded", rows_read=1, rows_loaded=1, rows_quarantined=0)])
    ops.finish_run(con, "20250101T020000-aaaaaa", "failed",
                   {"rows_read": 1, "rows_loaded": 1, "rows_quarantined": 0},
                   "stage geocode failed: boom", failed_stage="geocode")
    con.close()
    monkeypatch.setenv("SKADESTUE_INBOX", str(inbox))
    result = CliRunner().invoke(app, ["status", "--warehouse", str(wh)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "20250101T020000-aaaaaa" in out and "failed" in out and "geocode" in out
    assert "2 files wait in the inbox" in out
    assert "ouh_odense_2025.csv" in out and "uheld_2025.csv" in out
    assert "svs_esbjerg_2024.csv" not in out  # already loaded
    # While a run holds the warehouse, status says who and still lists the inbox.
    # (status does not even open the warehouse then: a reader would block the run's next connect)
    with db.run_lock(wh, run_id="20250102T020000-bbbbbb", what="nightly run"):
        result = CliRunner().invoke(app, ["status", "--warehouse", str(wh)])
    assert result.exit_code == 0, result.output
    assert "nightly run 20250102T020000-bbbbbb" in result.output and f"pid {os.getpid()}" in result.output
    assert "ouh_odense_2025.csv" in result.output and "svs_esbjerg_2024.csv" in result.output


def test_ops_settings_from_toml(tmp_path):
    toml = tmp_path / "skadestue.toml"
    toml.write_text('[ops]\nlock_wait_seconds = 5\nschedule_cron = "30 3 * * *"\n')
    s = load_settings(toml)
    assert s.ops.lock_wait_seconds == 5 and s.ops.schedule_cron == "30 3 * * *"
    assert s.ops.schedule_timezone == "Europe/Copenhagen"
    assert load_settings(tmp_path / "missing.toml").ops.schedule_cron == "0 2 * * *"
