"""The Great Expectations side: one ephemeral context per process, suites, Data Docs.

GX is imported lazily (it takes seconds) and fully offline: usage statistics are switched
off through ``GX_ANALYTICS_ENABLED`` before the import, progress bars are off, and the
ephemeral context's default Data Docs site (a temp dir) is removed so nothing is written
except where the caller asks. Results are redacted (no CPR-like strings) *before* they are
put into GX's results store, so Data Docs never render an offending value.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from skadestue.quality.redact import redact_in_place
from skadestue.quality.suites import SuiteSpec

if TYPE_CHECKING:  # pragma: no cover
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.data_context import AbstractDataContext

log = logging.getLogger(__name__)

DATASOURCE = "skadestue"
DOCS_SITE = "skadestue_quality"
#: SUMMARY gives counts and a few unexpected values, never the whole column.
RESULT_FORMAT: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 10}

_LOCK = threading.RLock()


_CONTEXT: list[Any] = []  # the one context of this process, once created
#: what importing GX and creating the context cost this process (for the benchmark)
CONTEXT_COST: dict[str, float] = {}


def gx_context() -> AbstractDataContext:
    """The process-wide ephemeral GX context (created once, thread-safe: GX import is slow)."""
    with _LOCK:
        if not _CONTEXT:
            t0, c0 = time.perf_counter(), time.thread_time()
            _CONTEXT.append(_new_context())
            CONTEXT_COST.update(wall_seconds=time.perf_counter() - t0, cpu_seconds=time.thread_time() - c0)
        return _CONTEXT[0]


def prewarm() -> threading.Thread:
    """Import GX and create the context in a background thread, e.g. while ingest runs.

    The GX import takes seconds (scipy, sqlalchemy, altair); started at the beginning of a
    run it overlaps with ingest instead of delaying the first quality gate. Idempotent.
    """
    thread = threading.Thread(target=_prewarm_quietly, name="gx-prewarm", daemon=True)
    thread.start()
    return thread


def _prewarm_quietly() -> None:
    try:
        gx_context()
    except Exception as exc:  # the first validate_stage will raise it again, with context
        log.warning("GX prewarm failed: %s", exc)


def _new_context() -> AbstractDataContext:
    """A fresh offline ephemeral context with progress bars and default docs sites off."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:  # GX logs plumbing at INFO; keep the run log readable
        gx_logger.setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    for site in list(context.config.data_docs_sites or {}):
        context.delete_data_docs_site(site)
    context.data_sources.add_pandas(DATASOURCE)
    log.debug("GX %s ephemeral context ready", gx.__version__)
    return context


_REGISTERED: dict[str, tuple[SuiteSpec, Any, Any]] = {}


def _registered(spec: SuiteSpec) -> tuple[Any, Any]:
    """The GX suite and whole-dataframe batch definition for ``spec`` (registered once per name)."""
    if spec.name in _REGISTERED and _REGISTERED[spec.name][0] != spec:
        raise RuntimeError(
            f"suite {spec.name!r} from {spec.path} differs from the one this process already "
            f"registered ({_REGISTERED[spec.name][0].path}); suites are read once per process, "
            "restart the worker after editing expectations/*.json"
        )
    if spec.name not in _REGISTERED:
        import great_expectations as gx

        context = gx_context()
        suite = context.suites.add(
            gx.ExpectationSuite(name=spec.name, expectations=spec.gx_expectations())
        )
        asset = context.data_sources.get(DATASOURCE).add_dataframe_asset(name=spec.name)
        batch_definition = asset.add_batch_definition_whole_dataframe("whole_table")
        _REGISTERED[spec.name] = (spec, suite, batch_definition)
    return _REGISTERED[spec.name][1:]


def run_suite(
    spec: SuiteSpec,
    df: pd.DataFrame,
    run_id: str,
    parameters: dict[str, Any],
) -> tuple[ExpectationSuiteValidationResult, Any]:
    """Validate ``df`` against ``spec``; the redacted result is kept for Data Docs too.

    Returns the result and its key in GX's results store (to render just this result).
    """
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    with _LOCK:
        context = gx_context()
        suite, batch_definition = _registered(spec)
        batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
        result = batch.validate(suite, result_format=RESULT_FORMAT, expectation_parameters=parameters)
        for r in result.results:
            redact_in_place(r.result)
            redact_in_place(r.exception_info)
        run = RunIdentifier(run_name=run_id, run_time=dt.datetime.now(dt.timezone.utc))
        result.meta["run_id"] = run
        result.meta["validation_time"] = run.run_time
        result.meta["stage"] = spec.stage
        result.meta["table"] = spec.table
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=spec.name),
            run_id=run,
            batch_identifier=batch.id,
        )
        context.validation_results_store.set(key, result)
    return result, key


def build_data_docs(docs_dir: Path, result_keys: list[Any] | None = None, build_index: bool = True) -> Path:
    """Render Data Docs into ``docs_dir`` and return its index.html.

    ``result_keys`` limits rendering to those results and their suites (the index lists every
    result of this process); None renders all of them. ``build_index=False`` only writes the
    result and suite pages (the index is the costly part and grows with every result).
    """
    resources = None
    if result_keys is not None:
        suites = {k.expectation_suite_identifier for k in result_keys}
        resources = [*result_keys, *suites]
    docs_dir = Path(docs_dir).resolve()
    docs_dir.mkdir(parents=True, exist_ok=True)
    site_config = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    with _LOCK:
        context = gx_context()
        if DOCS_SITE in (context.config.data_docs_sites or {}):
            context.update_data_docs_site(DOCS_SITE, site_config)
        else:
            context.add_data_docs_site(DOCS_SITE, site_config)
        context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=resources, build_index=build_index)
    index = docs_dir / "index.html"
    log.info("Data Docs written to %s", index)
    return index
