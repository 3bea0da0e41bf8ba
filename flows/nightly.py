"""The nightly run, as a Prefect flow: the pipeline's table of contents.

Each task calls one function of the ``skadestue`` package (testable without Prefect) and
gets paths and a run id, never DataFrames. The CPR pseudonym key is read from the
environment inside the tasks; it is never a flow or task parameter, so Prefect never
stores it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from skadestue import db, ops
from skadestue.config import Settings, load_settings


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


@task(name="start run", cache_policy=NO_CACHE)
def start_run(paths: dict, run_id: str) -> None:
    settings = _settings(paths)
    settings.require_pseudonym_key()
    with db.warehouse(settings) as con:
        ops.start_run(con, run_id, settings.inbox)


@task(name="ingest deliveries", cache_policy=NO_CACHE)
def ingest(paths: dict, run_id: str) -> dict:
    from skadestue.ingest import build_core, ingest_inbox

    settings = _settings(paths)
    with db.warehouse(settings) as con:
        report = _as_dict(ingest_inbox(con, settings, run_id))
        report["core"] = build_core(con, settings)
    return report


@task(name="validate", cache_policy=NO_CACHE)
def validate(paths: dict, run_id: str, stage: str) -> dict:
    from skadestue.quality import validate_stage

    settings = _settings(paths)
    with db.warehouse(settings) as con:
        result = validate_stage(con, stage, run_id, settings, docs_dir=settings.quality_dir)
    return {"stage": stage, "success": result.success, "critical_failures": list(result.critical_failures)}


@task(name="geocode", cache_policy=NO_CACHE)
def geocode(paths: dict, run_id: str) -> dict:
    from skadestue.geocode import geocode_er_contacts, geocode_police_accidents

    settings = _settings(paths)
    with db.warehouse(settings) as con:
        return {
            "police": geocode_police_accidents(con, settings),
            "er": geocode_er_contacts(con, settings, run_id=run_id),
        }


@task(name="link casualties", cache_policy=NO_CACHE)
def link(paths: dict) -> dict:
    from skadestue.link import link_casualties

    settings = _settings(paths)
    with db.warehouse(settings) as con:
        return _as_dict(link_casualties(con, settings))


@task(name="build hotspots", cache_policy=NO_CACHE)
def hotspots(paths: dict) -> dict:
    from skadestue.hotspots import build_hotspots

    settings = _settings(paths)
    with db.warehouse(settings) as con:
        return _as_dict(build_hotspots(con, settings))


@task(name="publish layers", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=10)
def publish(paths: dict, run_id: str) -> dict:
    from skadestue.publish import publish_layers

    settings = _settings(paths)
    with db.warehouse(settings) as con:
        return _as_dict(publish_layers(con, settings, run_id))


@task(name="finish run", cache_policy=NO_CACHE)
def finish_run(paths: dict, run_id: str, status: str, stages: dict, message: str | None = None) -> dict:
    settings = _settings(paths)
    with db.warehouse(settings) as con:
        summary = ops.warehouse_summary(con, run_id)
        summary["stages"] = stages
        ops.finish_run(con, run_id, status, summary, message)
    return summary


class CriticalQualityFailure(RuntimeError):
    """A critical expectation failed: the layers of the last good run stay published."""


@flow(name="skadestue-nightly", log_prints=True)
def nightly(
    inbox: str | None = None,
    warehouse: str | None = None,
    publish_dir: str | None = None,
    quality_dir: str | None = None,
    config: str | None = None,
    run_id: str | None = None,
) -> dict:
    """Ingest → validate → geocode → link → validate → hotspots → validate → publish."""
    paths = {
        "inbox": inbox, "warehouse": warehouse, "publish_dir": publish_dir,
        "quality_dir": quality_dir, "config": config,
    }
    run_id = run_id or ops.new_run_id()
    start_run(paths, run_id)
    stages: dict = {}
    try:
        stages["ingest"] = ingest(paths, run_id)
        gates = [validate(paths, run_id, "raw_er"), validate(paths, run_id, "raw_police")]
        stages["geocode"] = geocode(paths, run_id)
        gates.append(validate(paths, run_id, "geocoded"))
        stages["link"] = link(paths)
        gates.append(validate(paths, run_id, "linked"))
        stages["hotspots"] = hotspots(paths)
        gates.append(validate(paths, run_id, "hotspots"))
        stages["quality"] = gates
        failed = [f"{g['stage']}: {f}" for g in gates for f in g["critical_failures"]]
        if failed:
            raise CriticalQualityFailure(
                "critical expectations failed, publication stopped (yesterday's layers stay): "
                + "; ".join(failed)
            )
        stages["publish"] = publish(paths, run_id)
    except Exception as exc:
        finish_run(paths, run_id, "failed", stages, message=str(exc)[:2000])
        raise
    return finish_run(paths, run_id, "succeeded", stages)
