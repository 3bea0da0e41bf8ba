"""Quality gates at night (issue 9): check what the night changed, not the whole warehouse.

A suite's expectations are of two kinds:

* **row-wise**: the column (pair) map expectations without ``mostly`` (not null, between, in
  set, regex, pair comparisons; with or without a ``row_condition``). Their verdict on a table
  is the verdict on each row, so a row that passed once passes again as long as the row, the
  suite and its parameters are unchanged;
* **table-wise**: everything else (row counts, uniqueness, ``mostly`` shares). They depend on
  the whole table.

The first validation of a suite (and any after the suite file, its parameters or ``--full``
changed: the suite's fingerprint in ``ops.stage_state``, stage ``quality``) runs GX over the
whole table, as before. When it has no critical failure, the hashes of the validated rows (over
the suite's columns) are kept in ``quality.validated_row``. On later nights:

* the row-wise expectations run in GX over the rows whose hash is not kept (new or changed
  rows, e.g. tonight's delivery); with none, they pass without starting GX;
* the table-wise expectations run as one SQL query each over the whole table (cheap
  aggregates in DuckDB, the same verdict and counts as GX: ``tests/test_quality_night.py``);
  a type without an SQL form here runs in GX over the whole table.

When a night finds a critical failure, the suite is validated again over the whole table in GX,
as before (full counts, a complete Data Docs page), and the night's rows are kept out of
``quality.validated_row``, so the next night checks them again and stops publication again,
exactly as a whole-table gate would. Data Docs of a passing night show the row-wise
expectations on the night's rows (suite ``<name>.night_rows``); the table-wise verdicts are in
``quality.validation_result`` and the run summary. The
``today`` parameter is left out of the fingerprint: it only bounds dates from above and grows,
so a row that passed stays valid. Result rows of a night say how many rows were checked
(``element_count``) for row-wise expectations; table-wise ones count the whole table.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from typing import Any

import duckdb

from skadestue import state
from skadestue.quality.quarantine import _param, failing_rows_sql
from skadestue.quality.suites import ROW_LEVEL_TYPES, SuiteSpec

#: ops.stage_state stage name for the suites' fingerprints.
STATE_STAGE = "quality"
#: Bump when the hashing or the split changes (part of each suite's fingerprint).
VERSION = 1
#: Parameters left out of a suite's fingerprint (see module doc).
_UNSALTED = ("today",)
_MAP_TYPES = set(ROW_LEVEL_TYPES)


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def is_row_wise(exp: dict[str, Any]) -> bool:
    """A map expectation without ``mostly``: its table verdict is the verdict of every row."""
    return exp["type"] in _MAP_TYPES and exp["kwargs"].get("mostly") in (None, 1, 1.0)


def suite_fingerprint(spec: SuiteSpec, columns: list[str], params: dict[str, Any]) -> str:
    """What a suite's row verdicts depend on: its expectations, table, columns, parameters."""
    salt = {"version": VERSION, "table": spec.table, "columns": columns,
            "expectations": list(spec.expectations),
            "params": {k: v for k, v in sorted(params.items()) if k not in _UNSALTED}}
    return hashlib.sha256(json.dumps(salt, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _hash_sql(columns: list[str], alias: str = "") -> str:
    return f"hash({', '.join(alias + _q(c) for c in columns)})" if columns else "hash(1)"


@dataclass
class SuitePlan:
    """How a suite is validated tonight."""

    spec: SuiteSpec
    columns: list[str]
    fingerprint: str
    night: bool                     # False: the whole table through GX (first time, changes)
    delta_table: str | None = None  # temp table of the new/changed rows (night)
    n_delta: int = 0

    @property
    def row_wise(self) -> list[dict[str, Any]]:
        return [e for e in self.spec.expectations if is_row_wise(e)]

    def row_spec(self) -> SuiteSpec:
        """The row-wise expectations as their own GX suite (registered under its own name)."""
        return replace(self.spec, name=f"{self.spec.name}.night_rows",
                       expectations=tuple(self.row_wise))


def plan_suite(con: duckdb.DuckDBPyConnection, spec: SuiteSpec, columns: list[str],
               params: dict[str, Any]) -> SuitePlan:
    """Night mode when the suite passed before with the same fingerprint; then the rows not
    validated yet are put in a temp table (one anti-join of row hashes in DuckDB)."""
    fp = suite_fingerprint(spec, columns, params)
    plan = SuitePlan(spec, columns, fp, night=state.stored(con, STATE_STAGE, spec.name) == fp)
    if not plan.night:
        return plan
    name = "_gate_delta_" + re.sub(r"[^a-z0-9_]", "_", spec.name.lower())
    cols = ", ".join(_q(c) for c in columns) + ", " if columns else ""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {name} AS
        SELECT t.* FROM (SELECT {cols}{_hash_sql(columns)} AS _row_hash FROM {spec.table}) AS t
        ANTI JOIN (SELECT row_hash FROM quality.validated_row WHERE suite = ?) AS v
          ON t._row_hash = v.row_hash""", [spec.name])
    plan.delta_table = name
    plan.n_delta = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
    return plan


def remember(con: duckdb.DuckDBPyConnection, plan: SuitePlan, run_id: str) -> None:
    """After a run without critical failures: keep the validated rows' hashes and the suite's
    fingerprint (one transaction), so the next night checks only rows not seen here."""
    spec = plan.spec
    con.execute("BEGIN TRANSACTION")
    try:
        if not plan.night:
            con.execute("DELETE FROM quality.validated_row WHERE suite = ?", [spec.name])
            con.execute(f"INSERT INTO quality.validated_row SELECT DISTINCT ?, {_hash_sql(plan.columns)} "
                        f"FROM {spec.table}", [spec.name])
        elif plan.n_delta:
            con.execute(f"INSERT INTO quality.validated_row SELECT DISTINCT ?, _row_hash "
                        f"FROM {plan.delta_table}", [spec.name])
            kept, rows = con.execute(
                f"SELECT (SELECT count(*) FROM quality.validated_row WHERE suite = ?), "
                f"(SELECT count(*) FROM {spec.table})", [spec.name]).fetchone()
            if kept > 2 * rows + 10_000:  # rows changed many times: drop hashes no row has now
                con.execute(f"""
                    DELETE FROM quality.validated_row v WHERE v.suite = ? AND NOT EXISTS (
                        SELECT 1 FROM {spec.table} t WHERE {_hash_sql(plan.columns, 't.')} = v.row_hash)""",
                            [spec.name])
        state.record(con, STATE_STAGE, spec.name, plan.fingerprint, run_id)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def drop(con: duckdb.DuckDBPyConnection, plan: SuitePlan) -> None:
    if plan.delta_table:
        con.execute(f"DROP TABLE IF EXISTS {plan.delta_table}")


# -- table-wise expectations in SQL ----------------------------------------------------------------

_TABLE_SQL_TYPES = ("expect_table_row_count_to_be_between", "expect_column_values_to_be_unique",
                    "expect_compound_columns_to_be_unique")


def _plain(value: Any) -> Any:
    """A value as JSON can hold it (dates and the like as text)."""
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def has_sql_form(exp: dict[str, Any]) -> bool:
    """Whether :func:`table_result` computes this table-wise expectation in SQL."""
    kw = exp["kwargs"]
    if "row_condition" in kw:
        return False
    if exp["type"] in _TABLE_SQL_TYPES:
        return exp["type"] != "expect_compound_columns_to_be_unique" or \
            kw.get("ignore_row_if", "all_values_are_missing") == "all_values_are_missing"
    if exp["type"].startswith("expect_column_pair_"):
        return kw.get("ignore_row_if") == "either_value_is_missing"
    return exp["type"] in _MAP_TYPES


def table_result(con: duckdb.DuckDBPyConnection, table: str, exp: dict[str, Any],
                 params: dict[str, Any]) -> dict[str, Any]:
    """``{success, element_count, unexpected_count, result}`` of one table-wise expectation
    over the whole table, as GX reports it (``result``: observed_value / unexpected_percent /
    partial_unexpected_counts, for the details JSON)."""
    kind, kw = exp["type"], exp["kwargs"]
    n = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    if kind == "expect_table_row_count_to_be_between":
        lo, hi = _param(kw.get("min_value"), params), _param(kw.get("max_value"), params)
        ok = (lo is None or n >= lo) and (hi is None or n <= hi)
        return {"success": ok, "element_count": n, "unexpected_count": None,
                "result": {"observed_value": n}}
    if kind in ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"):
        cols = [kw["column"]] if "column" in kw else list(kw["column_list"])
        keep = " AND ".join(f"{_q(c)} IS NOT NULL" for c in cols) if "column" in kw else \
            "NOT (" + " AND ".join(f"{_q(c)} IS NULL" for c in cols) + ")"
        group = ", ".join(_q(c) for c in cols)
        dup, considered = con.execute(f"""
            SELECT coalesce(sum(k) FILTER (WHERE k > 1), 0), coalesce(sum(k), 0) FROM (
                SELECT count(*) AS k FROM {table} WHERE {keep} GROUP BY {group})""").fetchone()
        values = con.execute(f"""
            SELECT {group}, count(*) AS k FROM {table} WHERE {keep} GROUP BY {group}
            HAVING count(*) > 1 ORDER BY k DESC, {group} LIMIT 5""").fetchall() if dup else []
        counts = [{"value": _plain(v[0]) if len(cols) == 1 else
                   {c: _plain(x) for c, x in zip(cols, v[:-1])}, "count": v[-1]} for v in values]
        return {"success": dup == 0, "element_count": n, "unexpected_count": int(dup),
                "result": {"unexpected_percent": 100.0 * dup / considered if considered else None,
                           **({"partial_unexpected_counts": counts} if counts else {})}}
    # map expectations with mostly
    predicate, binds = failing_rows_sql(exp, params)
    if kind == "expect_column_values_to_not_be_null":
        domain = "true"
    elif kind.startswith("expect_column_pair_"):
        domain = f"{_q(kw['column_A'])} IS NOT NULL AND {_q(kw['column_B'])} IS NOT NULL"
    else:
        domain = f"{_q(kw['column'])} IS NOT NULL"
    bad, considered = con.execute(
        f"SELECT count(*) FILTER (WHERE {predicate}), count(*) FILTER (WHERE {domain}) FROM {table}",
        binds).fetchone()
    mostly = kw.get("mostly")
    if mostly is None:
        ok = bad == 0
    else:
        ok = considered == 0 or (considered - bad) / considered >= mostly
    return {"success": bool(ok), "element_count": n, "unexpected_count": int(bad),
            "result": {"unexpected_percent": 100.0 * bad / considered if considered else None}}
