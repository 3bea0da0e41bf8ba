"""Process environment for running the flow offline: Prefect and Great Expectations.

Must run before ``prefect`` or ``great_expectations`` is imported. Values already set by the
operator win.
"""

from __future__ import annotations

import os
from pathlib import Path


def prepare_environment(prefect_home: Path | None = None) -> None:
    """Project-local Prefect home, a generous ephemeral-server start-up, no analytics."""
    home = prefect_home or Path.cwd() / ".prefect"
    os.environ.setdefault("PREFECT_HOME", str(home))
    # The first start of the ephemeral server migrates its SQLite database: over a minute on
    # a fresh machine, far beyond Prefect's default of 20 s.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "skadestue,geodata")
    # Library code logs outside flow runs too (tests, the CLI before the flow starts).
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    os.environ.setdefault("PREFECT_UI_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
