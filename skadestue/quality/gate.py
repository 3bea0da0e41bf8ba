"""The publication gate: a failed critical expectation stops publication.

Failed non-critical expectations are only reported (logged and stored).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from skadestue.quality.validate import StageValidation

log = logging.getLogger(__name__)


class CriticalExpectationFailed(RuntimeError):
    """Raised by :func:`raise_for_critical`; the flow lets it fail the run before publishing."""

    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        super().__init__(
            f"{len(failures)} critical expectation(s) failed, publication stopped: "
            + "; ".join(failures)
            + ". See quality.validation_result for this run and the Data Docs."
        )


def critical_failures(results: Iterable[StageValidation]) -> list[str]:
    """Every critical failure of the given stages, labelled ``suite.expectation[column]``."""
    return [f for r in results for f in r.critical_failures]


def stage_gate(results: Iterable[StageValidation]) -> bool:
    """True when publication may go ahead: no critical expectation failed in any stage."""
    failures = critical_failures(results)
    if failures:
        log.error("quality gate closed: %s", "; ".join(failures))
    return not failures


def raise_for_critical(results: Iterable[StageValidation]) -> None:
    """Raise CriticalExpectationFailed when any stage has a critical failure."""
    failures = critical_failures(results)
    if failures:
        raise CriticalExpectationFailed(failures)
