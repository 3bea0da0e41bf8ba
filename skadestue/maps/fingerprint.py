"""What each kommune's nightly maps and report are drawn from, as fingerprints (issue 9).

A night renders again only the kommuner whose inputs changed since their last rendering; the
others keep their files (``render.render_nightly``). A kommune's fingerprint covers everything
its files show:

* its lokalråd junction and grid rows of the map period and of the report's top-places period;
* its published casualties (the columns the report counts by) in the report's five years;
* its plan rows (nearest measure, gap flag), when a plan is loaded;
* its boundary and road network from the gazetteer;
* the settings that shape the files (k, plan buffer, PDFs or not and whether Chromium is
  there to print them, periods, year, name) and
  ``RENDER_VERSION``.

The kredsråd page has its own part (``kredsraad``): all kommuner's casualties in the half-year
and the same half a year before, and their top junctions.

Not covered, on purpose: the report's "data til og med" date, the date it was made and the run
id printed on it; a carried-over report keeps those of the night it was rendered.

Every digest is a hash aggregate in DuckDB over the published GeoParquet (an in-memory
connection) and the gazetteer, grouped by kommune: one pass per input for all kommuner.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import duckdb
import pandas as pd

from skadestue.maps import data
from skadestue.maps.data import Period

#: Bump when the renderer's output changes for the same inputs (every kommune is rendered again).
RENDER_VERSION = 1
KREDSRAAD = "kredsraad"


def _digest(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> dict[str, str]:
    """{kommunekode: order-independent digest of its rows of ``sql``} (same formula as
    skadestue.state.fingerprint: count, xor and sum of the row hashes)."""
    rows = con.execute(
        f"SELECT kommunekode, count(*), coalesce(bit_xor(hash(q)), 0), coalesce(sum(hash(q)::HUGEINT), 0) "
        f"FROM ({sql}) q GROUP BY kommunekode",
        params or [],
    ).fetchall()
    return {str(k): f"{n}|{x}|{s}" for k, n, x, s in rows}


def _lit(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _period_match(periods: list[Period]) -> tuple[str, list]:
    cond = " OR ".join("(period_start = ? AND period_end = ?)" for _ in periods) or "FALSE"
    params: list = []
    for p in periods:
        params += [p.start, p.end]
    return f"({cond})", params


def part_fingerprints(
    publish_dir: Path,
    warehouse: duckdb.DuckDBPyConnection,
    kommuner: dict[str, str],
    *,
    map_period: Period,
    report_year: int,
    report_period: Period,
    half: str,
    k: int,
    buffer_m: float,
    pdf: bool,
    plan: pd.DataFrame | None,
) -> dict[str, str]:
    """{kommunekode: fingerprint, ..., 'kredsraad': fingerprint} of the nightly outputs."""
    from skadestue.maps.render import report_period_for
    from skadestue.maps.data import find_chromium, parse_half

    pdf = bool(pdf and find_chromium())  # PDFs are printed only where Chromium is installed

    publish_dir = Path(publish_dir)
    lokal = data.lokalraad_dir(publish_dir)
    junction_pq = lokal / "hotspot_junction.parquet"
    grid_pq = lokal / "hotspot_grid.parquet"
    casualty_pq = data.casualty_points(publish_dir)
    codes = list(kommuner)
    h_start, h_end, _ = parse_half(half)
    top_period = report_period_for(publish_dir, h_end.year)

    mem = duckdb.connect()
    try:
        mem.execute("SET threads=1")
        in_codes = "kommunekode IN (SELECT unnest(?))"
        periods, p_params = _period_match(sorted({map_period, report_period}, key=lambda p: (p.start, p.end)))
        junctions = _digest(mem, f"SELECT * FROM read_parquet({_lit(junction_pq)}) WHERE {in_codes} AND {periods}",
                            [codes, *p_params])
        g_cond, g_params = _period_match([map_period])
        grid = _digest(mem, f"SELECT * FROM read_parquet({_lit(grid_pq)}) WHERE {in_codes} AND {g_cond}",
                       [codes, *g_params])
        cas_cols = "kommunekode, casualty_id, injury_date, injury_hour, road_user, severity, age_band, source"
        casualties = _digest(
            mem, f"SELECT {cas_cols} FROM read_parquet({_lit(casualty_pq)}) "
                 f"WHERE {in_codes} AND year(injury_date) BETWEEN ? AND ?",
            [codes, report_year - 4, report_year],
        )
        unplaced = mem.execute(
            f"SELECT count(*) FROM read_parquet({_lit(casualty_pq)}) "
            "WHERE kommunekode IS NULL AND year(injury_date) = ?", [report_year]
        ).fetchone()[0]
        plans: dict[str, str] = {}
        if plan is not None and len(plan):
            mem.register("plan_rows", plan)
            plans = _digest(mem, f"SELECT * FROM plan_rows WHERE {in_codes}", [codes])
            mem.unregister("plan_rows")
        # the kredsråd page: both half-years of every kommune (and the unplaced), top junctions
        kreds_cas = _digest(
            mem, f"SELECT 'all' AS kommunekode, {cas_cols} FROM read_parquet({_lit(casualty_pq)}) "
                 "WHERE CAST(injury_date AS DATE) BETWEEN ? AND ? OR CAST(injury_date AS DATE) BETWEEN ? AND ?",
            [h_start.replace(year=h_start.year - 1), h_end.replace(year=h_end.year - 1), h_start, h_end],
        )
        t_cond, t_params = _period_match([top_period])
        kreds_top = _digest(
            mem, f"SELECT 'all' AS kommunekode, * FROM read_parquet({_lit(junction_pq)}) "
                 f"WHERE {in_codes} AND {t_cond}", [codes, *t_params],
        )
    finally:
        mem.close()

    boundary = _digest(
        warehouse,
        f"SELECT kommunekode, navn, ST_AsWKB(geom) AS wkb FROM gazetteer.municipality WHERE {in_codes}", [codes],
    )
    roads = _digest(
        warehouse,
        f"SELECT kommunekode, vejklasse, ST_AsWKB(geom) AS wkb FROM gazetteer.road_segment "
        f"WHERE {in_codes} AND geom IS NOT NULL", [codes],
    )

    common = {"v": RENDER_VERSION, "k": k, "buffer_m": buffer_m, "pdf": pdf, "map_period": map_period.slug,
              "report_year": report_year, "report_period": report_period.slug, "unplaced": unplaced,
              "plan_loaded": plan is not None}
    out = {}
    for code in codes:
        out[code] = _sha({**common, "kommune": code, "navn": kommuner[code], "junctions": junctions.get(code),
                          "grid": grid.get(code), "casualties": casualties.get(code), "plan": plans.get(code),
                          "boundary": boundary.get(code), "roads": roads.get(code)})
    out[KREDSRAAD] = _sha({"v": RENDER_VERSION, "k": k, "pdf": pdf, "half": half, "kommuner": kommuner,
                           "top_period": top_period.slug, "casualties": kreds_cas.get("all"),
                           "top": kreds_top.get("all")})
    return out


def _sha(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:32]


def today() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
