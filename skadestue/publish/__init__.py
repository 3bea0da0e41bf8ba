"""Publication of the hotspot layers (outputs.md §2): engineers' tier and lokalråd tier."""

from __future__ import annotations

from skadestue.publish.layers import LAYER_COLUMNS, UnexpectedColumnError, check_columns
from skadestue.publish.suppression import suppress_counts
from skadestue.publish.writer import PublishError, PublishReport, publish_layers

__all__ = [
    "LAYER_COLUMNS",
    "PublishError",
    "PublishReport",
    "UnexpectedColumnError",
    "check_columns",
    "publish_layers",
    "suppress_counts",
]
