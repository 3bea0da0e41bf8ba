"""The Great Expectations side: one ephemeral context per process, suites, Data Docs.

GX is imported lazily (it takes seconds) and fully offline: usage statistics are switched
off through ``GX_ANALYTICS_ENABLED`` before the import, progress bars are off, and the
ephemeral context's default Data Docs site (a temp dir) is removed so nothing is written
except where the caller asks. Results are redacted (no CPR-like strings) *before* they are
put into GX's results store, so Data Docs never render an offending value.

What a night pays for GX is kept small (issue 6: validation < 10 % of a night):

- :func:`prewarm` imports GX, creates the one context of the process and registers every
  suite in a background thread while ingest runs (the import is the largest single cost);
- results use GX's ``BASIC`` format, which skips the ``unexpected_index_list`` /
  ``unexpected_index_query`` metrics that ``SUMMARY`` computes for every column expectation
  (pandas row positions, meaningless once a table changes); the value counts that
  ``SUMMARY`` would add (``partial_unexpected_counts``) are derived from the same partial
  list exactly as GX derives them (:func:`add_partial_unexpected_counts`);
- Data Docs are rendered once per run rather than once per gate (:func:`queue_data_docs`,
  :func:`flush_data_docs`), with views that compile GX's templates once per process
  (:mod:`skadestue.quality.docs_views`).
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import threading
import time
from collections import Counter
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
#: BASIC gives counts and a few unexpected values, never the whole column (and, unlike
#: SUMMARY, no per-row index metrics); value counts are added by add_partial_unexpected_counts.
PARTIAL_UNEXPECTED_COUNT = 10
RESULT_FORMAT: dict[str, Any] = {"result_format": "BASIC", "partial_unexpected_count": PARTIAL_UNEXPECTED_COUNT}

_LOCK = threading.RLock()


_CONTEXT: list[Any] = []  # the one context of this process, once created
#: what importing GX and creating the context cost this process, and what the prewarm thread
#: spent in all (import, context, suites), in wall and CPU seconds (for the benchmarks)
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
    """Import GX, create the context and register the suites in a background thread.

    The GX import takes seconds (scipy, sqlalchemy, altair); started at the beginning of a
    run (``run_nightly``) it overlaps with ingest instead of delaying the first quality gate.
    Idempotent; a failure here is only logged (the first gate raises it again, with context).
    """
    thread = threading.Thread(target=_prewarm_quietly, name="gx-prewarm", daemon=True)
    thread.start()
    return thread


def _prewarm_quietly() -> None:
    t0, c0 = time.perf_counter(), time.thread_time()
    try:
        from skadestue.quality.suites import all_suites

        gx_context()
        with _LOCK:
            for spec in all_suites():
                _registered(spec)
    except Exception as exc:  # the first validate_stage will raise it again, with context
        log.warning("GX prewarm failed: %s", exc)
    finally:
        CONTEXT_COST.update(prewarm_wall_seconds=time.perf_counter() - t0,
                            prewarm_cpu_seconds=time.thread_time() - c0)


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
            add_partial_unexpected_counts(r.result)
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


def add_partial_unexpected_counts(result: dict[str, Any] | None) -> None:
    """Add ``partial_unexpected_counts`` to a BASIC result, as GX's SUMMARY format would.

    GX derives them from ``partial_unexpected_list`` (the first unexpected values, not the
    whole column): the most common values, sorted by count, then value. Multi-column values
    (dicts) are counted as tuples, like GX does.
    """
    if not result or "partial_unexpected_list" not in result or "partial_unexpected_counts" in result:
        return
    values = [tuple(v.values()) if isinstance(v, dict) else v for v in result["partial_unexpected_list"]]
    try:
        counts = sorted(Counter(values).most_common(PARTIAL_UNEXPECTED_COUNT), key=lambda x: (-x[1], x[0]))
    except TypeError:  # unhashable or unorderable values: GX's SUMMARY leaves the counts out too
        return
    result["partial_unexpected_counts"] = [{"value": v, "count": n} for v, n in counts]


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
    from skadestue.quality.docs_views import view_config

    site_config = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "view": view_config(index=True)},
        "site_section_builders": {
            "expectations": {"view": view_config()},
            "validations": {"view": view_config()},
        },
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


_PENDING_DOCS: dict[Path, list[Any]] = {}  # docs folder -> result keys not rendered yet


def queue_data_docs(docs_dir: Path, result_keys: list[Any]) -> None:
    """Remember results to render into ``docs_dir`` with the next :func:`flush_data_docs`."""
    with _LOCK:
        _PENDING_DOCS.setdefault(Path(docs_dir).resolve(), []).extend(result_keys)


def flush_data_docs(docs_dir: Path) -> Path:
    """Render every queued result of ``docs_dir`` (pages and index) in one build; the index path."""
    docs_dir = Path(docs_dir).resolve()
    with _LOCK:
        keys = _PENDING_DOCS.pop(docs_dir, [])
        return build_data_docs(docs_dir, keys, build_index=True)


def _flush_all_quietly() -> None:
    """At exit, render what a run queued but did not reach its last gate to render."""
    for docs_dir in list(_PENDING_DOCS):
        if not docs_dir.exists():
            _PENDING_DOCS.pop(docs_dir, None)
            continue
        try:
            flush_data_docs(docs_dir)
        except Exception as exc:  # noqa: BLE001 - results are in quality.validation_result anyway
            log.warning("could not render the queued Data Docs in %s: %s", docs_dir, exc)


atexit.register(_flush_all_quietly)
