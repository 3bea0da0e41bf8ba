"""Traffic-safety plans: import the municipalities' measures and join them to the hotspots."""

from __future__ import annotations

from skadestue.plan.coverage import build_plan_coverage
from skadestue.plan.importer import PlanImportError, PlanImportReport, import_plan, read_plan

__all__ = ["PlanImportError", "PlanImportReport", "build_plan_coverage", "import_plan", "read_plan"]
