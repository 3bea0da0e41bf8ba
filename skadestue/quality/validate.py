"""Validate one stage's warehouse table(s) against its suite(s) and store the results.

``validate_stage`` reads only the columns a suite needs from DuckDB into pandas (nightly
volumes are small), runs GX, writes one ``quality.validation_result`` row per expectation
and, when the caller passes ``docs_dir``, renders Data Docs there. Data Docs are for
operators (warehouse tier), so the flow passes :func:`default_docs_dir`
(``settings.quality_dir``), never a folder under ``publish/``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from skadestue.config import Settings
from skadestue.quality.redact import redact
from skadestue.quality.suites import EXPECTATIONS_DIR, STAGES, SuiteSpec, suites_for_stage

log = logging.getLogger(__name__)

#: kwargs that are shown as ``column_name`` or are GX bookkeeping, so not repeated in details.
_NOT_IN_DETAILS = {"column", "column_A", "column_B", "column_list", "batch_id"}
_MAX_VALUES_IN_DETAILS = 5
_RESULT_COLUMNS = (
    "run_id", "stage", "suite", "expectation", "column_name", "critical", "success",
    "element_count", "unexpected_count", "details",
)


@dataclass
class StageValidation:
    """Outcome of one stage: every expectation of every suite of the stage."""

    stage: str
    success: bool
    critical_failures: list[str]
    n_expectations: int
    n_failed: int
    results: list[dict[str, Any]] = field(default_factory=list)  # quality.validation_result rows
    suites: list[str] = field(default_factory=list)
    docs_index: Path | None = None
    #: rows sent to quality.quarantine per row-level expectation ("suite.expectation[column]")
    quarantined: dict[str, int] = field(default_factory=dict)

    @property
    def n_quarantined(self) -> int:
        return sum(self.quarantined.values())

    @property
    def warnings(self) -> list[str]:
        """Failed non-critical expectations (reported, do not stop publication)."""
        return [_label(r) for r in self.results if not r["success"] and not r["critical"]]


def default_docs_dir(settings: Settings) -> Path:
    """Where the nightly flow renders Data Docs: ``settings.quality_dir`` (operator tier)."""
    return Path(settings.quality_dir)


def suite_parameters(settings: Settings, today: dt.date | None = None) -> dict[str, Any]:
    """Values for the ``{"$PARAMETER": ...}`` placeholders in the suites."""
    return {
        "today": (today or dt.date.today()).isoformat(),
        "max_age": settings.ingest.max_age,
    }


def validate_stage(
    con: duckdb.DuckDBPyConnection,
    stage: str,
    run_id: str,
    settings: Settings,
    docs_dir: Path | None = None,
    *,
    expectations_dir: Path = EXPECTATIONS_DIR,
    today: dt.date | None = None,
    quarantine: bool = True,
    incremental: bool = True,
) -> StageValidation:
    """Run the stage's suites, store one result row per expectation, optionally build Data Docs.

    ``docs_dir=None`` skips Data Docs (the flow passes :func:`default_docs_dir`). Data Docs are
    rendered in one build per run: the gate's results are queued, and the last gate, a gate
    with a critical failure, or a gate whose ``docs_dir`` has no index yet renders every queued
    result and the index (anything still queued is rendered when the process exits).
    ``docs_index`` is the index's path either way. ``today`` bounds dates (default: the real
    today). A missing table is not an exception: it is recorded as a failed critical
    ``expect_table_to_exist`` so the gate stops publication and the reason is stored.
    With ``quarantine`` (default) the rows that break a row-level expectation go to
    ``quality.quarantine`` and out of the table later stages read. After ``linked`` and
    ``hotspots`` the night's key ratios are stored (``quality.nightly_trend``); after
    ``hotspots`` (the last gate) the run's summary becomes a Prefect artifact when run in a flow.

    ``incremental`` (default): a suite that passed before with the same fingerprint checks
    its row-wise expectations only on the rows that are new or changed since, and its
    table-wise ones in SQL over the whole table (:mod:`skadestue.quality.incremental`; same
    verdicts as a whole-table run). ``incremental=False`` validates everything in GX and
    forgets nothing.
    """
    from skadestue.quality.gx_runtime import flush_data_docs, queue_data_docs
    from skadestue.quality.quarantine import quarantine_failed_rows
    from skadestue.quality.report import publish_summary_artifact, record_run_ratios

    specs = suites_for_stage(stage, expectations_dir)
    params = suite_parameters(settings, today)
    from skadestue.quality import incremental as night

    rows: list[dict[str, Any]] = []
    keys: list[Any] = []
    plans: list[Any] = []
    try:
        for spec in specs:
            suite_rows, key, plan = _validate_suite(con, spec, run_id, params, incremental)
            rows.extend(suite_rows)
            keys.extend([key] if key is not None else [])
            plans.extend([plan] if plan is not None else [])
        write_results(con, run_id, stage, rows)
        outcome = _summarise(stage, [s.name for s in specs], rows)
        if quarantine:
            outcome.quarantined = quarantine_failed_rows(con, specs, run_id, rows, params)
        for plan in plans:
            if not any(r["critical"] and not r["success"] for r in rows if r["suite"] == plan.spec.name):
                night.remember(con, plan, run_id)
    finally:
        for plan in plans:
            night.drop(con, plan)
    if docs_dir is not None:
        queue_data_docs(docs_dir, keys)
        index = Path(docs_dir).resolve() / "index.html"
        if stage == STAGES[-1] or not outcome.success or not index.exists():
            index = flush_data_docs(docs_dir)
        outcome.docs_index = index
    if stage in ("linked", "hotspots"):
        record_run_ratios(con, run_id)
    _log_outcome(outcome)
    if stage == STAGES[-1]:
        publish_summary_artifact(con, run_id, outcome.docs_index)
    return outcome


def _validate_suite(
    con: duckdb.DuckDBPyConnection, spec: SuiteSpec, run_id: str, params: dict[str, Any],
    incremental: bool = False,
) -> tuple[list[dict[str, Any]], Any, Any]:
    """Result rows of one suite, its GX result key (None when GX did not run, e.g. a missing
    table) and its night plan (None when ``incremental`` is off)."""
    from skadestue.quality import incremental as night
    from skadestue.quality.gx_runtime import run_suite

    existing = table_columns(con, spec.table)
    if not existing:
        return [_missing_table_row(spec, run_id)], None, None
    columns = [c for c in spec.columns if c in existing]
    plan = night.plan_suite(con, spec, columns, params) if incremental else None
    if plan is not None and plan.night:
        rows, key = _validate_night(con, plan, run_id, params)
        if not any(r["critical"] and not r["success"] for r in rows):
            return rows, key, plan
        # a night that stops publication is validated whole, as before: the operator gets the
        # full counts and a complete Data Docs page for it
    df = read_table(con, spec.table, columns)
    result, key = run_suite(spec, df, run_id, params)
    return [_result_row(spec, run_id, r, len(df)) for r in result.results], key, plan


def _validate_night(con: duckdb.DuckDBPyConnection, plan: Any, run_id: str,
                    params: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
    """A suite in night mode: row-wise expectations on the new/changed rows (GX), table-wise
    ones in SQL over the whole table (GX over the table for a type without an SQL form)."""
    from skadestue.quality import incremental as night
    from skadestue.quality.gx_runtime import run_suite

    spec = plan.spec
    by_index: dict[int, dict[str, Any]] = {}
    key = None
    row_idx = [i for i, e in enumerate(spec.expectations) if night.is_row_wise(e)]
    if row_idx and plan.n_delta:
        df = read_table(con, plan.delta_table, plan.columns)
        result, key = run_suite(plan.row_spec(), df, run_id, params)
        by_index.update(_by_expectation(spec, row_idx, result.results, run_id, len(df)))
    else:
        for i in row_idx:
            by_index[i] = _unchecked_row(spec, run_id, spec.expectations[i])
    table_idx = [i for i, e in enumerate(spec.expectations) if i not in by_index]
    gx_idx = [i for i in table_idx if not night.has_sql_form(spec.expectations[i])]
    for i in table_idx:
        if i in gx_idx:
            continue
        exp = spec.expectations[i]
        out = night.table_result(con, spec.table, exp, params)
        by_index[i] = _sql_row(spec, run_id, exp, out)
    if gx_idx:
        whole = replace(spec, name=f"{spec.name}.night_table",
                        expectations=tuple(spec.expectations[i] for i in gx_idx))
        df = read_table(con, spec.table, plan.columns)
        result, key2 = run_suite(whole, df, run_id, params)
        key = key or key2
        by_index.update(_by_expectation(spec, gx_idx, result.results, run_id, len(df)))
    return [by_index[i] for i in range(len(spec.expectations))], key


def _by_expectation(spec: SuiteSpec, indexes: list[int], results: list[Any], run_id: str,
                    n_rows: int) -> dict[int, dict[str, Any]]:
    """GX results of a sub-suite mapped back to the suite's expectation positions (by type and
    column, in order)."""
    slots: dict[tuple, list[int]] = {}
    for i in indexes:
        exp = spec.expectations[i]
        slots.setdefault((exp["type"], _column_name(exp["kwargs"])), []).append(i)
    out = {}
    for r in results:
        config = r.expectation_config
        out[slots[(config.type, _column_name(config.kwargs))].pop(0)] = _result_row(spec, run_id, r, n_rows)
    return out


def _column_of(exp: dict[str, Any]) -> str | None:
    return _column_name(exp["kwargs"])


def _unchecked_row(spec: SuiteSpec, run_id: str, exp: dict[str, Any]) -> dict[str, Any]:
    """A row-wise expectation on a night with no new or changed rows: nothing to check."""
    meta = exp.get("meta", {})
    return {
        "run_id": run_id, "stage": spec.stage, "suite": spec.name, "expectation": exp["type"],
        "column_name": _column_of(exp), "critical": bool(meta.get("critical", True)),
        "success": True, "element_count": 0, "unexpected_count": 0,
        "details": _details(_spec_exp(exp), {"note": "no new or changed rows since the last "
                                                     "validation; every other row passed it"}, None),
    }


def _sql_row(spec: SuiteSpec, run_id: str, exp: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    """A table-wise expectation computed in SQL, as a quality.validation_result row."""
    meta = exp.get("meta", {})
    return {
        "run_id": run_id, "stage": spec.stage, "suite": spec.name, "expectation": exp["type"],
        "column_name": _column_of(exp), "critical": bool(meta.get("critical", True)),
        "success": out["success"], "element_count": out["element_count"],
        "unexpected_count": out["unexpected_count"],
        "details": _details(_spec_exp(exp), {**out["result"], "checked": "whole table, in SQL"}, None),
    }


def _spec_exp(exp: dict[str, Any]) -> dict[str, Any]:
    return {"kwargs": dict(exp["kwargs"]), "meta": dict(exp.get("meta", {}))}


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """``{column: duckdb type}`` of ``schema.table``; empty when the table does not exist."""
    schema, name = table.split(".", 1)
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position",
        [schema, name],
    ).fetchall()
    return dict(rows)


def read_table(con: duckdb.DuckDBPyConnection, table: str, columns: list[str]) -> pd.DataFrame:
    """The given columns of ``table`` as pandas, in the dtypes GX's pandas engine is fast on.

    The values are the table's; only their representation is chosen for GX (read through
    Arrow, so no Python string is made for a column GX does not look at row by row):

    - DATE columns as ``datetime.date`` objects: GX compares DATE bounds (``"2000-01-01"``)
      as dates; pandas Timestamps would not compare;
    - integer columns as ``int64`` (``float64`` when they hold NULLs): GX's
      ``column_values.between`` is vectorised only for ``int64``/``float64``, and calls a Python
      function per row for ``int32`` and nullable ``Int32``;
    - text columns as ``category`` (dictionary-encoded in Arrow): every GX metric that copies,
      filters or hashes the frame (``get_batch`` hashes it; each metric takes its domain)
      works on integer codes instead of Python strings. Unexpected values and their counts
      come out as the same strings.
    """
    if not columns:  # row-count-only suite: one constant column keeps the row count
        return con.execute(f"SELECT 1 AS _row FROM {table}").df()
    select = ", ".join(_quote(c) for c in columns)
    arrow = con.execute(f"SELECT {select} FROM {table}").to_arrow_table()
    prepared = []
    for field_, column in zip(arrow.schema, arrow.columns):
        if _is_text(field_.type):
            column = pc.dictionary_encode(column)
        elif pa.types.is_integer(field_.type) and field_.type != pa.int64():
            column = column.cast(pa.int64())  # NULLs make it float64 in to_pandas
        prepared.append(column)
    return pa.table(prepared, names=arrow.column_names).to_pandas(date_as_object=True)


def _is_text(arrow_type: pa.DataType) -> bool:
    is_view = getattr(pa.types, "is_string_view", None)
    return (pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
            or bool(is_view and is_view(arrow_type)))


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _column_name(kwargs: dict[str, Any]) -> str | None:
    """The column(s) an expectation is about, as stored in ``column_name``."""
    if "column" in kwargs:
        return kwargs["column"]
    if "column_A" in kwargs:
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    if "column_list" in kwargs:
        return ",".join(kwargs["column_list"])
    return None


def _exception_message(exception_info: Any) -> str | None:
    """The first exception message GX recorded for an expectation, if any."""
    if not isinstance(exception_info, dict):
        return None
    if exception_info.get("raised_exception"):
        return exception_info.get("exception_message")
    for value in exception_info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return value.get("exception_message")
    return None


def _details(spec_exp: dict[str, Any], result: dict[str, Any], exception: str | None) -> str:
    """The JSON ``details``: why, parameters, a few unexpected values (redacted), the error."""
    details: dict[str, Any] = {
        "why": spec_exp["meta"].get("why"),
        "kwargs": {k: v for k, v in spec_exp["kwargs"].items() if k not in _NOT_IN_DETAILS},
    }
    for key in ("observed_value", "unexpected_percent", "missing_count", "note", "checked"):
        if key in result:
            details[key] = result[key]
    counts = result.get("partial_unexpected_counts") or []
    if counts:
        details["unexpected_values"] = counts[:_MAX_VALUES_IN_DETAILS]
    if exception:
        details["error"] = exception
    return json.dumps(redact(details), ensure_ascii=False)


def _result_row(spec: SuiteSpec, run_id: str, r: Any, n_rows: int) -> dict[str, Any]:
    """One ``quality.validation_result`` row from a GX ExpectationValidationResult."""
    config = r.expectation_config
    meta = config.meta or {}
    spec_exp = {"kwargs": {k: v for k, v in config.kwargs.items()}, "meta": meta}
    result = r.result or {}
    exception = _exception_message(r.exception_info)
    return {
        "run_id": run_id,
        "stage": spec.stage,
        "suite": spec.name,
        "expectation": config.type,
        "column_name": _column_name(config.kwargs),
        "critical": bool(meta.get("critical", True)),
        "success": bool(r.success),
        "element_count": result.get("element_count", n_rows),
        "unexpected_count": result.get("unexpected_count"),
        "details": _details(spec_exp, result, exception),
    }


def _missing_table_row(spec: SuiteSpec, run_id: str) -> dict[str, Any]:
    """The failed critical row recorded when a suite's table does not exist."""
    why = (
        f"table {spec.table} does not exist: the stage that builds it did not run or failed "
        "(or its migration is missing)"
    )
    return {
        "run_id": run_id, "stage": spec.stage, "suite": spec.name,
        "expectation": "expect_table_to_exist", "column_name": None, "critical": True,
        "success": False, "element_count": None, "unexpected_count": None,
        "details": json.dumps({"why": why, "table": spec.table}),
    }


