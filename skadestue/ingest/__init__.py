"""Ingestion of emergency-ward and police deliveries into raw/staging, and the core rebuild.

``ingest_inbox(con, settings, run_id)`` loads every new file of the inbox (one transaction per
delivery, CPR pseudonymised as it is read); ``build_core(con, settings)`` rebuilds the core
entities from staging with the newest delivery per key winning.
"""

from __future__ import annotations

from skadestue.ingest.core import build_core
from skadestue.ingest.delivery import (
    DeliveryResult,
    IngestAccountingError,
    IngestReport,
    ingest_inbox,
)

__all__ = ["DeliveryResult", "IngestAccountingError", "IngestReport", "build_core", "ingest_inbox"]
