"""Publication: both tiers, atomic swap, column allow-lists, disclosure control.

Uses the hand-made warehouse of test_hotspots (planted junction hotspot + background); all
people are synthetic.
"""

from __future__ import annotations

import json

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest

from skadestue.config import Settings
from skadestue.db import connect
from skadestue.hotspots import build_hotspots
from skadestue.publish import PublishError, UnexpectedColumnError, publish_layers, suppress_counts
from skadestue.publish import writer
from skadestue.publish.layers import COUNT_COLUMNS, ROAD_USER_COUNTS, SEVERITY_COUNTS, SOURCE_COUNTS
from test_hotspots import AS_OF, make_warehouse

LAYERS = ("hotspot_grid", "hotspot_junction", "hotspot_segment", "casualty_point", "plan_coverage")
HOTSPOTS = LAYERS[:3]


def _settings(tmp_path, k: int = 3) -> Settings:
    return Settings(publish_dir=tmp_path / "out" / "publish", publish={"suppression_k": k})


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pub")
    settings = _settings(tmp)
    con, _ = make_warehouse()
    build_hotspots(con, settings, as_of=AS_OF)
    report = publish_layers(con, settings, "run-1")
    yield con, settings, report
    con.close()


def _mart_rows(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {layer: con.execute(f"SELECT count(*) FROM marts.{layer}").fetchone()[0] for layer in LAYERS}


def test_publish_writes_all_files(published):
    con, settings, report = published
    out = settings.publish_dir
    expected = {
        "skadestue.duckdb", "skadestue.gpkg", "manifest.json",
        *(f"geoparquet/{layer}.parquet" for layer in LAYERS),
        "lokalraad/skadestue_lokalraad.gpkg",
        *(f"lokalraad/geoparquet/{layer}.parquet" for layer in HOTSPOTS),
    }
    assert set(report.files) == expected
    assert {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} == expected
    assert report.layer_rows == _mart_rows(con)
    assert not list(out.parent.glob(".publish-*"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["run_id"] == "run-1" and manifest["layer_rows"] == report.layer_rows


def test_gpkg_layers_read_back_in_epsg25832(published):
    con, settings, _ = published
    gpkg = settings.publish_dir / "skadestue.gpkg"
    assert {name for name, _ in pyogrio.list_layers(gpkg)} == {*LAYERS, "layer_info"}
    rows = _mart_rows(con)
    for layer in LAYERS:
        frame = gpd.read_file(gpkg, layer=layer)
        assert frame.crs.to_epsg() == 25832, layer
        assert len(frame) == rows[layer], layer
    j1 = gpd.read_file(gpkg, layer="hotspot_junction")
    j1 = j1[(j1.junction_id == "J1") & (j1.period_type == "window")].iloc[0]
    assert (j1.n_casualties, j1.n_killed, j1.n_er_only, j1.rank_in_kommune) == (8, 1, 4, 1)
    assert (j1.geometry.x, j1.geometry.y) == (480050.0, 6150050.0)
    info = gpd.read_file(gpkg, layer="layer_info")
    assert sorted(info["layer"]) == sorted(LAYERS)
    assert set(info["crs"]) == {"EPSG:25832"} and set(info["run_id"]) == {"run-1"}


def test_duckdb_file_holds_layers_with_crs_and_layer_info(published):
    con, settings, _ = published
    pub = connect(settings.publish_dir / "skadestue.duckdb", read_only=True, migrate_schema=False)
    try:
        tables = {r[0] for r in pub.execute("SHOW TABLES").fetchall()}
        assert tables == {*LAYERS, "layer_info"}
        geom_type = pub.execute(
            "SELECT data_type FROM duckdb_columns() WHERE table_name = 'hotspot_grid' AND column_name = 'geom'"
        ).fetchone()[0]
        assert geom_type == "GEOMETRY"                 # the CRS is stated in layer_info.crs
        assert pub.execute("SELECT DISTINCT crs FROM layer_info").fetchall() == [("EPSG:25832",)]
        assert pub.execute(
            "SELECT n_er_only, n_killed FROM hotspot_grid WHERE cell_id = '100m_61500_4800' "
            "AND period_type = 'window'"
        ).fetchone() == (4, 1)
        info = pub.execute(
            "SELECT layer, tier, n_rows, period_start::VARCHAR, period_end::VARCHAR, n_unplaced_in_window "
            "FROM layer_info ORDER BY layer"
        ).fetchall()
        rows = _mart_rows(con)
        assert info == [
            (layer, "engineers", rows[layer], "2020-01-01", "2024-12-31", 2) for layer in sorted(LAYERS)
        ]
    finally:
        pub.close()


def test_geoparquet_round_trip(published):
    con, settings, _ = published
    rows = _mart_rows(con)
    for layer in LAYERS:
        frame = gpd.read_parquet(settings.publish_dir / "geoparquet" / f"{layer}.parquet")
        assert frame.crs.to_epsg() == 25832 and len(frame) == rows[layer]
    points = gpd.read_parquet(settings.publish_dir / "geoparquet" / "casualty_point.parquet")
    assert points.geometry.isna().sum() == 2          # the unplaced casualties, kept


def test_no_forbidden_columns_anywhere(published):
    _, settings, _ = published
    forbidden = ("cpr", "pseudonym", "birth", "kontakt", "fritekst", "ulykkessted", "diagnose", "sygehus")
    for gpkg in (settings.publish_dir / "skadestue.gpkg", settings.publish_dir / "lokalraad" / "skadestue_lokalraad.gpkg"):
        for layer, _ in pyogrio.list_layers(gpkg):
            fields = pyogrio.read_info(gpkg, layer=layer)["fields"]
            assert not [f for f in fields if any(word in f.lower() for word in forbidden)], (gpkg, layer)


def _lokal(settings: Settings, layer: str) -> pd.DataFrame:
    return gpd.read_file(settings.publish_dir / "lokalraad" / "skadestue_lokalraad.gpkg", layer=layer)


def test_lokalraad_tier_has_no_small_er_counts(published):
    _, settings, report = published
    gpkg = settings.publish_dir / "lokalraad" / "skadestue_lokalraad.gpkg"
    assert {name for name, _ in pyogrio.list_layers(gpkg)} == {*HOTSPOTS, "layer_info"}
    k = settings.publish.suppression_k
    for layer in HOTSPOTS:
        frame = _lokal(settings, layer)
        assert len(frame) == report.lokalraad_rows[layer]
        counts = [c for c in COUNT_COLUMNS if c in frame.columns]
        er_rows = frame["suppressed"] | (frame["n_er_only"].fillna(k) > 0)
        small = frame.loc[er_rows, counts].apply(lambda s: s.between(1, k - 1)).to_numpy()
        assert not small.any(), layer
        assert int(frame["suppressed"].sum()) == report.suppressed_rows[layer] > 0
        # no additive group can be undone by subtraction: never exactly one hidden cell
        for group in (SEVERITY_COUNTS, ROAD_USER_COUNTS, SOURCE_COUNTS):
            hidden = frame[["n_casualties", *group]].isna().sum(axis=1)
            assert not (hidden == 1).any(), (layer, group)


def test_lokalraad_planted_junction_suppression(published):
    _, settings, _ = published
    frame = _lokal(settings, "hotspot_junction")
    j1 = frame[(frame.junction_id == "J1") & (frame.period_type == "window")].iloc[0]
    # n_killed = 1 is hidden, and n_serious (3, the smallest other) with it; score reveals them
    assert pd.isna(j1.n_killed) and pd.isna(j1.n_serious) and pd.isna(j1.score)
    assert (j1.n_accidents, j1.n_casualties, j1.n_slight, j1.n_er_only, j1.n_police) == (6, 8, 4, 4, 4)
    assert j1.n_unknown == 0 and j1.n_cyclist == 3 and pd.isna(j1.n_pedestrian) and pd.isna(j1.n_car)
    assert bool(j1.suppressed) is True
    assert j1.suppressed_columns.split(",") == [
        "n_killed", "n_serious", "n_pedestrian", "n_e_bike", "n_moped", "n_car", "score", "excess_score",
    ]
    assert j1.obs_exp_ratio > 1 and j1.rule_flag


def test_lokalraad_police_only_rows_keep_exact_counts(published):
    _, settings, _ = published
    grid = _lokal(settings, "hotspot_grid")
    border = grid[(grid.cell_id == "100m_61445_4900") & (grid.period_type == "window")].set_index("kommunekode")
    assert border.loc["0561", "n_casualties"] == 1 and not border.loc["0561", "suppressed"]
    assert pd.isna(border.loc["0575", "n_casualties"]) and border.loc["0575", "suppressed"]
    assert "n_er_only" in border.loc["0575", "suppressed_columns"].split(",")


def test_failed_publish_leaves_previous_layers(published, monkeypatch):
    con, settings, _ = published
    before = {p: p.read_bytes() for p in settings.publish_dir.rglob("*") if p.is_file()}
    real = writer._write_gpkg

    def failing(path, frames, info, **kw):
        if "lokalraad" in str(path):
            raise OSError("disk full (simulated)")
        real(path, frames, info, **kw)

    monkeypatch.setattr(writer, "_write_gpkg", failing)
    with pytest.raises(OSError, match="simulated"):
        publish_layers(con, settings, "run-2", force=True)
    after = {p: p.read_bytes() for p in settings.publish_dir.rglob("*") if p.is_file()}
    assert after == before
    assert json.loads((settings.publish_dir / "manifest.json").read_text())["run_id"] == "run-1"
    assert not list(settings.publish_dir.parent.glob(".publish-*"))


def test_second_publish_replaces_the_first(tmp_path):
    settings = _settings(tmp_path)
    con, _ = make_warehouse()
    build_hotspots(con, settings, as_of=AS_OF)
    publish_layers(con, settings, "night-1")
    (settings.publish_dir / "stale.txt").write_text("from night 1")
    publish_layers(con, settings, "night-2", force=True)
    assert json.loads((settings.publish_dir / "manifest.json").read_text())["run_id"] == "night-2"
    assert not (settings.publish_dir / "stale.txt").exists()
    assert sorted(p.name for p in settings.publish_dir.parent.iterdir()) == ["publish"]

    # an unexpected column in a mart stops publication and keeps night 2's layers
    con.execute("ALTER TABLE marts.casualty_point ADD COLUMN cpr_pseudonym VARCHAR")
    with pytest.raises(UnexpectedColumnError, match="cpr_pseudonym"):
        publish_layers(con, settings, "night-3")
    con.execute("ALTER TABLE marts.casualty_point DROP COLUMN cpr_pseudonym")

    # marts older than core.casualty are refused
    con.execute(
        "INSERT INTO core.casualty (casualty_id, source, injury_date, geocode_quality, road_user, "
        "counterpart, severity, age_band, n_er_contacts) "
        "VALUES ('NEW-1', 'er', DATE '2024-02-02', 'none', 'cyclist', 'none', 'slight', 'unknown', 1)"
    )
    with pytest.raises(PublishError, match="run build_hotspots"):
        publish_layers(con, settings, "night-4")
    with pytest.raises(PublishError, match="run_id"):
        publish_layers(con, settings, "../escape")
    assert json.loads((settings.publish_dir / "manifest.json").read_text())["run_id"] == "night-2"
    con.close()


def test_suppress_counts_rules():
    base = {c: 0 for c in COUNT_COLUMNS}
    rows = [
        # ER row: 1 serious among 5 slight -> serious hidden, slight (5) hidden as its complement
        {**base, "n_accidents": 6, "n_casualties": 6, "n_serious": 1, "n_slight": 5, "n_er_only": 6,
         "n_cyclist": 6, "score": 10.0},
        # police-only row: small counts stay
        {**base, "n_accidents": 1, "n_casualties": 2, "n_slight": 2, "n_police": 2, "n_car": 2, "score": 2.0},
        # ER row where everything is >= k: nothing hidden
        {**base, "n_accidents": 3, "n_casualties": 3, "n_slight": 3, "n_er_only": 3, "n_cyclist": 3, "score": 3.0},
    ]
    out = suppress_counts(pd.DataFrame(rows), COUNT_COLUMNS, k=3)
    assert out["suppressed"].tolist() == [True, False, False]
    assert out.loc[0, "suppressed_columns"] == "n_serious,n_slight,score"
    assert pd.isna(out.loc[0, "n_serious"]) and pd.isna(out.loc[0, "n_slight"]) and pd.isna(out.loc[0, "score"])
    assert out.loc[0, "n_casualties"] == 6 and out.loc[0, "n_cyclist"] == 6
    assert out.loc[1, "n_slight"] == 2 and out.loc[1, "score"] == 2.0 and pd.isna(out.loc[1, "suppressed_columns"])
    assert out.loc[2].n_casualties == 3
    assert str(out["n_slight"].dtype) == "Int64"
    # k = 1 suppresses nothing
    assert not suppress_counts(pd.DataFrame(rows), COUNT_COLUMNS, k=1)["suppressed"].any()
    assert np.array_equal(out.columns[-2:], ["suppressed", "suppressed_columns"])


# --- incremental nights (issue 9) -------------------------------------------------------------------


def _files(directory):
    """{relative path: (inode, bytes)} of every file under ``directory``."""
    return {str(p.relative_to(directory)): (p.stat().st_ino, p.read_bytes())
            for p in sorted(directory.rglob("*")) if p.is_file()}


def _layer_contents(publish_dir):
    """Every published layer of every file, as sorted frames (geometry as WKB)."""
    out = {}
    for gpkg in (publish_dir / "skadestue.gpkg", publish_dir / "lokalraad" / "skadestue_lokalraad.gpkg"):
        for layer, _ in pyogrio.list_layers(gpkg):
            frame = gpd.read_file(gpkg, layer=layer)
            out[f"{gpkg.name}:{layer}"] = frame
    for pq in sorted(publish_dir.rglob("*.parquet")):
        out[str(pq.relative_to(publish_dir))] = gpd.read_parquet(pq)
    pub = connect(publish_dir / "skadestue.duckdb", read_only=True, migrate_schema=False)
    try:
        for (table,) in pub.execute("SHOW TABLES").fetchall():
            out[f"duckdb:{table}"] = pub.execute(
                f"SELECT * EXCLUDE (geom), ST_AsWKB(geom) AS geom FROM {table}" if table != "layer_info"
                else f"SELECT * FROM {table}").df()
    finally:
        pub.close()
    normal = {}
    for name, frame in out.items():
        frame = pd.DataFrame(frame).drop(columns=["run_id", "published_at"], errors="ignore")
        if "geometry" in frame.columns or "geom" in frame.columns:
            col = "geometry" if "geometry" in frame.columns else "geom"
            frame[col] = [g.wkb if hasattr(g, "wkb") else (bytes(g) if isinstance(g, (bytes, bytearray, memoryview)) else None)
                         for g in frame[col]]
        normal[name] = frame.sort_values(list(frame.columns[:4])).reset_index(drop=True)
    return normal


def test_unchanged_marts_are_not_published_again(tmp_path):
    settings = _settings(tmp_path)
    con, _ = make_warehouse()
    build_hotspots(con, settings, as_of=AS_OF)
    first = publish_layers(con, settings, "night-1")
    assert first.status == "published" and sorted(first.layers_written) == sorted(LAYERS)
    assert first.files_reused == []
    stored = dict(con.execute("SELECT part, run_id FROM ops.stage_state WHERE stage = 'publish'").fetchall())
    assert set(stored) == {*LAYERS, "layer_info", "lokalraad", "all"} and set(stored.values()) == {"night-1"}
    before = _files(settings.publish_dir)

    second = publish_layers(con, settings, "night-2")
    assert second.status == "unchanged" and second.published_run_id == "night-1"
    assert second.layer_rows == first.layer_rows and second.files == first.files
    assert _files(settings.publish_dir) == before            # same files, same inodes: nothing written
    assert json.loads((settings.publish_dir / "manifest.json").read_text())["run_id"] == "night-1"
    assert not list(settings.publish_dir.parent.glob(".publish-*"))

    # a publish setting that shapes the lokalråd tier changes: the lokalråd files are rewritten,
    # the engineers' layers are not
    k4 = settings.model_copy(update={"publish": settings.publish.model_copy(update={"suppression_k": 4})})
    third = publish_layers(con, k4, "night-3")
    assert third.status == "published" and third.layers_written == []
    assert "geoparquet/casualty_point.parquet" in third.files_reused
    assert not any(f.startswith("lokalraad/") for f in third.files_reused)

    # `skadestue run --full` forgets the fingerprints: everything is written again
    from skadestue import state

    state.forget(con)
    fourth = publish_layers(con, k4, "night-4")
    assert fourth.status == "published" and sorted(fourth.layers_written) == sorted(LAYERS)
    assert fourth.files_reused == []
    con.close()


def test_changed_layer_rewritten_rest_carried_over_same_as_full(tmp_path):
    settings = _settings(tmp_path)
    con, _ = make_warehouse()
    build_hotspots(con, settings, as_of=AS_OF)
    publish_layers(con, settings, "night-1")
    old = _files(settings.publish_dir)
    # one casualty's hour changes in the mart: only casualty_point differs
    cid = con.execute("SELECT min(casualty_id) FROM marts.casualty_point").fetchone()[0]
    con.execute("UPDATE marts.casualty_point SET injury_hour = 23 - coalesce(injury_hour, 0) WHERE casualty_id = ?",
                [cid])
    hour = con.execute("SELECT injury_hour FROM marts.casualty_point WHERE casualty_id = ?", [cid]).fetchone()[0]
    report = publish_layers(con, settings, "night-2")
    assert report.status == "published" and report.layers_written == ["casualty_point"]
    new = _files(settings.publish_dir)
    # lokalråd tier and the unchanged layers' GeoParquet: hard links to night 1's files
    carried = {f for f in new if f.startswith("lokalraad/")} | {
        f"geoparquet/{layer}.parquet" for layer in LAYERS if layer != "casualty_point"}
    assert set(report.files_reused) == carried
    for f in carried:
        assert new[f] == old[f], f
    for f in ("skadestue.gpkg", "skadestue.duckdb", "geoparquet/casualty_point.parquet"):
        assert new[f][0] != old[f][0], f                   # a new file, not the published one changed
    points = gpd.read_parquet(settings.publish_dir / "geoparquet" / "casualty_point.parquet")
    assert points.set_index("casualty_id").loc[cid, "injury_hour"] == hour
    info = gpd.read_file(settings.publish_dir / "skadestue.gpkg", layer="layer_info").set_index("layer")
    assert info.loc["casualty_point", "run_id"] == "night-2" and info.loc["hotspot_grid", "run_id"] == "night-1"
    manifest = json.loads((settings.publish_dir / "manifest.json").read_text())
    assert manifest["run_id"] == "night-2" and manifest["layers"]["hotspot_junction"]["run_id"] == "night-1"

    # the same marts published from scratch give the same layers in every file
    full = _settings(tmp_path / "full")
    publish_layers(con, full, "full-1", force=True)
    incremental, scratch = _layer_contents(settings.publish_dir), _layer_contents(full.publish_dir)
    assert incremental.keys() == scratch.keys()
    for name in scratch:
        pd.testing.assert_frame_equal(incremental[name], scratch[name], obj=name)
    con.close()
