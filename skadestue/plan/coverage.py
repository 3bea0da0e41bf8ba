"""plan_coverage (outputs.md §4): the gaps in a traffic-safety plan and before/after tables.

``build_plan_coverage`` is called by ``build_hotspots`` at the end of every build (so the
nightly flow needs no extra step) and by ``skadestue plan import`` after a new plan.
"""

from __future__ import annotations

import logging
import re

import duckdb

from skadestue.config import Settings
from skadestue.db import query

log = logging.getLogger(__name__)

#: Full years compared on each side of a measure (fewer when the data do not reach).
MAX_YEARS = 3
#: Besides every significant site (excess_flag), the rule-of-thumb sites ranked this high in
#: their kommune count as hotspots the plan should answer for.
TOP_N = 10
CAVEAT = (
    "Before/after without a comparison group. Measures are usually built where a bad spell "
    "of accidents drew attention, and such counts tend to fall back towards the site's long-run "
    "mean even without a measure (regression to the mean); general trends and changes in "
    "reporting also move the numbers. Read a fall as an upper bound of the measure's effect; "
    "compare with the site's expected_accidents/eb_accidents in hotspot_junction/hotspot_segment."
)


def build_plan_coverage(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, int]:
    """Rebuild marts.plan_coverage; returns the number of hotspots, gaps and measure rows."""
    buffer_m = float(settings.publish.plan_buffer_m)
    params = {"buffer_m": buffer_m, "max_years": MAX_YEARS, "caveat": CAVEAT, "top_n": TOP_N}
    for statement in query("plan_coverage").split(";\n"):
        code = "\n".join(line for line in statement.splitlines() if not line.strip().startswith("--"))
        if code.strip():
            con.execute(code, {k: v for k, v in params.items() if re.search(rf"\${k}\b", code)})
    hotspots, gaps, measures = con.execute(
        "SELECT count(*) FILTER (WHERE row_type = 'hotspot'), count(*) FILTER (WHERE gap), "
        "count(*) FILTER (WHERE row_type = 'measure') FROM marts.plan_coverage"
    ).fetchone()
    log.info("plan coverage: %d hotspots, %d without a measure within %.0f m; %d measures done",
             hotspots, gaps, buffer_m, measures)
    return {"hotspots": hotspots, "gaps": gaps, "measures_done": measures}
