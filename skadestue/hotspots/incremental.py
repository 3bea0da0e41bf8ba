"""Which parts of the hotspot marts a build must redo (issue 9: a night's cost scales with
what changed, not with the warehouse).

The marts are built per analysis period (the window and each calendar year in it). A period's
fingerprint covers everything its rows are built from:

* the casualty rows dated in it (the columns the layers use), as per-year digests from ONE
  hash-aggregate scan of core.casualty (the window's fingerprint holds each of its years');
* the hotspot settings and ``VERSION`` (bump it when the build's output changes for the same
  input);
* the road network (gazetteer junctions, streets, road segments, kommuner, postcodes): one
  fingerprint, in every period's, so a new network rebuilds everything.

Everything else is per period too (Gi* runs on the window only; the observed-vs-expected model,
its comparable-site means and the ranks are fitted per period), except:

* the year rows' ``rule_flag`` (and the road windows' ``n_accidents_stretch``), which are the
  window row's: when the window is rebuilt and a year is not, the build copies them over
  (``fix_year_rows``; only rows whose value differs are written);
* ``marts.casualty_point`` (every casualty, any date): kept per injury year (part
  ``point:<year>``, ``point:none`` for no date) from the same scan;
* ``marts.plan_coverage`` (window hotspots, plan.measure, casualties of every year up to the
  window's end): part ``plan``, fingerprinted over all of those.

A changed year always changes the window (the window holds the year), so a rebuilt year is
always rebuilt together with the window. A period that left the list (the window moved on
when a new year closed) is deleted from the marts and forgotten.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import duckdb

from skadestue import state
from skadestue.config import Settings
from skadestue.hotspots.periods import Period

STAGE = "hotspots"
#: Part of every fingerprint: bump when the build's output changes for the same input.
VERSION = "hotspots-2026-11-25"

#: core.casualty columns the hotspot layers (and plan_coverage) read.
HOTSPOT_COLUMNS = (
    "casualty_id, uheld_id, injury_date, kommunekode, x, y, severity, road_user, source, geocode_uncertainty_m"
)
#: core.casualty columns marts.casualty_point copies (warehouse/queries/hotspot_casualty_point.sql).
POINT_COLUMNS = (
    "casualty_id, injury_date, injury_hour, road_user, counterpart, severity, age_band, sex, source, "
    "kommunekode, x, y"
)
#: The road network the layers are built on.
NETWORK_TABLES = ("junction", "street", "road_segment", "municipality", "postcode")

_YEAR_DIGESTS = f"""
SELECT year(injury_date) AS yr,
       count(*) AS n,
       count(*) FILTER (WHERE x IS NULL OR y IS NULL) AS n_unplaced,
       min(injury_date) AS first_date,
       bit_xor(hash({HOTSPOT_COLUMNS})) AS h_xor,
       sum(hash({HOTSPOT_COLUMNS})::HUGEINT) AS h_sum,
       bit_xor(hash({POINT_COLUMNS})) AS p_xor,
       sum(hash({POINT_COLUMNS})::HUGEINT) AS p_sum
FROM core.casualty
GROUP BY yr
"""


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def period_part(p: Period) -> str:
    """The ops.stage_state part of a period, e.g. 'period:window:2020-01-01:2024-12-31'."""
    return f"period:{p.kind}:{p.start.isoformat()}:{p.end.isoformat()}"


def point_part(year: int | None) -> str:
    return f"point:{'none' if year is None else year}"


@dataclass
class BuildPlan:
    """What this build redoes and what it leaves as it is."""

    periods: list[Period]
    fingerprints: dict[str, str] = field(default_factory=dict)     # part -> fingerprint (current)
    rebuild: list[Period] = field(default_factory=list)
    keep: list[Period] = field(default_factory=list)
    point_rebuild: list[int | None] = field(default_factory=list)  # injury years
    point_keep: list[int | None] = field(default_factory=list)
    plan_rebuild: bool = False
    stale_parts: list[str] = field(default_factory=list)           # stored parts to forget
    n_casualties: int = 0
    n_unplaced: int = 0
    n_outside_window: int = 0

    @property
    def window_rebuilt(self) -> bool:
        return any(p.kind == "window" for p in self.rebuild)


def network_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """One fingerprint of the gazetteer tables the layers are built on."""
    return _digest(*(state.fingerprint(con, f"SELECT * FROM gazetteer.{t}") for t in NETWORK_TABLES))


def plan_build(con: duckdb.DuckDBPyConnection, settings: Settings, periods: list[Period]) -> BuildPlan:
    """Fingerprint the input of every part and compare with what was built last time."""
    years = con.execute(_YEAR_DIGESTS).fetchall()
    plan = BuildPlan(periods=periods)
    point_digest: dict[int | None, str] = {}
    hotspot_digest: dict[int, str] = {}
    first_date = None
    for yr, n, n_unplaced, first, h_xor, h_sum, p_xor, p_sum in years:
        plan.n_casualties += n
        plan.n_unplaced += n_unplaced
        point_digest[yr] = f"{n}|{p_xor}|{p_sum}"
        if yr is not None:
            hotspot_digest[yr] = f"{n}|{h_xor}|{h_sum}"
            first_date = first if first_date is None else min(first_date, first)

    stored = state.stored_parts(con, STAGE)
    current: dict[str, str] = {}
    for yr, digest in point_digest.items():
        current[point_part(yr)] = _digest(VERSION, "point", digest)
    for yr in point_digest:
        (plan.point_keep if stored.get(point_part(yr)) == current[point_part(yr)] else plan.point_rebuild).append(yr)

    if periods:
        window = periods[0]
        plan.n_outside_window = sum(
            n for yr, n, *_ in years if yr is not None and not window.start.year <= yr <= window.end.year
        )
        salt = settings.hotspot.model_dump(mode="json")
        network = network_fingerprint(con)
        for p in periods:
            digests = [hotspot_digest.get(y, "") for y in range(p.start.year, p.end.year + 1)]
            current[period_part(p)] = _digest(VERSION, salt, network, p.kind, p.start, p.end, digests)
        changed = [p for p in periods if stored.get(period_part(p)) != current[period_part(p)]]
        if changed and window not in changed:     # year rows read the window's rule flags
            changed.insert(0, window)
        plan.rebuild = [p for p in periods if p in changed]
        plan.keep = [p for p in periods if p not in changed]
        measures = state.fingerprint(con, "SELECT * FROM plan.measure")
        before = [hotspot_digest[y] for y in sorted(hotspot_digest) if y <= window.end.year]
        current["plan"] = _digest(
            VERSION, measures, settings.publish.plan_buffer_m, first_date,
            [current[period_part(p)] for p in periods], before,
        )
        plan.plan_rebuild = stored.get("plan") != current["plan"]
    else:
        plan.n_outside_window = plan.n_casualties
    plan.fingerprints = current
    plan.stale_parts = sorted(set(stored) - set(current))
    return plan


def record_plan(con: duckdb.DuckDBPyConnection, plan: BuildPlan, run_id: str | None = None) -> None:
    """Store the fingerprints of what was (re)built and forget the parts that are gone
    (inside the build's transaction)."""
    stored = state.stored_parts(con, STAGE)
    for part, fp in plan.fingerprints.items():
        if stored.get(part) != fp:
            state.record(con, STAGE, part, fp, run_id)
    for part in plan.stale_parts:
        state.forget(con, STAGE, part)
