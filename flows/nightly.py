"""The nightly run, as a Prefect flow: the pipeline's table of contents.

Each task calls one function of the ``skadestue`` package (testable without Prefect) and
gets paths and a run id, never DataFrames. The CPR pseudonym key is read from the
environment inside the tasks; it is never a flow or task parameter, so Prefect never
stores it.

Operations (issue 9):

* one run at a time: the whole run holds the warehouse's run lock (``db.run_lock``); a second
  run waits ``ops.lock_wait_seconds`` and then stops with a message naming the holder;
* crash safety: every stage commits its warehouse writes in one transaction (ingest: one per
  delivery), publication swaps a finished directory into place, and a run started after a
  killed one marks it ``interrupted`` and removes publication leftovers (``ops.recover``);
* observability: ``ops.run`` (one row per run) and ``ops.run_stage`` (wall/CPU seconds, peak
  memory, rows per stage), a Prefect artifact ``nightly-run``, and failures that name the stage
  (and, for ingest, the file);
* the same stages run without Prefect (``run_nightly(..., use_prefect=False)``), which the
  kill-and-rerun tests and the benchmark use.
"""

from __future__ import annotations

import dataclasses
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import duckdb
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from skadestue import db, ops, state
from skadestue.config import Settings, load_settings

log = logging.getLogger("skadestue.flow")

#: Quality gates (Great Expectations stages) run after each pipeline stage.
GATES = {
    "validate_raw": ("raw_er", "raw_police"),
    "validate_geocoded": ("geocoded",),
    "validate_linked": ("linked",),
    "validate_hotspots": ("hotspots",),
}


def _settings(paths: dict[str, str | None]) -> Settings:
    config = paths.get("config")
    return load_settings(
        Path(config) if config else None,
        inbox=paths.get("inbox"),
        warehouse=paths.get("warehouse"),
        publish_dir=paths.get("publish_dir"),
        quality_dir=paths.get("quality_dir"),
    )


def _as_dict(report: object) -> dict:
    return dataclasses.asdict(report) if dataclasses.is_dataclass(report) else dict(report)


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All of the block's writes are committed, or none (for stages without their own)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _transient(task, task_run, state) -> bool:  # noqa: ANN001 - Prefect's retry_condition_fn
    """Retry only file/lock problems (a share not mounted yet, a reader holding a file)."""
    try:
        state.result()
    except (OSError, duckdb.IOException):
        return True
    except BaseException:  # noqa: BLE001
        return False
    return False


@task(name="start run", cache_policy=NO_CACHE)
def start_run(paths: dict, run_id: str, flow_run_id: str | None = None, full: bool = False) -> list[str]:
    settings = _settings(paths)
    settings.require_pseudonym_key()
    with db.warehouse(settings) as con:
        interrupted = ops.recover(con, settings.publish_dir, current_run=run_id)
        if full:  # every stage rebuilds everything (ops.stage_state is what lets a night skip)
            state.forget(con)
        ops.start_run(con, run_id, settings.inbox, flow_run_id=flow_run_id)
    ops.crash_point("start")
    return interrupted


@task(name="ingest deliveries", cache_policy=NO_CACHE)
def ingest(paths: dict, run_id: str) -> dict:
    from skadestue.ingest import build_core, ingest_inbox

    settings = _settings(paths)
    with db.warehouse(settings) as con:
        def failed_file() -> str | None:
            file = ops.ingest_failed_file(con, settings, run_id)
            return f"file {file}" if file else None

        with ops.stage(con, run_id, "ingest", context=failed_file) as rec:
            report = _as_dict(ingest_inbox(con, settings, run_id))
            report["core"] = build_core(con, settings, run_id=run_id)
            rec.rows = sum(d["rows_read"] for d in report.get("deliveries", []))
            rec.detail = {"deliveries": len(report.get("deliveries", [])),
                          "skipped": len(report.get("skipped_duplicates", [])), "core": report["core"]}
    return report


@task(name="validate", cache_policy=NO_CACHE)
def validate(paths: dict, run_id: str, gate: str) -> list[dict]:
    from skadestue.quality import validate_stage

    settings = _settings(paths)
    results = []
    with db.warehouse(settings) as con, ops.stage(con, run_id, gate) as rec:
        for stage in GATES[gate]:
            result = validate_stage(con, stage, run_id, settings, docs_dir=settings.quality_dir)
            results.append({"stage": stage, "success": result.success,
                            "critical_failures": list(result.critical_failures)})
        rec.rows = sum(len(r["critical_failures"]) for r in results)
        rec.detail = {"gates": results}
    return results


