"""Traffic-safety plan import and plan_coverage (outputs.md §4) on the hand-made warehouse of
test_hotspots (planted junction J1 in 0561 with casualties 2021-2024). Synthetic people only."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import LineString, Point
from typer.testing import CliRunner

from skadestue.config import Settings
from skadestue.hotspots import build_hotspots
from skadestue.plan import PlanImportError, build_plan_coverage, import_plan
from skadestue.plan.coverage import CAVEAT
from test_hotspots import AS_OF, J1, make_warehouse


def _plan_file(path, rows, crs="EPSG:25832", driver=None):
    frame = gpd.GeoDataFrame(
        [{k: v for k, v in r.items() if k != "geometry"} for r in rows],
        geometry=[r["geometry"] for r in rows], crs="EPSG:25832",
    ).to_crs(crs)
    frame.to_file(path, driver=driver)
    return path


MEASURES = [
    {"tiltag_id": "M-J1", "navn": "Ombygning af krydset Storegade/Jernbanegade", "type": "Krydsombygning",
     "status": "Udført", "aar": 2022, "geometry": Point(J1[0] + 10, J1[1])},
    {"tiltag_id": "M-far", "navn": "Cykelsti langs Testvej", "type": "Cykelsti", "status": "planlagt", "aar": 2026,
     "geometry": LineString([(500000, 6150200), (501000, 6150200)])},
    {"tiltag_id": None, "navn": "uden id", "type": "Hævet flade", "status": "planlagt", "aar": 2025,
     "geometry": Point(470000, 6150000)},
    {"tiltag_id": "M-bad-year", "navn": "år mangler", "type": "Skiltning", "status": "planlagt", "aar": "snart",
     "geometry": Point(470100, 6150000)},
]


@pytest.fixture()
def built():
    con, _ = make_warehouse()
    build_hotspots(con, Settings(), as_of=AS_OF)
    yield con
    con.close()


def test_import_accounts_for_every_feature_and_reprojects(built, tmp_path):
    path = _plan_file(tmp_path / "plan.geojson", MEASURES, crs="EPSG:4326")
    report = import_plan(built, path)
    assert (report.rows_read, report.loaded) == (4, 2)
    assert sorted(r["reason"] for r in report.rejected) == ["no tiltag_id", "year is not a number"]
    assert report.kommuner == ["0561", "0575"]          # from the boundaries: the file has no kommunekode
    rows = built.execute(
        "SELECT tiltag_id, status, year, kommunekode, ST_X(geom), ST_Y(geom) FROM plan.measure "
        "WHERE tiltag_id = 'M-J1'"
    ).fetchone()
    assert rows[:4] == ("M-J1", "udført", 2022, "0561")
    assert rows[4] == pytest.approx(J1[0] + 10, abs=0.01) and rows[5] == pytest.approx(J1[1], abs=0.01)


def test_a_new_plan_replaces_the_measures_of_its_kommune(built, tmp_path):
    import_plan(built, _plan_file(tmp_path / "a.gpkg", MEASURES[:2], driver="GPKG"))
    second = [{**MEASURES[0], "tiltag_id": "M-J1-v2", "status": "igang"}]
    report = import_plan(built, _plan_file(tmp_path / "b.gpkg", second, driver="GPKG"))
    assert report.replaced == 1
    assert built.execute("SELECT tiltag_id FROM plan.measure ORDER BY 1").fetchall() == [("M-J1-v2",), ("M-far",)]


def test_duplicate_ids_and_missing_id_field_stop_the_import(built, tmp_path):
    dup = [MEASURES[0], {**MEASURES[1], "tiltag_id": "M-J1"}]
    with pytest.raises(PlanImportError, match="not unique"):
        import_plan(built, _plan_file(tmp_path / "dup.geojson", dup))
    no_id = [{k: v for k, v in m.items() if k != "tiltag_id"} for m in MEASURES[:2]]
    with pytest.raises(PlanImportError, match="no id field"):
        import_plan(built, _plan_file(tmp_path / "noid.geojson", no_id))
    assert built.execute("SELECT count(*) FROM plan.measure").fetchone()[0] == 0


def test_coverage_gaps_and_before_after(built, tmp_path):
    settings = Settings()
    counts = build_plan_coverage(built, settings)
    hot = built.execute(
        "SELECT layer, hotspot_key, gap, tiltag_id FROM marts.plan_coverage WHERE row_type = 'hotspot' "
        "AND layer = 'hotspot_junction'"
    ).fetchall()
    assert hot == [("hotspot_junction", "J1", True, None)]          # no plan yet: J1 is a gap
    assert counts["measures_done"] == 0

    import_plan(built, _plan_file(tmp_path / "plan.geojson", MEASURES))
    counts = build_plan_coverage(built, settings)
    j1 = built.execute(
        "SELECT gap, tiltag_id, tiltag_status, round(distance_m, 3), buffer_m FROM marts.plan_coverage "
        "WHERE row_type = 'hotspot' AND hotspot_key = 'J1'"
    ).fetchone()
    assert j1 == (False, "M-J1", "udført", pytest.approx(10.0, abs=0.01), 50.0)
    assert counts["gaps"] == counts["hotspots"] - built.execute(
        "SELECT count(*) FROM marts.plan_coverage WHERE row_type = 'hotspot' AND NOT gap").fetchone()[0]
    # M-J1 done in 2022; data 2020-2024: two full years each side, 2022 itself left out.
    # Before (2020-21): P1 killed + P2 serious (U-1, 2021). After (2023-24): P5 serious, P6-P8 slight, all ER-only.
    m = built.execute(
        "SELECT years_before, before_start::VARCHAR, before_end::VARCHAR, after_start::VARCHAR, after_end::VARCHAR, "
        "n_casualties_before, n_casualties_after, n_serious_before, n_serious_after, n_er_only_before, "
        "n_er_only_after, change_pct, caveat FROM marts.plan_coverage WHERE row_type = 'measure'"
    ).fetchall()
    assert m == [(2, "2020-01-01", "2021-12-31", "2023-01-01", "2024-12-31", 2, 4, 2, 1, 0, 4, 100.0, CAVEAT)]
    assert "regression to the mean" in CAVEAT


def test_build_hotspots_refreshes_coverage_and_publication_carries_it(built, tmp_path):
    from skadestue.publish import publish_layers

    import_plan(built, _plan_file(tmp_path / "plan.geojson", MEASURES))
    settings = Settings(publish_dir=tmp_path / "publish")
    report = build_hotspots(built, settings, as_of=AS_OF)
    assert report.plan["measures_done"] == 1 and report.plan["hotspots"] >= 1
    publish_layers(built, settings, "plan-1")
    layer = gpd.read_file(settings.publish_dir / "skadestue.gpkg", layer="plan_coverage")
    assert layer.crs.to_epsg() == 25832
    assert len(layer) == built.execute("SELECT count(*) FROM marts.plan_coverage").fetchone()[0]
    measure = layer[layer["row_type"] == "measure"].iloc[0]
    assert (measure["tiltag_id"], measure["n_casualties_before"], measure["n_casualties_after"]) == ("M-J1", 2, 4)


def test_cli_plan_import(tmp_path):
    from skadestue import db
    from skadestue.cli import app
    from skadestue.config import Settings as S

    warehouse = tmp_path / "wh.duckdb"
    with db.warehouse(S(warehouse=warehouse)) as c:
        c.execute("INSERT INTO gazetteer.municipality VALUES ('0561', 'Esbjerg', ST_MakeEnvelope(460000, 6140000, 490000, 6160000))")
    path = _plan_file(tmp_path / "plan.geojson", MEASURES)
    result = CliRunner().invoke(app, ["plan", "import", str(path), "--warehouse", str(warehouse)])
    assert result.exit_code == 0, result.output
    assert "4 measures read, 2 loaded, 2 rejected" in result.output
    assert "no tiltag_id" in result.output and "next `skadestue run`" in result.output
    dup = tmp_path / "dup.geojson"
    doc = json.loads(path.read_text())
    doc["features"][1]["properties"]["tiltag_id"] = "M-J1"
    dup.write_text(json.dumps(doc))
    result = CliRunner().invoke(app, ["plan", "import", str(dup), "--warehouse", str(warehouse)])
    assert result.exit_code == 2 and "not unique" in result.output


def test_demo_plan_file_is_real_looking():
    """The demo generator's plan: ids, Danish names, types, statuses and years, in EPSG:25832."""
    import numpy as np

    from skadestue.demo import gazetteer as demo_gazetteer
    from skadestue.demo.plan import plan_features

    feats = plan_features(demo_gazetteer.build_gazetteer(7))
    frame = pd.DataFrame([f["properties"] for f in feats])
    assert frame["tiltag_id"].is_unique and len(frame) == 5
    assert set(frame["status"]) == {"udført", "igang", "planlagt"}
    assert {"Krydsombygning", "Cykelsti", "Hastighedszone"} <= set(frame["type"])
    assert frame["aar"].between(2020, 2027).all()
    xs = np.array([c for f in feats for c in np.ravel(f["geometry"]["coordinates"])[::2]])
    assert ((xs > 400_000) & (xs < 600_000)).all()
