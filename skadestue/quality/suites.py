"""The expectation suites in ``expectations/*.json``: one JSON file per suite, one table each.

A file looks like ``{"name", "stage", "table", "expectations": [{"type", "kwargs", "meta"}]}``.
Every expectation carries ``meta.critical`` (a failure stops publication) and ``meta.why``
(shown to the operator). A stage may have several suites (``raw_police`` validates both
``staging.police_accident`` and ``staging.police_person``); they are found by their ``stage``.
Value sets that mirror ``skadestue.vocab`` name the tuple in ``meta.vocab`` so a test keeps
them in sync.

Row-level expectations (``meta.row_level: true``, never critical) send the rows that break them
to ``quality.quarantine`` and out of the table later stages read. Their suite then names that
table in ``"quarantine": {"source", "table", "key": [...], "version": "delivery_id",
"cascade": [tables sharing the key]}``; ``version`` (optional) matches the validated row to
the version the target table kept (staging holds every delivery's version, core the newest).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from skadestue.config import PROJECT_ROOT

EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"

#: The stages of the nightly flow that have suites (design.md), in flow order.
STAGES = ("raw_er", "raw_police", "geocoded", "linked", "hotspots")

#: Expectation kwargs that name columns of the validated table.
_COLUMN_KWARGS = ("column", "column_A", "column_B")
_COLUMN_LIST_KWARGS = ("column_list",)
_TABLE_RE = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")


class SuiteError(ValueError):
    """A suite file is malformed (bad JSON, unknown stage, missing ``meta.critical`` ...)."""


@dataclass(frozen=True)
class QuarantineTarget:
    """Where a suite's row-level failures are removed from, and how rows are identified."""

    source: str  # er_contact | police_accident | police_person (quality.quarantine.source)
    table: str  # the table later stages read, e.g. core.er_contact
    key: tuple[str, ...]  # record key columns, present in the validated table and the target
    version: str | None = None  # column matching the validated version to the kept one
    cascade: tuple[str, ...] = ()  # tables whose rows with the same key go too


#: Expectation types whose failing rows can be selected in SQL (see quality.quarantine).
ROW_LEVEL_TYPES = (
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_not_match_regex",
    "expect_column_pair_values_a_to_be_greater_than_b",
    "expect_column_pair_values_to_be_equal",
)


@dataclass(frozen=True)
class SuiteSpec:
    """One suite as read from its JSON file."""

    name: str
    stage: str
    table: str
    expectations: tuple[dict[str, Any], ...]
    path: Path
    quarantine: QuarantineTarget | None = None

    @property
    def row_level(self) -> list[dict[str, Any]]:
        """The expectations whose failing rows are quarantined instead of stopping the run."""
        return [e for e in self.expectations if e["meta"].get("row_level")]

    @property
    def columns(self) -> list[str]:
        """The table columns the suite's expectations refer to, in first-use order."""
        seen: dict[str, None] = {}
        for exp in self.expectations:
            seen.update(dict.fromkeys(expectation_columns(exp)))
        return list(seen)

    def gx_expectations(self) -> list[dict[str, Any]]:
        """Expectation dicts for ``gx.ExpectationSuite(expectations=...)``.

        GX's own ``severity`` is derived from ``meta.critical`` so Data Docs show it too.
        """
        return [
            {
                "type": e["type"],
                "kwargs": dict(e["kwargs"]),
                "meta": dict(e["meta"]),
                "severity": "critical" if e["meta"]["critical"] else "warning",
            }
            for e in self.expectations
        ]


def expectation_columns(expectation: dict[str, Any]) -> list[str]:
    """Columns named by one expectation's kwargs (``column``, ``column_A/B``, ``column_list``)."""
    kwargs = expectation.get("kwargs", {})
    cols = [kwargs[k] for k in _COLUMN_KWARGS if k in kwargs]
    for k in _COLUMN_LIST_KWARGS:
        cols.extend(kwargs.get(k, []))
    cols.extend(_condition_columns(kwargs.get("row_condition")))
    return cols


def _condition_columns(condition: Any) -> list[str]:
    """Columns of a serialised GX row condition (``{"column": {"name": ...}}``, and/or lists)."""
    if isinstance(condition, dict):
        found = []
        column = condition.get("column")
        if isinstance(column, dict) and "name" in column:
            found.append(column["name"])
        for sub in condition.get("conditions", []):
            found.extend(_condition_columns(sub))
        return found
    return []


