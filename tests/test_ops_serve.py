"""Scheduling on a real Prefect server (issue 9): `prefect server start` on loopback with its own
home, `skadestue serve` (a cron deployment of the nightly flow), a run triggered through the API
with run_deployment, and the warehouse checked afterwards. Offline; everything is stopped at the end.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process group this test started (SIGTERM, then SIGKILL)."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _wait_healthy(url: str, server: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"prefect server stopped:\n{log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"prefect server not healthy after {timeout} s:\n{log.read_text()[-3000:]}")


TRIGGER = """
import asyncio, json, sys, time
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment

async def deployment():
    async with get_client() as client:
        for _ in range(600):
            try:
                return await client.read_deployment_by_name("skadestue-nightly/nightly")
            except Exception:
                await asyncio.sleep(0.5)
    raise SystemExit("the deployment never appeared")

d = asyncio.run(deployment())
sched = [{"cron": s.schedule.cron, "timezone": s.schedule.timezone} for s in d.schedules]
run = run_deployment("skadestue-nightly/nightly", timeout=900, poll_interval=2)
print(json.dumps({"schedules": sched, "flow_run_id": str(run.id), "state": run.state.type.value,
                  "message": run.state.message}))
"""


READ_DEPLOYMENT = """
import asyncio, json
from prefect.client.orchestration import get_client

async def main():
    async with get_client() as client:
        d = await client.read_deployment_by_name("skadestue-nightly/nightly")
        limit = d.global_concurrency_limit.limit if d.global_concurrency_limit else d.concurrency_limit
        print(json.dumps({"work_pool": d.work_pool_name, "concurrency_limit": limit, "entrypoint": d.entrypoint,
                          "schedules": [{"cron": s.schedule.cron, "timezone": s.schedule.timezone}
                                        for s in d.schedules],
                          "warehouse": d.parameters.get("warehouse")}))

asyncio.run(main())
"""


def test_served_deployment_runs_on_a_real_prefect_server(tmp_path, demo_setup):
    _, settings, _ = demo_setup(tmp_path / "night", scale=0.1, years=(2023, 2024), seed=5)
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(tmp_path / "prefect_home"), "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false", "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore", "GX_ANALYTICS_ENABLED": "false",
    })
    server_log = tmp_path / "server.log"
    serve_log = tmp_path / "serve.log"
    t0 = time.monotonic()
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui",
         "--analytics-off"],
        stdout=server_log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=tmp_path, start_new_session=True,
    )
    served = None
    try:
        _wait_healthy(api, server, server_log)
        started = time.monotonic() - t0
        served = subprocess.Popen(
            [str(BIN / "skadestue"), "serve", "--inbox", str(settings.inbox), "--warehouse", str(settings.warehouse),
             "--publish", str(settings.publish_dir), "--cron", "0 2 * * *"],
            stdout=serve_log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True,
        )
        trigger = subprocess.run([sys.executable, "-c", TRIGGER], capture_output=True, text=True, env=env,
                                 cwd=tmp_path, timeout=1200)
        assert trigger.returncode == 0, trigger.stderr[-3000:] + serve_log.read_text()[-3000:]
        result = json.loads(trigger.stdout.strip().splitlines()[-1])
        assert result["state"] == "COMPLETED", (result, serve_log.read_text()[-3000:])
        assert result["schedules"] == [{"cron": "0 2 * * *", "timezone": "Europe/Copenhagen"}]
        _stop(served)
        # The worker-based alternative: prefect.yaml deploys onto a process work pool.
        yaml_env = {**env, "SKADESTUE_HOME": str(REPO)}
        for cmd in (["work-pool", "create", "skadestue", "--type", "process"],
                    ["deploy", "--name", "nightly", "--no-prompt", "--prefect-file", str(REPO / "prefect.yaml")]):
            done = subprocess.run([str(BIN / "prefect"), *cmd], capture_output=True, text=True, env=yaml_env,
                                  cwd=REPO, timeout=300)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        check = subprocess.run([sys.executable, "-c", READ_DEPLOYMENT], capture_output=True, text=True,
                               env=env, cwd=tmp_path, timeout=300)
        assert check.returncode == 0, check.stderr[-3000:]
        deployed = json.loads(check.stdout.strip().splitlines()[-1])
        assert deployed == {"work_pool": "skadestue", "concurrency_limit": 1, "entrypoint": "flows/nightly.py:nightly",
                            "schedules": [{"cron": "0 2 * * *", "timezone": "Europe/Copenhagen"}],
                            "warehouse": "/srv/skadestue/warehouse.duckdb"}
    finally:
        if served is not None:
            _stop(served)
        _stop(server)
    print(f"prefect server healthy after {started:.0f} s; whole test {time.monotonic() - t0:.0f} s")

    con = duckdb.connect(str(settings.warehouse), read_only=True)
    run = con.execute("SELECT status, flow_run_id, rows_read, rows_loaded + rows_quarantined FROM ops.run").fetchall()
    stages = [r[0] for r in con.execute("SELECT stage FROM ops.run_stage ORDER BY seq").fetchall()]
    deliveries = con.execute("SELECT count(*) FROM ops.delivery WHERE status = 'loaded'").fetchone()[0]
    casualties = con.execute("SELECT count(*) FROM core.casualty").fetchone()[0]
    con.close()
    assert len(run) == 1
    status, flow_run_id, read, accounted = run[0]
    assert status == "succeeded" and flow_run_id == result["flow_run_id"]
    assert read > 300 and read == accounted
    assert stages == ["ingest", "validate_raw", "geocode", "validate_geocoded", "link", "validate_linked",
                      "hotspots", "validate_hotspots", "publish", "maps"]
    assert deliveries >= 10 and casualties > 300
    manifest = json.loads((settings.publish_dir / "manifest.json").read_text())
    assert manifest["run_id"] and manifest["layer_rows"]["casualty_point"] == casualties