def write_results(
    con: duckdb.DuckDBPyConnection, run_id: str, stage: str, rows: list[dict[str, Any]]
) -> None:
    """Replace this run's rows for ``stage`` in ``quality.validation_result`` (re-runs are idempotent)."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM quality.validation_result WHERE run_id = ? AND stage = ?", [run_id, stage])
        if rows:
            cols = ", ".join(_RESULT_COLUMNS)
            marks = ", ".join("?" for _ in _RESULT_COLUMNS)
            con.executemany(
                f"INSERT INTO quality.validation_result ({cols}) VALUES ({marks})",
                [[row[c] for c in _RESULT_COLUMNS] for row in rows],
            )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def _label(row: dict[str, Any]) -> str:
    """``suite.expectation[column]``: how a failure is named in reports and exceptions."""
    column = f"[{row['column_name']}]" if row["column_name"] else ""
    return f"{row['suite']}.{row['expectation']}{column}"


def _summarise(stage: str, suites: list[str], rows: list[dict[str, Any]]) -> StageValidation:
    failed = [r for r in rows if not r["success"]]
    critical = [_label(r) for r in failed if r["critical"]]
    return StageValidation(
        stage=stage,
        success=not critical,
        critical_failures=critical,
        n_expectations=len(rows),
        n_failed=len(failed),
        results=rows,
        suites=suites,
    )


def _log_outcome(outcome: StageValidation) -> None:
    if outcome.critical_failures:
        log.error("stage %s: %d critical expectation(s) failed: %s", outcome.stage,
                  len(outcome.critical_failures), "; ".join(outcome.critical_failures))
    if outcome.warnings:
        log.warning("stage %s: non-critical expectation(s) failed: %s", outcome.stage,
                    "; ".join(outcome.warnings))
    log.info("stage %s: %d/%d expectations passed", outcome.stage,
             outcome.n_expectations - outcome.n_failed, outcome.n_expectations)