def _check_spec(data: dict[str, Any], path: Path) -> None:
    """Raise SuiteError with the file name when a suite breaks the format above."""
    for key in ("name", "stage", "table", "expectations"):
        if key not in data:
            raise SuiteError(f"{path.name}: missing key {key!r}")
    if data["stage"] not in STAGES:
        raise SuiteError(f"{path.name}: unknown stage {data['stage']!r}; expected one of {STAGES}")
    if not _TABLE_RE.match(data["table"]):
        raise SuiteError(f"{path.name}: table must be 'schema.table', got {data['table']!r}")
    for i, exp in enumerate(data["expectations"]):
        meta = exp.get("meta", {})
        if not str(exp.get("type", "")).startswith("expect_") or not isinstance(exp.get("kwargs"), dict):
            raise SuiteError(f"{path.name}: expectation #{i} needs 'type' (expect_...) and 'kwargs'")
        if not isinstance(meta.get("critical"), bool):
            raise SuiteError(f"{path.name}: expectation #{i} ({exp['type']}) needs meta.critical true|false")
        if meta.get("row_level"):
            _check_row_level(exp, i, data, path)
    _check_quarantine(data, path)


def _check_row_level(exp: dict[str, Any], i: int, data: dict[str, Any], path: Path) -> None:
    """A row-level expectation is not critical, has a SQL form and a quarantine target."""
    where = f"{path.name}: expectation #{i} ({exp['type']})"
    if exp["meta"]["critical"]:
        raise SuiteError(f"{where} cannot be both critical and row_level")
    if exp["type"] not in ROW_LEVEL_TYPES:
        raise SuiteError(f"{where}: row_level works only for {', '.join(ROW_LEVEL_TYPES)}")
    if "quarantine" not in data:
        raise SuiteError(f"{where} is row_level but the suite has no 'quarantine' target")
    if "mostly" in exp["kwargs"] or "row_condition" in exp["kwargs"]:
        raise SuiteError(f"{where}: row_level expectations take no 'mostly'/'row_condition' (every bad row goes)")


def _check_quarantine(data: dict[str, Any], path: Path) -> None:
    """The optional ``quarantine`` block names a source, a schema.table and key columns."""
    q = data.get("quarantine")
    if q is None:
        return
    if not isinstance(q, dict) or not q.get("source") or not q.get("key") or not _TABLE_RE.match(str(q.get("table", ""))):
        raise SuiteError(f"{path.name}: 'quarantine' needs source, table ('schema.table') and key [columns]")
    for t in q.get("cascade", []):
        if not _TABLE_RE.match(t):
            raise SuiteError(f"{path.name}: quarantine cascade table must be 'schema.table', got {t!r}")


def read_suite(path: Path) -> SuiteSpec:
    """Read and check one suite file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SuiteError(f"{path.name}: not valid JSON ({e})") from e
    _check_spec(data, path)
    return SuiteSpec(
        name=data["name"],
        stage=data["stage"],
        table=data["table"],
        expectations=tuple(data["expectations"]),
        path=path,
        quarantine=_quarantine_target(data.get("quarantine")),
    )


def _quarantine_target(q: dict[str, Any] | None) -> QuarantineTarget | None:
    if q is None:
        return None
    return QuarantineTarget(
        source=q["source"], table=q["table"], key=tuple(q["key"]),
        version=q.get("version"), cascade=tuple(q.get("cascade", ())),
    )


@lru_cache(maxsize=None)
def _suites_in(directory: Path) -> tuple[SuiteSpec, ...]:
    specs = tuple(read_suite(p) for p in sorted(directory.glob("*.json")))
    names = [s.name for s in specs]
    if len(names) != len(set(names)):
        raise SuiteError(f"{directory}: duplicate suite names {sorted(names)}")
    return specs


def all_suites(directory: Path = EXPECTATIONS_DIR) -> tuple[SuiteSpec, ...]:
    """Every suite in ``directory`` (read once per process)."""
    return _suites_in(directory.resolve())


def suites_for_stage(stage: str, directory: Path = EXPECTATIONS_DIR) -> list[SuiteSpec]:
    """The suites a stage runs; a clear error for an unknown stage or a stage without suites."""
    if stage not in STAGES:
        raise SuiteError(f"unknown stage {stage!r}; expected one of {STAGES}")
    specs = [s for s in all_suites(directory) if s.stage == stage]
    if not specs:
        raise SuiteError(f"no suite in {directory} has stage {stage!r}")
    return specs
