"""build_hotspots: core.casualty + gazetteer.* -> marts.hotspot_* and marts.casualty_point.

The heavy lifting is SQL in ``warehouse/queries/hotspot_*.sql`` over temp tables:

1. ``hs_casualty``: placed casualties (x/y known) with accident key and kommune;
   ``hs_period``: the analysis window and each calendar year in it.
2. Per layer an assignment of casualties to units (``hs_unit``: unit_id, kommunekode,
   casualty_id), then one shared count query (``hs_counts``) and a layer insert.
3. Statistics in numpy: Getis-Ord Gi* on the smallest grid (window period, n_accidents,
   whole region at once, so a cell split between two kommuner gets one value; the esda
   statistic computed vectorised, see grid.getis_ord_gi_star) and Poisson upper tails for
   junctions. Larger grid cells and yearly rows keep gi_z/gi_p NULL. gi_q/gi_hot: the
   Benjamini-Hochberg false-discovery-rate correction over the cells tested.
4. Observed versus expected for junctions and road windows (``expected.update_expected``):
   empirical Bayes against comparable sites by road class. Junction and window rows are
   counted into temp tables first and written to the marts once, with their EB columns and
   rank_in_kommune (no UPDATE of the big tables).
5. ``marts.plan_coverage`` from the hotspots and ``plan.measure`` (skadestue.plan).

Incremental (issue 9, ``skadestue.hotspots.incremental``): every period, injury year of
``marts.casualty_point`` and the plan coverage has a fingerprint of its input in
``ops.stage_state``; a build redoes only the parts whose fingerprint changed (a night that adds
casualties to the current, unfinished year rebuilds no period) and records the new
fingerprints in the same transaction as the marts. ``state.forget(con, "hotspots")``, or
``full=True``, rebuilds everything.

Segments take every placed casualty within ``segment_snap_m`` of a street, junction
casualties included: the stretch layer is a separate view of the same casualties, like the
municipal "within 400 m" rule of thumb, which counts junction accidents too.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from skadestue import state
from skadestue.config import HotspotSettings, Settings
from skadestue.db import query
from skadestue.hotspots.expected import gi_fdr, update_expected
from skadestue.hotspots.grid import getis_ord_gi_star, grid_size_table
from skadestue.hotspots.incremental import STAGE, BuildPlan, plan_build, record_plan
from skadestue.hotspots.periods import Period, analysis_periods
from skadestue.plan.coverage import build_plan_coverage

log = logging.getLogger(__name__)

MART_TABLES = ("hotspot_grid", "hotspot_junction", "hotspot_segment", "casualty_point", "hotspot_period")
#: The marts with one row per place (or model group) and period.
PERIOD_TABLES = ("hotspot_grid", "hotspot_junction", "hotspot_segment", "hotspot_period", "hotspot_expected_model")
_TEMP_TABLES = (
    "hs_casualty", "hs_period", "hs_grid_size", "hs_gi", "hs_grid_assign", "hs_unit", "hs_counts",
    "hs_junction_assign", "hs_street_part", "hs_snap", "hs_segment_window", "hs_segment_assign",
    "hs_junction_out", "hs_segment_out", "hs_keep_period", "hs_point_year",
)


@dataclass
class HotspotReport:
    """What build_hotspots wrote, and which casualties it left out of the layers."""

    periods: list[Period] = field(default_factory=list)
    n_casualties: int = 0          # all of core.casualty (= marts.casualty_point rows)
    n_unplaced: int = 0            # x/y NULL: in no hotspot layer
    n_no_kommune: int = 0          # placed in the window, but no kommune: not in the grid layer
    n_outside_window: int = 0      # dated outside the analysis window
    n_in_window_placed: int = 0    # placed with kommune and dated in the window
    n_on_junction: int = 0         # window casualties assigned to a junction
    n_on_road: int = 0             # window casualties snapped to a street
    rows: dict[str, int] = field(default_factory=dict)
    gi_cells: int = 0
    gi_hot_cells: int = 0
    #: negative-binomial k of the observed-vs-expected model per layer part and period (None: Poisson)
    dispersion: dict[str, float | None] = field(default_factory=dict)
    #: marts.plan_coverage: hotspots, gaps (no measure within the buffer), measures done
    plan: dict[str, int] = field(default_factory=dict)
    #: per stage of the build: wall and CPU seconds (all threads of the process)
    timings: dict[str, dict[str, float]] = field(default_factory=dict)
    #: incremental build: periods rebuilt / left as they were ('window 2020-2024', 'year 2021')
    periods_rebuilt: list[str] = field(default_factory=list)
    periods_skipped: list[str] = field(default_factory=list)
    #: injury years of marts.casualty_point rewritten / left as they were
    point_years_rebuilt: int = 0
    point_years_skipped: int = 0
    plan_rebuilt: bool = False


@contextmanager
def _stage(report: HotspotReport, name: str):
    """Record the wall and CPU seconds of one build stage in ``report.timings``."""
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        report.timings[name] = {
            "wall_s": round(time.perf_counter() - wall, 2), "cpu_s": round(time.process_time() - cpu, 2)
        }
        log.debug("hotspots stage %s: %s", name, report.timings[name])


def build_hotspots(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    *,
    as_of: dt.date | None = None,
    full: bool = False,
    run_id: str | None = None,
) -> HotspotReport:
    """Bring marts.* up to date with core.casualty and gazetteer.* in one transaction.

    Only the periods (and injury years of marts.casualty_point) whose input changed since the
    last build are rebuilt; ``full`` rebuilds everything. ``as_of`` (default today) caps the
    analysis window at the last year that has ended.
    """
    hs = settings.hotspot
    report = HotspotReport()
    con.execute("BEGIN TRANSACTION")
    try:
        periods = analysis_periods(con, hs.period_years, as_of)
        report.periods = periods
        with _stage(report, "fingerprint"):
            if full:
                state.forget(con, STAGE)
            plan = plan_build(con, settings, periods)
        report.periods_rebuilt = [_label(p) for p in plan.rebuild]
        report.periods_skipped = [_label(p) for p in plan.keep]
        report.point_years_rebuilt, report.point_years_skipped = len(plan.point_rebuild), len(plan.point_keep)
        report.plan_rebuilt = plan.plan_rebuild or not periods
        with _stage(report, "clear"):
            _clear(con, plan)
        with _stage(report, "casualty_point"):
            if plan.point_rebuild:
                _table_from_frame(con, "hs_point_year", pd.DataFrame(
                    {"part": [_year_key(y) for y in plan.point_rebuild]}))
                con.execute(query("hotspot_casualty_point"))
        if plan.rebuild:
            with _stage(report, "prepare"):
                _prepare(con, hs, plan.rebuild)
            _build_grid(con, hs, report)
            with _stage(report, "junctions"):
                _build_junctions(con, hs)
            _build_segments(con, hs, report)
            with _stage(report, "expected"):
                dispersion = update_expected(con, hs)
            report.dispersion = {part: (round(k, 3) if math.isfinite(k) else None) for part, k in dispersion.items()}
            with _stage(report, "period"):
                con.execute(query("hotspot_period_insert"))
                if plan.keep:
                    _fix_year_rows(con)
        elif not periods:
            log.warning("core.casualty holds no full calendar year: hotspot layers left empty")
        if plan.plan_rebuild:
            with _stage(report, "plan"):
                report.plan = build_plan_coverage(con, settings)
        elif periods:
            report.plan = _plan_counts(con)
        with _stage(report, "report"):
            _fill_report(con, report, plan)
            record_plan(con, plan, run_id)
        with _stage(report, "commit"):
            con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        _drop_temp(con)
    log.info("hotspots: periods rebuilt %s, left as they were %s; rows %s",
             report.periods_rebuilt or "none", report.periods_skipped or "none", report.rows)
    return report


def _label(p: Period) -> str:
    return f"{p.kind} {p.start.year}" + (f"-{p.end.year}" if p.end.year != p.start.year else "")


def _year_key(year: int | None) -> str:
    """The injury-year key of hotspot_casualty_point.sql ('none': no date)."""
    return "none" if year is None else str(year)


def _clear(con: duckdb.DuckDBPyConnection, plan: BuildPlan) -> None:
    """Delete the mart rows this build rewrites: the periods not kept (rebuilt ones and those
    that left the period list) and the casualty_point years not kept."""
    if plan.keep:
        frame = pd.DataFrame({"period_start": [p.start for p in plan.keep], "period_end": [p.end for p in plan.keep]})
        _table_from_frame(con, "hs_keep_period", frame)
        for table in PERIOD_TABLES:
            con.execute(
                f"DELETE FROM marts.{table} AS t WHERE NOT EXISTS (SELECT 1 FROM hs_keep_period AS k "
                "WHERE k.period_start = t.period_start AND k.period_end = t.period_end)"
            )
    else:
        for table in PERIOD_TABLES:
            con.execute(f"DELETE FROM marts.{table}")
    if not plan.periods:
        con.execute("DELETE FROM marts.plan_coverage")
    if plan.point_keep:
        keep = ", ".join(f"'{_year_key(y)}'" for y in plan.point_keep)
        con.execute(
            f"DELETE FROM marts.casualty_point WHERE coalesce(year(injury_date)::VARCHAR, 'none') NOT IN ({keep})"
        )
    else:
        con.execute("DELETE FROM marts.casualty_point")


def _fix_year_rows(con: duckdb.DuckDBPyConnection) -> None:
    """Year rows left as they were take the rebuilt window's rule flag (and stretch count):
    a year row's rule_flag is its unit's window value. Writes only the rows that differ."""
    con.execute(
        """
        UPDATE marts.hotspot_grid AS t SET rule_flag = w.rule_flag
        FROM marts.hotspot_grid AS w
        WHERE t.period_type = 'year' AND w.period_type = 'window'
          AND t.cell_id = w.cell_id AND t.kommunekode = w.kommunekode
          AND t.rule_flag IS DISTINCT FROM w.rule_flag
        """
    )
    con.execute(
        """
        UPDATE marts.hotspot_junction AS t SET rule_flag = w.rule_flag
        FROM marts.hotspot_junction AS w
        WHERE t.period_type = 'year' AND w.period_type = 'window' AND t.junction_id = w.junction_id
          AND t.rule_flag IS DISTINCT FROM w.rule_flag
        """
    )
    con.execute(
        """
        UPDATE marts.hotspot_segment AS t
        SET rule_flag = w.rule_flag, n_accidents_stretch = w.n_accidents_stretch
        FROM marts.hotspot_segment AS w
        WHERE t.period_type = 'year' AND w.period_type = 'window'
          AND t.kommunekode = w.kommunekode AND t.vejkode = w.vejkode AND t.window_m = w.window_m
          AND t.from_m = w.from_m
          AND (t.rule_flag IS DISTINCT FROM w.rule_flag OR t.n_accidents_stretch IS DISTINCT FROM w.n_accidents_stretch)
        """
    )


def _plan_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The plan_coverage counts of build_plan_coverage, read from the mart left as it was."""
    hotspots, gaps, measures = con.execute(
        "SELECT count(*) FILTER (WHERE row_type = 'hotspot'), count(*) FILTER (WHERE gap), "
        "count(*) FILTER (WHERE row_type = 'measure') FROM marts.plan_coverage"
    ).fetchone()
    return {"hotspots": hotspots, "gaps": gaps, "measures_done": measures}


