"""Step 5 of the nightly run: fold ER return visits, link ER events to injured police
persons with Splink 5, and build core.casualty (design.md, outputs.md §1).

Public surface: :func:`link_casualties` and :class:`LinkReport`.
"""

from __future__ import annotations

from skadestue.link.pipeline import LinkReport, link_casualties

__all__ = ["LinkReport", "link_casualties"]
