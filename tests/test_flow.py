"""The whole nightly flow through Prefect on a small demo data set, run twice.

One module-scoped run (Prefect's local server is slow to start), then assertions on the
warehouse, the published layers and a re-run of the same night.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import duckdb
import geopandas as gpd
import pandas as pd
import pytest

from skadestue import db

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def night(tmp_path_factory, demo_setup):
    from flows.nightly import nightly

    paths, settings, kwargs = demo_setup(tmp_path_factory.mktemp("night"), scale=0.3, years=(2021, 2024), seed=11)
    first = nightly(**kwargs)
    snapshot = _core_snapshot(settings.warehouse)
    second = nightly(**kwargs)
    return {"settings": settings, "paths": paths, "first": first, "second": second, "snapshot": snapshot,
            "kwargs": kwargs}


def _core_snapshot(warehouse: Path) -> dict[str, pd.DataFrame]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {
            t: con.execute(f"SELECT * FROM core.{t} ORDER BY ALL").df()
            for t in ("er_contact", "police_accident", "police_person", "casualty")
        }
    finally:
        con.close()


def test_row_accounting_holds_for_every_delivery(night):
    s = night["first"]
    assert s["rows_read"] > 1000
    assert s["rows_read"] == s["rows_loaded"] + s["rows_quarantined"]
    assert s["rows_quarantined"] > 0  # the generator plants bad rows
    con = duckdb.connect(str(night["settings"].warehouse), read_only=True)
    bad = con.execute(
        "SELECT file_name FROM ops.delivery WHERE rows_read <> rows_loaded + rows_quarantined"
    ).fetchall()
    assert bad == []
    # Every quarantined row is in quality.quarantine with a reason.
    n_rows = con.execute(
        "SELECT count(*) FROM (SELECT DISTINCT delivery_id, line_no FROM quality.quarantine "
        "WHERE stage = 'ingest' AND line_no IS NOT NULL)"
    ).fetchone()[0]
    n_files_rows = con.execute(
        "SELECT coalesce(sum(rows_quarantined), 0) FROM ops.delivery WHERE status = 'loaded'"
    ).fetchone()[0]
    assert n_rows == n_files_rows
    con.close()


def test_summary_has_casualties_links_and_sources(night):
    s = night["first"]
    assert s["casualties"] > 500
    assert s["links"] > 20
    assert set(s["casualties_by_source"]) == {"er", "police", "both"}
    # Police see a minority of the ER casualties (the dark figure).
    er_total = s["casualties_by_source"]["er"] + s["casualties_by_source"]["both"]
    assert 0.1 < s["casualties_by_source"]["both"] / er_total < 0.45


def test_second_run_skips_every_file_and_gives_the_same_core(night):
    second = night["second"]
    assert second["deliveries_loaded"] == 0
    assert second["files_skipped"] >= night["first"]["deliveries_loaded"]
    again = _core_snapshot(night["settings"].warehouse)
    for table, before in night["snapshot"].items():
        pd.testing.assert_frame_equal(before, again[table], obj=table)


def test_planted_junction_hotspots_are_found(night):
    truth = pd.read_parquet(night["paths"].truth_dir / "hotspots.parquet")
    junctions = truth[truth["kind"] == "junction"]
    assert len(junctions) >= 2
    con = db.connect(night["settings"].warehouse, read_only=True)
    hot = con.execute(
        "SELECT junction_id, kommunekode, rank_in_kommune, rule_flag, n_accidents, "
        "ST_X(geom) AS x, ST_Y(geom) AS y FROM marts.hotspot_junction "
        "WHERE period_start = (SELECT min(period_start) FROM marts.hotspot_junction) "
        "AND period_end = (SELECT max(period_end) FROM marts.hotspot_junction)"
    ).df()
    con.close()
    for planted in junctions.itertuples():
        d = ((hot["x"] - planted.x) ** 2 + (hot["y"] - planted.y) ** 2) ** 0.5
        found = hot[d < 60]
        assert not found.empty, f"planted hotspot {planted.name} not found"
        best = found.sort_values("rank_in_kommune").iloc[0]
        assert best["rank_in_kommune"] <= 3, f"{planted.name} ranked {best['rank_in_kommune']}"
        assert bool(best["rule_flag"])


def test_published_layers_open_and_hold_no_personal_data(night):
    publish = night["settings"].publish_dir
    gpkg = publish / "skadestue.gpkg"
    assert gpkg.exists() and (publish / "skadestue.duckdb").exists()
    for layer in ("hotspot_grid", "hotspot_junction", "hotspot_segment", "casualty_point"):
        frame = gpd.read_file(gpkg, layer=layer)
        assert len(frame) > 0, layer
        assert frame.crs.to_epsg() == 25832
        forbidden = {"cpr", "cpr_pseudonym", "birth_date", "kontakt_id", "ulykkessted", "fritekst", "navn"}
        assert not forbidden & {c.lower() for c in frame.columns}, layer
    points = gpd.read_file(gpkg, layer="casualty_point")
    con = duckdb.connect(str(night["settings"].warehouse), read_only=True)
    total, placed = con.execute("SELECT count(*), count(x) FROM core.casualty").fetchone()
    con.close()
    # Every casualty is listed; the unplaced ones have no geometry.
    assert len(points) == total
    assert int(points.geometry.notna().sum() - points.geometry.is_empty.sum()) == placed
    cpr_like = re.compile(r"(?<![0-9A-Za-z])\d{6}-?\d{4}(?![0-9A-Za-z])")
    for col in points.columns:
        if points[col].dtype == object:
            assert not points[col].astype(str).str.contains(cpr_like).any(), col


def test_no_cpr_anywhere_in_the_warehouse(night):
    """No 10-digit CPR-shaped value in any text column of any warehouse table."""
    con = duckdb.connect(str(night["settings"].warehouse), read_only=True)
    cols = con.execute(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns "
        "WHERE data_type IN ('VARCHAR', 'JSON') AND table_schema NOT IN ('gazetteer')"
    ).fetchall()
    hits = []
    for schema, table, col in cols:
        n = con.execute(
            f"SELECT count(*) FROM {schema}.{table} "
            f"WHERE regexp_matches(CAST(\"{col}\" AS VARCHAR), '(^|[^0-9A-Za-z])[0-3][0-9][01][0-9]{{2}}-?[0-9]{{4}}([^0-9A-Za-z]|$)')"
        ).fetchone()[0]
        if n:
            hits.append((schema, table, col, n))
    con.close()
    assert hits == []


def test_quality_results_and_docs(night):
    con = duckdb.connect(str(night["settings"].warehouse), read_only=True)
    stages = {r[0] for r in con.execute("SELECT DISTINCT stage FROM quality.validation_result").fetchall()}
    failed_critical = con.execute(
        "SELECT count(*) FROM quality.validation_result WHERE critical AND NOT success"
    ).fetchone()[0]
    con.close()
    assert {"raw_er", "raw_police", "geocoded", "linked", "hotspots"} <= stages
    assert failed_critical == 0
    assert any(night["settings"].quality_dir.rglob("index.html"))


def test_geocoding_places_most_er_contacts(night):
    con = duckdb.connect(str(night["settings"].warehouse), read_only=True)
    share = con.execute(
        "SELECT avg(CASE WHEN x IS NOT NULL THEN 1 ELSE 0 END) FROM core.er_contact"
    ).fetchone()[0]
    con.close()
    assert share > 0.6
    assert not math.isnan(share)


def test_runs_are_recorded_with_their_stages_and_a_prefect_artifact(night):
    """ops.run / ops.run_stage for both runs, and the `nightly-run` artifact on each flow run."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    con = duckdb.connect(str(night["settings"].warehouse), read_only=True)
    runs = con.execute(
        "SELECT run_id, status, flow_run_id, rows_read, rows_loaded, rows_quarantined, seconds, failed_stage "
        "FROM ops.run ORDER BY started_at").fetchall()
    stages = con.execute(
        "SELECT run_id, list(stage ORDER BY seq), bool_and(status = 'succeeded'), bool_and(seconds > 0), "
        "bool_and(peak_rss_mb > 0) FROM ops.run_stage GROUP BY run_id ORDER BY min(started_at)").fetchall()
    con.close()
    first, second = night["first"], night["second"]
    assert [r[0] for r in runs] == [first["run_id"], second["run_id"]]
    for r, s in zip(runs, (first, second)):
        assert r[1] == "succeeded" and r[2] is not None and r[7] is None
        assert (r[3], r[4], r[5]) == (s["rows_read"], s["rows_loaded"], s["rows_quarantined"])
        assert r[6] > 0
    assert runs[1][3] == 0  # nothing new the second night
    expected = ["ingest", "validate_raw", "geocode", "validate_geocoded", "link", "validate_linked",
                "hotspots", "validate_hotspots", "publish", "maps"]
    assert [(s[0], s[1], s[2], s[3], s[4]) for s in stages] == [
        (r[0], expected, True, True, True) for r in runs]

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["nightly-run"]),
            flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(r[2]) for r in runs])))
    assert len(artifacts) == 2
    first_md = next(a.data for a in artifacts if str(a.flow_run_id) == runs[0][2])
    assert f"# Nightly run {first['run_id']}: succeeded" in first_md
    assert "| publish | succeeded |" in first_md and f"| {first['rows_read']:,} |" in first_md