@task(name="geocode", cache_policy=NO_CACHE)
def geocode(paths: dict, run_id: str) -> dict:
    from skadestue.geocode import geocode_er_contacts, geocode_police_accidents

    settings = _settings(paths)
    with db.warehouse(settings) as con, ops.stage(con, run_id, "geocode") as rec:
        with _transaction(con):  # the geocoder's writes are several statements: all or none
            out = {
                "police": geocode_police_accidents(con, settings),
                "er": geocode_er_contacts(con, settings, run_id=run_id),
            }
        rec.rows = out["er"].get("texts_geocoded")
        rec.detail = out
    return out


@task(name="link casualties", cache_policy=NO_CACHE)
def link(paths: dict, run_id: str) -> dict:
    from skadestue.link import link_casualties

    settings = _settings(paths)
    with db.warehouse(settings) as con, ops.stage(con, run_id, "link") as rec:
        out = _as_dict(link_casualties(con, settings))
        rec.rows = con.execute("SELECT count(*) FROM core.casualty").fetchone()[0]
        rec.detail = out
    return out


@task(name="build hotspots", cache_policy=NO_CACHE)
def hotspots(paths: dict, run_id: str) -> dict:
    from skadestue.hotspots import build_hotspots

    settings = _settings(paths)
    with db.warehouse(settings) as con, ops.stage(con, run_id, "hotspots") as rec:
        out = _as_dict(build_hotspots(con, settings, as_of=settings.as_of, run_id=run_id))
        rec.rows = con.execute("SELECT count(*) FROM marts.casualty_point").fetchone()[0]
        rec.detail = out
    return out


@task(name="publish layers", cache_policy=NO_CACHE)
def publish(paths: dict, run_id: str) -> dict:
    from skadestue.publish import publish_layers

    settings = _settings(paths)
    with db.warehouse(settings) as con, ops.stage(con, run_id, "publish") as rec:
        out = _as_dict(publish_layers(con, settings, run_id))
        rec.rows = sum(out.get("layer_rows", {}).values())
        rec.detail = {"files": len(out.get("files", [])), "layer_rows": out.get("layer_rows"),
                      "status": out.get("status"), "layers_written": out.get("layers_written")}
    return out


@task(name="render maps and reports", cache_policy=NO_CACHE)
def render_maps(paths: dict, run_id: str) -> dict:
    """The lokalråd maps and reports of the newest period. The layers are already published,
    so a failure here is recorded (stage ``maps`` in ops.run_stage, the run's summary) and
    logged, and the run still succeeds; the previous maps stay in place."""
    from skadestue.maps import render_nightly

    settings = _settings(paths)
    with db.warehouse(settings) as con:
        try:
            with ops.stage(con, run_id, "maps") as rec:
                maps = render_nightly(settings, con, pdf=settings.publish.maps_pdf)
                files = maps.files
                rec.rows = len(files)
                rec.detail = {"rendered": maps.rendered, "kept": maps.kept}
        except Exception as exc:  # noqa: BLE001 - see the docstring
            log.error("run %s: maps and reports failed (layers are published): %s", run_id, exc)
            return {"error": str(exc)}
    return {"files": len(files), "dir": str(Path(settings.publish_dir) / "maps")}


@task(name="finish run", cache_policy=NO_CACHE)
def finish_run(
    paths: dict, run_id: str, status: str, stages: dict, message: str | None = None,
    failed_stage: str | None = None,
) -> dict:
    settings = _settings(paths)
    with db.warehouse(settings) as con:
        summary = ops.warehouse_summary(con, run_id)
        summary["stages"] = stages
        ops.finish_run(con, run_id, status, summary, message, failed_stage=failed_stage)
        ops.publish_run_artifact(con, run_id)
    return summary


class CriticalQualityFailure(RuntimeError):
    """A critical expectation failed: the layers of the last good run stay published."""


