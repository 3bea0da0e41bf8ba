"""What an operator sees of the quality gates: nightly ratios (trend) and the run summary.

``record_run_ratios`` stores the night's key ratios in ``quality.run_ratio`` (read through
``quality.nightly_trend``); ``quality_summary_markdown`` is the one-page summary of a run
(stages, failures, quarantine, ratios, Data Docs path) that ``publish_summary_artifact``
attaches to the Prefect flow run.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)

#: ``ratio name -> SQL`` (one value, ``?`` = run_id where needed); see 013_quality.sql.
RATIO_SQL: dict[str, str] = {
    "placed_share": "SELECT avg(CASE WHEN x IS NOT NULL THEN 1.0 ELSE 0.0 END) FROM core.er_contact",
    "linked_share": "SELECT linked_share FROM quality.casualty_link_share",
    # rows quarantined by this run (ingest + checks) per row read from this run's deliveries
    "quarantine_share": (
        "SELECT (SELECT count(*) FROM quality.quarantine WHERE run_id = $run) "
        "/ nullif((SELECT sum(rows_read) FROM ops.delivery WHERE run_id = $run), 0)"
    ),
    # rows removed by row-level checks this run per row of the checked core tables
    "checks_quarantine_share": (
        "SELECT q.n / nullif(q.n + (SELECT count(*) FROM core.er_contact) "
        "+ (SELECT count(*) FROM core.police_person), 0) "
        "FROM (SELECT count(*) AS n FROM quality.quarantine WHERE run_id = $run AND stage <> 'ingest') q"
    ),
    "rows_er_contact": "SELECT count(*) FROM core.er_contact",
    "rows_police_accident": "SELECT count(*) FROM core.police_accident",
    "rows_police_person": "SELECT count(*) FROM core.police_person",
    "rows_casualty": "SELECT count(*) FROM core.casualty",
}


def record_run_ratios(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, float | None]:
    """Store (replace) this run's key ratios in ``quality.run_ratio``; returns them."""
    values: dict[str, float | None] = {}
    for name, sql in RATIO_SQL.items():
        row = con.execute(sql, {"run": run_id} if "$run" in sql else None).fetchone()
        values[name] = None if row is None or row[0] is None else float(row[0])
    con.executemany(
        "INSERT OR REPLACE INTO quality.run_ratio (run_id, ratio, value) VALUES (?, ?, ?)",
        [[run_id, k, v] for k, v in values.items()],
    )
    return values


def _fmt(value: float | None, share: bool) -> str:
    if value is None:
        return "–"
    return f"{value:.1%}" if share else f"{value:,.0f}"


def quality_summary_markdown(
    con: duckdb.DuckDBPyConnection, run_id: str, docs_index: Path | None = None
) -> str:
    """The one-page quality summary of a run, as markdown (tables + failures + Data Docs path)."""
    stages = con.execute(
        "SELECT s.stage, s.n_expectations, s.n_failed, s.n_critical_failed, "
        "(SELECT count(*) FROM quality.quarantine q WHERE q.run_id = s.run_id AND q.stage = s.stage) "
        "FROM quality.run_stage_summary s WHERE s.run_id = ? ORDER BY s.validated_at", [run_id],
    ).fetchall()
    lines = [f"# Quality summary, run `{run_id}`", "",
             "| stage | expectations | failed | critical failed | rows quarantined |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {s} | {n} | {f} | {c} | {q} |" for s, n, f, c, q in stages]
    n_ingest = con.execute(
        "SELECT count(*) FROM quality.quarantine WHERE run_id = ? AND stage = 'ingest'", [run_id]
    ).fetchone()[0]
    lines += ["", f"Rows quarantined at ingest: {n_ingest}", ""]
    failures = con.execute(
        "SELECT stage, suite, expectation, coalesce(column_name, ''), critical, unexpected_count, "
        "json_extract_string(details, '$.why') FROM quality.validation_result "
        "WHERE run_id = ? AND NOT success ORDER BY critical DESC, stage, suite", [run_id],
    ).fetchall()
    gate = "**closed: publication stopped**" if any(f[4] for f in failures) else "open"
    lines += [f"Publication gate: {gate}", ""]
    if failures:
        lines += ["| level | stage | expectation | column | unexpected | why |", "|---|---|---|---|---:|---|"]
        lines += [
            f"| {'CRITICAL' if crit else 'row/warning'} | {st} | {su}.{ex} | {col} | "
            f"{'' if n is None else n} | {(why or '').replace('|', '/')} |"
            for st, su, ex, col, crit, n, why in failures
        ]
        lines.append("")
    ratios = dict(con.execute(
        "SELECT ratio, value FROM quality.run_ratio WHERE run_id = ?", [run_id]
    ).fetchall())
    if ratios:
        lines += ["| ratio | tonight |", "|---|---:|"]
        lines += [f"| {k} | {_fmt(v, k.endswith('share'))} |" for k, v in sorted(ratios.items())]
        lines.append("")
    lines.append(f"Data Docs: `{docs_index}`" if docs_index else "Data Docs: not rendered")
    return "\n".join(lines)


def publish_summary_artifact(
    con: duckdb.DuckDBPyConnection, run_id: str, docs_index: Path | None = None
) -> str | None:
    """Attach the summary to the current Prefect flow run (no-op outside a Prefect run)."""
    if "prefect" not in sys.modules:  # no flow can be running; importing Prefect costs seconds
        return None
    try:
        from prefect.artifacts import create_markdown_artifact
        from prefect.context import FlowRunContext, TaskRunContext
    except ImportError:  # pragma: no cover - prefect is a dependency
        return None
    if FlowRunContext.get() is None and TaskRunContext.get() is None:
        return None
    markdown = quality_summary_markdown(con, run_id, docs_index)
    try:
        create_markdown_artifact(markdown=markdown, key="quality-summary",
                                 description=f"Quality gates of run {run_id}")
    except Exception as exc:  # an artifact is a report; it must never fail the run
        log.warning("could not create the quality summary artifact: %s", exc)
        return None
    log.info("quality summary artifact created (Data Docs: %s)", docs_index)
    return markdown