def test_nightly_run_renders_the_maps_and_reports_of_the_newest_period(night):
    """Issue 8: the flow writes every kommune's map and annual report into publish/maps/."""
    maps = Path(night["settings"].publish_dir) / "maps"
    pngs = sorted(maps.glob("kort_*.png"))
    assert {p.name.split("_")[1] for p in pngs} == {
        "0561", "0563", "0510", "0540", "0550", "0573", "0575", "0580"}, [p.name for p in maps.iterdir()]
    for png in pngs:
        assert png.with_suffix(".html").stat().st_size > 10_000
    reports = sorted(maps.glob("trafikanalyse_*.html"))
    assert len(reports) == 8
    assert len(list(maps.glob("kredsraad_*H2.html"))) == 1
    assert not list(Path(night["settings"].publish_dir).glob(".maps-*"))


# Last in the module: it adds a third run to the warehouse the tests above read.
def _warehouse_snapshot(warehouse: Path) -> dict[str, pd.DataFrame]:
    """core and marts, each table sorted, geometries as WKT, build times left out."""
    con = db.connect(warehouse, read_only=True)
    try:
        out = {}
        tables = con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema IN ('core', 'marts') AND table_type = 'BASE TABLE' ORDER BY 1"
        ).fetchall()
        for (table,) in tables:
            schema, name = table.split(".")
            cols = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position", [schema, name]
            ).fetchall()
            select = ", ".join(
                f"ST_AsText({c}) AS {c}" if t.startswith("GEOMETRY") else c
                for c, t in cols if c not in ("built_at",)
            )
            out[table] = con.execute(f"SELECT {select} FROM {table} ORDER BY ALL").df()
        return out
    finally:
        con.close()


