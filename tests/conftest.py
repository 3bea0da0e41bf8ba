"""Shared test set-up: offline Prefect/GX environment and the path of the real geodata."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from skadestue.runtime import prepare_environment

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

prepare_environment(REPO / ".prefect")
os.environ.setdefault("SKADESTUE_PSEUDONYM_KEY", "test-key-only-for-synthetic-people")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public geodata in ../shared/data (CI has it there too)."""
    if not SHARED_DATA.exists():
        raise RuntimeError(f"The shared test data is missing: expected it at {SHARED_DATA}")
    return SHARED_DATA
