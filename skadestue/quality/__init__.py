"""Quality gates with Great Expectations: suites in ``expectations/``, results in ``quality``.

Usage in the nightly flow::

    from skadestue.quality import validate_stage, raise_for_critical, default_docs_dir
    checks = [validate_stage(con, s, run_id, settings, default_docs_dir(settings))
              for s in ("raw_er", "raw_police")]
    ...
    raise_for_critical(checks)   # before publish_layers
"""

from __future__ import annotations

from skadestue.quality.gate import (
    CriticalExpectationFailed,
    critical_failures,
    raise_for_critical,
    stage_gate,
)
from skadestue.quality.gx_runtime import prewarm
from skadestue.quality.quarantine import quarantine_failed_rows
from skadestue.quality.report import publish_summary_artifact, quality_summary_markdown, record_run_ratios
from skadestue.quality.suites import STAGES, SuiteError, SuiteSpec, all_suites, suites_for_stage
from skadestue.quality.validate import (
    StageValidation,
    default_docs_dir,
    suite_parameters,
    validate_stage,
)

__all__ = [
    "STAGES",
    "CriticalExpectationFailed",
    "StageValidation",
    "SuiteError",
    "SuiteSpec",
    "all_suites",
    "critical_failures",
    "default_docs_dir",
    "prewarm",
    "publish_summary_artifact",
    "quality_summary_markdown",
    "quarantine_failed_rows",
    "record_run_ratios",
    "raise_for_critical",
    "stage_gate",
    "suite_parameters",
    "suites_for_stage",
    "validate_stage",
]
