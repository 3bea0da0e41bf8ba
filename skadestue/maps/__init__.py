"""Maps and reports for the lokalråd and the kredsråd (issue 8, outputs.md §5).

- ``render(settings, out_dir, kommuner=..., period=..., reports=..., half=...)``: static maps
  (A4 PNG 200 dpi + PDF), interactive HTML maps, annual reports and the kredsråd status.
- ``render_latest(settings, con=None)``: what the nightly flow calls after publication; writes
  ``<publish_dir>/maps``.

Hotspot counts come from the lokalråd tier only; report statistics are suppressed with the
same k (``skadestue.maps.suppress``).
"""

from skadestue.maps.data import MapDataError
from skadestue.maps.render import render, render_kredsraad_status, render_latest, render_nightly

__all__ = ["MapDataError", "render", "render_kredsraad_status", "render_latest", "render_nightly"]
