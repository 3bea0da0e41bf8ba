"""Hotspot layers (outputs.md §2): grid cells, junctions and road stretches, built into marts.*."""

from __future__ import annotations

from skadestue.hotspots.build import HotspotReport, build_hotspots
from skadestue.hotspots.grid import kvadratnet_cell_id
from skadestue.hotspots.periods import Period, analysis_periods

__all__ = ["HotspotReport", "Period", "analysis_periods", "build_hotspots", "kvadratnet_cell_id"]
