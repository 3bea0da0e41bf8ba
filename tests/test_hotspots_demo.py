"""Hotspot layers on the demo data (planted truth): ranking, busy-but-safe, stable ids,
publication of both tiers, and the plan join with the demo's traffic-safety plan.

One demo region (scale 0.5, 2020-2024, seed 7) goes through ingest, geocoding, linkage and
the hotspot build without Prefect (tests/test_flow.py covers the flow). Synthetic people only.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from helpers import load_and_geocode

from skadestue import db
from skadestue.hotspots import build_hotspots
from skadestue.publish import publish_layers
from skadestue.publish.layers import COUNT_COLUMNS, LAYER_COUNT_COLUMNS

LAYERS = ("hotspot_grid", "hotspot_junction", "hotspot_segment", "casualty_point")


@pytest.fixture(scope="module")
def demo(tmp_path_factory, demo_setup):
    from skadestue.link import link_casualties

    out = tmp_path_factory.mktemp("hsdemo")
    paths, settings, _ = demo_setup(out, scale=0.5, years=(2020, 2024), seed=7)
    con = db.connect(settings.warehouse, settings=settings)
    con.execute("INSERT INTO ops.run(run_id, started_at, status) VALUES ('t', now(), 'running')")
    load_and_geocode(con, settings, "t")
    link_casualties(con, settings)
    report = build_hotspots(con, settings)
    yield dict(con=con, paths=paths, settings=settings, report=report)
    con.close()


def _window(con, layer: str) -> pd.DataFrame:
    return con.execute(
        f"SELECT *, ST_X(ST_Centroid(geom)) AS cx, ST_Y(ST_Centroid(geom)) AS cy FROM marts.{layer} "
        "WHERE period_type = 'window'"
    ).df()


def test_planted_junctions_rank_at_the_top_of_their_kommune(demo):
    truth = pd.read_parquet(demo["paths"].hotspots_truth)
    junctions = _window(demo["con"], "hotspot_junction")
    planted = truth[truth["kind"] == "junction"]
    assert len(planted) == 4
    flagged = 0
    for spot in planted.itertuples():
        d = np.hypot(junctions["cx"] - spot.x, junctions["cy"] - spot.y)
        row = junctions[d < 1].iloc[0]
        assert row["kommunekode"] == spot.kommunekode
        assert row["rank_in_kommune"] <= 2, (spot.name, row["rank_in_kommune"])
        assert row["excess_accidents"] > 3 and row["obs_exp_ratio"] > 2, spot.name
        flagged += bool(row["excess_flag"])
    # excess_flag is a false-discovery-rate test over ~1,000 junctions: strict by design, and at
    # the default 30 m radius the ward texts geocoded to a nearby address fall outside the
    # junction, so at this scale (0.5) not every planted junction reaches significance
    assert flagged >= 1


def test_planted_stretch_ranks_at_the_top_for_both_window_lengths(demo):
    from shapely import wkt

    truth = pd.read_parquet(demo["paths"].hotspots_truth)
    segments = _window(demo["con"], "hotspot_segment")
    stretch = truth[truth["kind"] == "stretch"].iloc[0]
    line = wkt.loads(stretch["wkt"])
    on = segments[(segments["vejnavn"] == stretch["road_a"]) & (segments["kommunekode"] == stretch["kommunekode"])]
    on = on[gpd.GeoSeries.from_xy(on["cx"], on["cy"]).distance(line).to_numpy() < 260]
    for window in (100, 500):
        best = on[on["window_m"] == window].sort_values("rank_in_kommune").iloc[0]
        assert best["rank_in_kommune"] <= 3, (window, best["rank_in_kommune"])
        assert bool(best["excess_flag"]) and bool(best["rule_flag"])


def test_busy_but_safe_junction_is_busy_and_does_not_rank(demo):
    busy = pd.read_parquet(demo["paths"].busy_safe_truth).iloc[0]
    assert busy["n_planted_events"] == 0 and busy["traffic"] > busy["town_median_traffic"]
    junctions = _window(demo["con"], "hotspot_junction")
    mine = junctions[junctions["kommunekode"] == busy["kommunekode"]]
    row = mine[np.hypot(mine["cx"] - busy["x"], mine["cy"] - busy["y"]) < 1].iloc[0]
    # busy: more accidents and a higher plain score than 90 % of the kommune's junctions
    assert row["n_accidents"] >= mine["n_accidents"].quantile(0.9)
    assert row["score"] >= mine["score"].quantile(0.9)
    # safe: about what junctions of its class get, so it is no sort plet and ranks below
    # the planted junction of its kommune and outside the top 3
    assert row["road_class"].startswith("Trafikvej-Fordeling / Trafikvej-Fordeling")
    assert not row["excess_flag"]
    assert abs(row["n_accidents"] - row["expected_accidents"]) < 2.5 * np.sqrt(row["expected_accidents"]) + 2
    assert row["rank_in_kommune"] > 3
    truth = pd.read_parquet(demo["paths"].hotspots_truth)
    for spot in truth[(truth["kind"] == "junction") & (truth["kommunekode"] == busy["kommunekode"])].itertuples():
        planted = mine[np.hypot(mine["cx"] - spot.x, mine["cy"] - spot.y) < 1].iloc[0]
        assert planted["rank_in_kommune"] < row["rank_in_kommune"]


def test_ids_and_ranks_are_stable_across_runs(demo, shared_data):
    from geodata.importer import import_geodata

    con, paths = demo["con"], demo["paths"]
    keys = {
        "hotspot_junction": "junction_id, period_start, rank_in_kommune, road_class, n_accidents",
        "hotspot_segment": "kommunekode, vejkode, window_m, from_m, to_m, period_start, rank_in_kommune",
        "hotspot_grid": "cell_id, kommunekode, period_start, rank_in_kommune, gi_z",
    }
    before = {t: con.execute(f"SELECT {k} FROM marts.{t} ORDER BY ALL").fetchall() for t, k in keys.items()}
    import_geodata(con, addresses=paths.addresses_csv, roads=paths.roads_geojson,
                   municipalities=paths.municipalities_geojson, postcodes=paths.postcodes_geojson,
                   places=paths.places_csv)
    build_hotspots(con, demo["settings"])
    for table, k in keys.items():
        assert con.execute(f"SELECT {k} FROM marts.{table} ORDER BY ALL").fetchall() == before[table], table


def test_demo_publication_gpkg_crs_rows_and_lokalraad_suppression(demo):
    con, settings = demo["con"], demo["settings"]
    report = publish_layers(con, settings, "demo-1")
    gpkg = settings.publish_dir / "skadestue.gpkg"
    for layer in LAYERS:
        info = pyogrio.read_info(gpkg, layer=layer)
        assert info["crs"] == "EPSG:25832", layer
        assert info["features"] == con.execute(f"SELECT count(*) FROM marts.{layer}").fetchone()[0], layer
    k = settings.publish.suppression_k
    lokal = settings.publish_dir / "lokalraad" / "skadestue_lokalraad.gpkg"
    for layer in ("hotspot_grid", "hotspot_junction", "hotspot_segment"):
        frame = pyogrio.read_dataframe(lokal, layer=layer)
        assert len(frame) == report.lokalraad_rows[layer]
        er = frame["suppressed"] | (frame["n_er_only"].fillna(k) > 0)
        counts = [c for c in LAYER_COUNT_COLUMNS[layer] if c in frame.columns]
        assert not frame.loc[er, counts].apply(lambda s: s.between(1, k - 1)).to_numpy().any(), layer
        if "excess_accidents" in frame.columns:
            # values derived from a hidden n_accidents are hidden with it
            hidden = frame["n_accidents"].isna()
            assert frame.loc[hidden, ["eb_accidents", "excess_accidents", "excess_p", "excess_score"]].isna().all().all()
    assert set(COUNT_COLUMNS) <= set(LAYER_COUNT_COLUMNS["hotspot_junction"])


def test_demo_plan_join_finds_gaps_and_before_after(demo):
    from skadestue.plan import build_plan_coverage, import_plan

    con, paths, settings = demo["con"], demo["paths"], demo["settings"]
    report = import_plan(con, paths.plan_geojson)
    assert (report.rows_read, report.loaded, report.rejected) == (5, 5, [])
    build_plan_coverage(con, settings)
    truth = pd.read_parquet(paths.hotspots_truth)
    junctions = _window(con, "hotspot_junction")
    cover = con.execute("SELECT * FROM marts.plan_coverage").df()
    expected = {  # planted junction -> (gap, measure, status)
        "Storegade/Jernbanegade, Esbjerg": (True, None, None),
        "Rundkørslen Augustenborg Landevej/Ringvejen, Sønderborg": (True, None, None),
        "Gåskærgade/Bispebrovej, Haderslev": (False, "TS-0510-2019-03", "udført"),
        "H.P. Hanssens Gade/Nygade, Aabenraa": (False, "TS-0580-2024-01", "planlagt"),
    }
    for spot in truth[truth["kind"] == "junction"].itertuples():
        jid = junctions.loc[np.hypot(junctions["cx"] - spot.x, junctions["cy"] - spot.y) < 1, "junction_id"].iloc[0]
        row = cover[(cover["row_type"] == "hotspot") & (cover["hotspot_key"] == jid)].iloc[0]
        gap, tiltag, status = expected[spot.name]
        assert bool(row["gap"]) is gap, spot.name
        assert (row["tiltag_id"] if not gap else None) == tiltag and (row["tiltag_status"] if not gap else None) == status
    measures = cover[cover["row_type"] == "measure"].set_index("tiltag_id")
    assert set(measures.index) == {"TS-0510-2019-03", "TS-0575-2020-02", "TS-0573-2022-05"}
    had = measures.loc["TS-0510-2019-03"]
    assert had["years_before"] == 2 and str(had["before_start"])[:10] == "2020-01-01"
    direct = con.execute(
        "SELECT count(*) FROM core.casualty AS c, plan.measure AS m WHERE m.tiltag_id = 'TS-0510-2019-03' "
        "AND c.x IS NOT NULL AND ST_Distance(m.geom, ST_Point(c.x, c.y)) <= 50 "
        "AND coalesce(c.geocode_uncertainty_m, 0) <= 50 AND c.injury_date BETWEEN DATE '2020-01-01' AND DATE '2021-12-31'"
    ).fetchone()[0]
    assert had["n_casualties_before"] == direct > 5
    assert "regression to the mean" in had["caveat"]
