"""The expectation suites in ``expectations/*.json``: one JSON file per suite, one table each.

A file looks like ``{"name", "stage", "table", "expectations": [{"type", "kwargs", "meta"}]}``.
Every expectation carries ``meta.critical`` (a failure stops publication) and ``meta.why``
(shown to the operator). A stage may have several suites (``raw_police`` validates both
``staging.police_accident`` and ``staging.police_person``); they are found by their ``stage``.
Value sets that mirror ``skadestue.vocab`` name the tuple in ``meta.vocab`` so a test keeps
them in sync.
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
class SuiteSpec:
    """One suite as read from its JSON file."""

    name: str
    stage: str
    table: str
    expectations: tuple[dict[str, Any], ...]
    path: Path

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