def test_a_full_rebuild_gives_the_warehouse_the_nights_gave(night):
    """`skadestue run --full` forgets every stage's fingerprints; rebuilding everything from
    the same deliveries must give the core and marts the incremental nights left."""
    from flows.nightly import run_nightly

    warehouse = night["settings"].warehouse
    nights = _warehouse_snapshot(warehouse)
    con = duckdb.connect(str(warehouse), read_only=True)
    parts_before = con.execute("SELECT count(*) FROM ops.stage_state").fetchone()[0]
    con.close()
    assert parts_before > 10  # core, link, hotspots (per period), publish (per layer), maps
    summary = run_nightly(**night["kwargs"], full=True)
    con = duckdb.connect(str(warehouse), read_only=True)
    ran = dict(con.execute(
        "SELECT stage, detail FROM ops.run_stage WHERE run_id = ? AND stage IN ('ingest', 'link', 'hotspots')",
        [summary["run_id"]]).fetchall())
    con.close()
    assert json.loads(ran["ingest"])["core"]["full_build"] == 1
    assert json.loads(ran["link"])["model_trained"] is True
    rebuilt = _warehouse_snapshot(warehouse)
    assert rebuilt.keys() == nights.keys()
    for table, frame in nights.items():
        assert len(frame) > 0 or table in ("marts.plan_coverage",), table
        pd.testing.assert_frame_equal(frame, rebuilt[table], obj=table, check_exact=False, rtol=1e-9)