def _caller(settings: Settings, use_prefect: bool) -> Callable:
    """Call a task through Prefect (file-touching ones with retries) or as a plain function."""
    if not use_prefect:
        return lambda t, *a, **kw: t.fn(*a, **kw)
    retrying = {ingest.name, publish.name}
    ops_s = settings.ops

    def call(t, *a, **kw):
        if t.name in retrying and ops_s.task_retries > 0:
            t = t.with_options(
                retries=ops_s.task_retries,
                retry_delay_seconds=exponential_backoff(backoff_factor=ops_s.retry_delay_seconds)(ops_s.task_retries),
                retry_condition_fn=_transient,
            )
        return t(*a, **kw)

    return call


def run_nightly(
    inbox: str | None = None,
    warehouse: str | None = None,
    publish_dir: str | None = None,
    quality_dir: str | None = None,
    config: str | None = None,
    run_id: str | None = None,
    *,
    use_prefect: bool = False,
    flow_run_id: str | None = None,
    full: bool = False,
) -> dict:
    """The whole night under the run lock; the flow calls this with ``use_prefect=True``.

    Each stage redoes only what changed since it last ran (``skadestue.state``); ``full`` makes
    every stage rebuild everything (after a change of reference data outside the warehouse, or
    to check that a rebuild gives the same result)."""
    paths = {
        "inbox": inbox, "warehouse": warehouse, "publish_dir": publish_dir,
        "quality_dir": quality_dir, "config": config,
    }
    settings = _settings(paths)
    settings.require_pseudonym_key()
    from skadestue.quality import prewarm

    prewarm()  # the GX import (seconds) overlaps with ingest instead of delaying the first gate
    run_id = run_id or ops.new_run_id()
    call = _caller(settings, use_prefect)
    with db.run_lock(settings.warehouse, wait_seconds=settings.ops.lock_wait_seconds, run_id=run_id,
                     what="nightly run"):
        interrupted = call(start_run, paths, run_id, flow_run_id, full)
        stages: dict = {"recovered_interrupted_runs": interrupted} if interrupted else {}
        current = "ingest"
        try:
            stages["ingest"] = call(ingest, paths, run_id)
            gates = []
            for name, step in (("geocode", geocode), ("link", link), ("hotspots", hotspots)):
                current = {"geocode": "validate_raw", "link": "validate_geocoded",
                           "hotspots": "validate_linked"}[name]
                gates += call(validate, paths, run_id, current)
                current = name
                stages[name] = call(step, paths, run_id)
            current = "validate_hotspots"
            gates += call(validate, paths, run_id, current)
            stages["quality"] = gates
            failed = [f"{g['stage']}: {f}" for g in gates for f in g["critical_failures"]]
            if failed:
                first = next(g["stage"] for g in gates if g["critical_failures"])
                current = next(k for k, v in GATES.items() if first in v)
                raise CriticalQualityFailure(
                    "critical expectations failed, publication stopped (yesterday's layers stay): "
                    + "; ".join(failed)
                )
            current = "publish"
            stages["publish"] = call(publish, paths, run_id)
            if settings.publish.maps:
                current = "maps"
                stages["maps"] = call(render_maps, paths, run_id)
        except Exception as exc:
            message = f"stage {current} failed: {exc}"
            if current == "ingest":
                with db.warehouse(settings) as con:
                    file = ops.ingest_failed_file(con, settings, run_id)
                if file:
                    message = f"stage ingest failed on file {file}: {exc}"
            log.error("run %s: %s", run_id, message)
            try:
                call(finish_run, paths, run_id, "failed", stages, message=message[:2000], failed_stage=current)
            except Exception as bookkeeping:  # noqa: BLE001 - keep the stage's own error
                log.error("could not record the failure of run %s: %s", run_id, bookkeeping)
            raise
        return call(finish_run, paths, run_id, "succeeded", stages)


@flow(name="skadestue-nightly", log_prints=True)
def nightly(
    inbox: str | None = None,
    warehouse: str | None = None,
    publish_dir: str | None = None,
    quality_dir: str | None = None,
    config: str | None = None,
    run_id: str | None = None,
    full: bool = False,
) -> dict:
    """Ingest → validate → geocode → validate → link → validate → hotspots → validate → publish
    → maps and reports."""
    from prefect.runtime import flow_run

    return run_nightly(
        inbox, warehouse, publish_dir, quality_dir, config, run_id,
        use_prefect=True, flow_run_id=str(flow_run.id) if flow_run.id else None, full=full,
    )