def _prepare(con: duckdb.DuckDBPyConnection, hs: HotspotSettings, periods: list[Period]) -> None:
    """hs_period and hs_casualty: the inputs every layer shares."""
    frame = pd.DataFrame(
        {
            "period_start": [p.start for p in periods],
            "period_end": [p.end for p in periods],
            "period_type": [p.kind for p in periods],
        }
    )
    _table_from_frame(con, "hs_period", frame)
    con.execute("ALTER TABLE hs_period ALTER period_start TYPE DATE")
    con.execute("ALTER TABLE hs_period ALTER period_end TYPE DATE")
    con.execute(query("hotspot_casualty_base"))


def _count_units(con: duckdb.DuckDBPyConnection, hs: HotspotSettings, unit_sql: str) -> None:
    """hs_unit from ``unit_sql`` (unit_id, kommunekode, casualty_id), then hs_counts."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE hs_unit AS {unit_sql}")
    con.execute(
        query("hotspot_counts"),
        {
            "weight_killed": hs.weight_killed,
            "weight_serious": hs.weight_serious,
            "weight_slight": hs.weight_slight,
            "weight_unknown": hs.weight_unknown,
        },
    )


def _build_grid(con: duckdb.DuckDBPyConnection, hs: HotspotSettings, report: HotspotReport) -> int:
    """marts.hotspot_grid: Kvadratnet cells of every configured size, Gi* on the smallest.

    Gi* is computed from the counts before the insert (hs_gi), so the mart is written once,
    not inserted and then updated. Returns the number of cells tested.
    """
    with _stage(report, "grid_counts"):
        _table_from_frame(con, "hs_grid_size", grid_size_table(hs.grid_sizes_m))
        con.execute(query("hotspot_grid_assign"))
        _count_units(con, hs, "SELECT cell_id AS unit_id, kommunekode, casualty_id FROM hs_grid_assign")
    with _stage(report, "gi_star"):
        n_cells = _gi_star(con, hs)
    with _stage(report, "grid_insert"):
        con.execute(
            query("hotspot_grid_insert"),
            {"rule_min_accidents": hs.rule_min_accidents, "gi_size_m": min(hs.grid_sizes_m)},
        )
    return n_cells


def _gi_star(con: duckdb.DuckDBPyConnection, hs: HotspotSettings) -> int:
    """hs_gi(cell_id, gi_z, gi_p, gi_q, gi_hot): Gi* on the smallest grid's window counts
    (a cell split between kommuner is one cell); returns the number of cells tested.
    Without the window among the periods built (hs_period): an empty hs_gi."""
    size = min(hs.grid_sizes_m)
    cells = con.execute(
        """
        WITH corner AS (
            SELECT DISTINCT cell_id, e0, n0 FROM hs_grid_assign WHERE cell_size_m = $size
        )
        SELECT k.unit_id AS cell_id, any_value(g.e0) AS e0, any_value(g.n0) AS n0,
               sum(k.n_accidents) AS value
        FROM hs_counts AS k
        JOIN corner AS g ON g.cell_id = k.unit_id
        WHERE k.period_type = 'window'
        GROUP BY k.unit_id ORDER BY k.unit_id
        """,
        {"size": size},
    ).df()
    gi = getis_ord_gi_star(cells, size, hs.gi_distance_m, hs.gi_permutations, hs.seed)
    gi["gi_q"], gi["gi_hot"] = gi_fdr(gi["gi_z"].to_numpy())
    con.register("hs_frame", gi)
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE hs_gi AS SELECT cell_id::VARCHAR AS cell_id, gi_z::DOUBLE AS gi_z, "
            "gi_p::DOUBLE AS gi_p, gi_q::DOUBLE AS gi_q, gi_hot::BOOLEAN AS gi_hot FROM hs_frame"
        )
    finally:
        con.unregister("hs_frame")
    return len(cells)


def _build_junctions(con: duckdb.DuckDBPyConnection, hs: HotspotSettings) -> None:
    """marts.hotspot_junction: each casualty at its nearest junction within the radius."""
    con.execute(query("hotspot_junction_assign"), {"radius_m": hs.junction_radius_m})
    _count_units(con, hs, "SELECT junction_id AS unit_id, kommunekode, casualty_id FROM hs_junction_assign")
    con.execute(query("hotspot_junction_insert"), {"rule_min_accidents": hs.rule_min_accidents})


def _build_segments(con: duckdb.DuckDBPyConnection, hs: HotspotSettings, report: HotspotReport) -> None:
    """marts.hotspot_segment: fixed windows along each street's merged line."""
    with _stage(report, "segment_snap"):
        con.execute(query("hotspot_street_part"))
        con.execute(
            query("hotspot_segment_snap"),
            {"snap_m": hs.segment_snap_m, "max_uncertainty_m": hs.segment_max_uncertainty_m},
        )
    with _stage(report, "segment_counts"):
        windows = pd.DataFrame({"window_m": sorted({int(w) for w in hs.segment_windows_m})})
        _table_from_frame(con, "hs_segment_window", windows)
        con.execute(query("hotspot_segment_assign"))
        _count_units(con, hs, "SELECT unit_id, kommunekode, casualty_id FROM hs_segment_assign")
    with _stage(report, "segment_insert"):
        con.execute(
            query("hotspot_segment_insert"),
            {"rule_min_accidents": hs.rule_min_accidents, "stretch_m": hs.rule_stretch_m},
        )


