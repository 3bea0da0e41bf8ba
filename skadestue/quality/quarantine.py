"""Row-level quality failures: the offending rows go to ``quality.quarantine`` and out of the
table later stages read, so the run goes on without them.

A row-level expectation (``meta.row_level: true``) is validated by GX like any other; when it
fails, the same condition is selected here in DuckDB SQL (GX's SUMMARY result only holds a
few example values, and pandas row indexes mean nothing once the table changes). The SQL
form of each expectation type mirrors GX's semantics (NULLs are not "unexpected" except for
``not_be_null``; pair expectations ignore rows with a missing side), and a test checks that
both count the same rows.
"""

from __future__ import annotations

import logging
from typing import Any

import duckdb

from skadestue.quality.suites import SuiteSpec

log = logging.getLogger(__name__)

_CPR_LIKE_SQL = r"\d{6}-?\d{4}"
_REDACTED = "[CPR-lignende tal fjernet]"


def _param(value: Any, params: dict[str, Any]) -> Any:
    """Resolve a ``{"$PARAMETER": name}`` placeholder like GX does."""
    if isinstance(value, dict) and "$PARAMETER" in value:
        return params[value["$PARAMETER"]]
    return value


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def failing_rows_sql(
    exp: dict[str, Any], params: dict[str, Any], alias: str = ""
) -> tuple[str, list[Any]]:
    """``(predicate, bind values)`` that is true exactly for the rows GX counts as unexpected.

    ``alias`` prefixes the column names (``"v."``) when the table is joined.
    """
    kw = exp["kwargs"]
    kind = exp["type"]
    if kind.startswith("expect_column_pair_"):
        a, b = alias + _q(kw["column_A"]), alias + _q(kw["column_B"])
        both = f"{a} IS NOT NULL AND {b} IS NOT NULL"
        if kind == "expect_column_pair_values_to_be_equal":
            return f"{both} AND {a} <> {b}", []
        op = "<" if kw.get("or_equal") else "<="
        return f"{both} AND {a} {op} {b}", []
    col = alias + _q(kw["column"])
    if kind == "expect_column_values_to_not_be_null":
        return f"{col} IS NULL", []
    if kind == "expect_column_values_to_be_in_set":
        return f"{col} IS NOT NULL AND NOT list_contains(?, {col})", [list(kw["value_set"])]
    if kind == "expect_column_values_to_match_regex":
        return f"{col} IS NOT NULL AND NOT regexp_matches(CAST({col} AS VARCHAR), ?)", [kw["regex"]]
    if kind == "expect_column_values_to_not_match_regex":
        return f"{col} IS NOT NULL AND regexp_matches(CAST({col} AS VARCHAR), ?)", [kw["regex"]]
    if kind == "expect_column_values_to_be_between":
        parts, binds = [], []
        lo, hi = _param(kw.get("min_value"), params), _param(kw.get("max_value"), params)
        if lo is not None:
            parts.append(f"{col} {'<=' if kw.get('strict_min') else '<'} ?")
            binds.append(lo)
        if hi is not None:
            parts.append(f"{col} {'>=' if kw.get('strict_max') else '>'} ?")
            binds.append(hi)
        return f"{col} IS NOT NULL AND ({' OR '.join(parts) or 'false'})", binds
    raise ValueError(f"no SQL form for row-level expectation {kind}")


def _value_sql(exp: dict[str, Any]) -> str:
    """The offending value(s) as text, CPR-like digit runs redacted."""
    kw = exp["kwargs"]
    cols = [kw["column_A"], kw["column_B"]] if "column_A" in kw else [kw["column"]]
    text = " || '; ' || ".join(
        f"'{c}=' || coalesce(CAST(v.{_q(c)} AS VARCHAR), '')" for c in cols
    ) if len(cols) > 1 else f"CAST(v.{_q(cols[0])} AS VARCHAR)"
    return f"regexp_replace({text}, '{_CPR_LIKE_SQL}', '{_REDACTED}', 'g')"


def _column_label(exp: dict[str, Any]) -> str:
    kw = exp["kwargs"]
    return f"{kw['column_A']},{kw['column_B']}" if "column_A" in kw else kw["column"]