def _fill_report(con: duckdb.DuckDBPyConnection, report: HotspotReport, plan: BuildPlan) -> None:
    """Row counts per mart and the casualty accounting of the window period."""
    for table in MART_TABLES:
        report.rows[table] = con.execute(f"SELECT count(*) FROM marts.{table}").fetchone()[0]
    report.n_casualties = report.rows["casualty_point"]
    report.n_unplaced = plan.n_unplaced
    report.n_outside_window = plan.n_outside_window
    if not report.periods:
        return
    report.gi_hot_cells, report.gi_cells = con.execute(
        "SELECT count(DISTINCT cell_id) FILTER (WHERE gi_hot), count(DISTINCT cell_id) FILTER (WHERE gi_z IS NOT NULL "
        "OR gi_hot IS NOT NULL) FROM marts.hotspot_grid WHERE period_type = 'window'"
    ).fetchone()
    stats = con.execute(
        "SELECT n_placed, n_on_junction, n_on_road, n_no_kommune FROM marts.hotspot_period "
        "WHERE period_type = 'window'"
    ).fetchone()
    report.n_in_window_placed, report.n_on_junction, report.n_on_road, report.n_no_kommune = stats
    if report.n_unplaced or report.n_no_kommune:
        log.warning(
            "%d casualties have no coordinates and %d in the window no kommune: left out of the hotspot layers",
            report.n_unplaced,
            report.n_no_kommune,
        )


def _table_from_frame(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    """A temp table ``name`` holding ``frame``."""
    con.register("hs_frame", frame)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM hs_frame")
    finally:
        con.unregister("hs_frame")


def _drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the working tables so a long-lived connection does not keep them."""
    for name in _TEMP_TABLES:
        con.execute(f"DROP TABLE IF EXISTS temp.{name}")