def _reason(spec: SuiteSpec, exp: dict[str, Any]) -> str:
    """What the quarantine row says: which expectation caught it, and why that matters."""
    return f"{spec.name}.{exp['type']}[{_column_label(exp)}]: {exp['meta'].get('why', '')}".strip()


def _columns_of(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    schema, name = table.split(".", 1)
    return {
        r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_catalog = current_database() "
            "AND table_schema = ? AND table_name = ?", [schema, name],
        ).fetchall()
    }


def quarantine_expectation(
    con: duckdb.DuckDBPyConnection,
    spec: SuiteSpec,
    exp: dict[str, Any],
    run_id: str,
    params: dict[str, Any],
) -> int:
    """Quarantine the rows of ``spec.table`` (kept by the target table) that break ``exp``;
    delete them from the target and its cascade tables. Returns the number of rows."""
    target = spec.quarantine
    predicate, binds = failing_rows_sql(exp, params, alias="v.")
    match = list(target.key) + ([target.version] if target.version else [])
    on = " AND ".join(f"t.{_q(c)} = v.{_q(c)}" for c in match)
    cols = _columns_of(con, spec.table)
    delivery = "v.delivery_id" if "delivery_id" in cols else "NULL"
    line_no = "v.line_no" if "line_no" in cols else "NULL"
    file_name = "(SELECT d.file_name FROM ops.delivery d WHERE d.delivery_id = v.delivery_id)" \
        if "delivery_id" in cols else "NULL"
    key_text = "concat_ws('/', " + ", ".join(f"CAST(v.{_q(c)} AS VARCHAR)" for c in target.key) + ")"
    key_cols = ", ".join(f"v.{_q(c)}" for c in target.key)
    con.execute("DROP TABLE IF EXISTS _quality_bad")
    con.execute(
        f"CREATE TEMP TABLE _quality_bad AS SELECT DISTINCT {key_cols}, {delivery} AS delivery_id, "
        f"{file_name} AS file_name, {line_no} AS line_no, {key_text} AS record_key, "
        f"{_value_sql(exp)} AS value "
        f"FROM {spec.table} v JOIN {target.table} t ON {on} WHERE {predicate}",
        binds,
    )
    n = con.execute("SELECT count(*) FROM _quality_bad").fetchone()[0]
    if n:
        con.execute(
            "INSERT INTO quality.quarantine (run_id, delivery_id, source, stage, file_name, line_no, "
            "record_key, column_name, value, reason) "
            "SELECT ?, delivery_id, ?, ?, file_name, line_no, record_key, ?, value, ? FROM _quality_bad",
            [run_id, target.source, spec.stage, _column_label(exp), _reason(spec, exp)],
        )
        key_on = " AND ".join(f"x.{_q(c)} = b.{_q(c)}" for c in target.key)
        for table in (target.table, *target.cascade):
            con.execute(f"DELETE FROM {table} x WHERE EXISTS (SELECT 1 FROM _quality_bad b WHERE {key_on})")
        log.warning("%s: quarantined %d row(s) of %s: %s", spec.stage, n, target.table, _reason(spec, exp))
    con.execute("DROP TABLE _quality_bad")
    return int(n)


def quarantine_failed_rows(
    con: duckdb.DuckDBPyConnection,
    specs: list[SuiteSpec],
    run_id: str,
    results: list[dict[str, Any]],
    params: dict[str, Any],
) -> dict[str, int]:
    """Quarantine the rows of every failed row-level expectation of ``specs``.

    ``results`` are the stage's ``quality.validation_result`` rows (only failed expectations
    are looked at). Returns ``{"suite.expectation[column]": rows quarantined}``.
    """
    failed = {(r["suite"], r["expectation"], r["column_name"]) for r in results if not r["success"]}
    counts: dict[str, int] = {}
    for spec in specs:
        for exp in spec.row_level:
            label = f"{spec.name}.{exp['type']}[{_column_label(exp)}]"
            if (spec.name, exp["type"], _column_label(exp)) not in failed:
                continue
            counts[label] = quarantine_expectation(con, spec, exp, run_id, params)
    return counts
