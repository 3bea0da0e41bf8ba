"""What keeps validation cheap must not change what it finds (issue 6, validation < 10 %).

- the frame GX sees has fast dtypes (int64, category, dates as dates) but the table's values;
- BASIC results plus our ``partial_unexpected_counts`` equal what GX's SUMMARY format gives;
- Data Docs are rendered once per run (queued by gates, rendered by the last one), with
  GX's templates compiled once per process.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from helpers import insert, unconstrain
from skadestue.config import Settings
from skadestue.quality import suites_for_stage, validate_stage

TODAY = dt.date(2025, 6, 30)
HMAC = "cd" * 32


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    base = tmp_path_factory.mktemp("cost")
    return Settings(warehouse=base / "w.duckdb", publish_dir=base / "publish", quality_dir=base / "quality")


@pytest.fixture()
def con(fresh_warehouse):
    return fresh_warehouse


def er(**over) -> dict:
    row = {"sygehus": "SVS Esbjerg", "kontakt_id": "K-1", "delivery_id": "er-1", "delivery_seq": 1,
           "line_no": 2, "ankomst": "2024-03-05 14:32:00", "ulykke_tid": "2024-03-05 14:10:00",
           "injury_date": "2024-03-05", "cpr_pseudonym": HMAC, "sex": "K", "age": 34,
           "road_user": "cyclist", "counterpart": "car", "ulykkessted": "Torvet 1, Ribe",
           "kommunekode": "0561", "diagnose": "DS525", "afslutning": "hjem", "severity": "slight"}
    row.update(over)
    return row


def test_read_table_keeps_values_in_fast_dtypes(con):
    from skadestue.quality.validate import read_table

    insert(con, "staging.er_contact", [
        er(),
        er(kontakt_id="K-2", age=None, sex=None, injury_date="2000-01-01", delivery_seq=3),
    ])
    cols = ["kontakt_id", "sex", "age", "delivery_seq", "injury_date", "ankomst"]
    df = read_table(con, "staging.er_contact", cols).sort_values("kontakt_id", ignore_index=True)
    assert str(df["kontakt_id"].dtype) == "category" and str(df["sex"].dtype) == "category"
    assert str(df["delivery_seq"].dtype) == "int64"   # INTEGER without NULLs
    assert str(df["age"].dtype) == "float64"          # INTEGER with a NULL
    assert df["kontakt_id"].tolist() == ["K-1", "K-2"]
    assert df["sex"].tolist()[0] == "K" and pd.isna(df["sex"].tolist()[1])
    assert df["age"].tolist()[0] == 34 and pd.isna(df["age"].tolist()[1])
    assert df["delivery_seq"].tolist() == [1, 3]
    assert df["injury_date"].tolist() == [dt.date(2024, 3, 5), dt.date(2000, 1, 1)]
    assert df["ankomst"].tolist() == [pd.Timestamp("2024-03-05 14:32:00")] * 2


def test_basic_results_with_our_counts_equal_gx_summary(con):
    """The same frame through GX with SUMMARY and with our BASIC + counts: same numbers."""
    import great_expectations as gx

    from skadestue.quality import gx_runtime
    from skadestue.quality.validate import read_table, suite_parameters, table_columns

    unconstrain(con, "staging.er_contact")
    rows = [er(kontakt_id=f"K-{i}") for i in range(6)] + [
        er(kontakt_id="X-1", road_user="spaceship"), er(kontakt_id="X-2", road_user="spaceship"),
        er(kontakt_id="X-3", road_user="hovercraft"), er(kontakt_id="X-4", age=150),
        er(kontakt_id="K-1", line_no=9),  # duplicate key: a multi-column unexpected value
        er(kontakt_id="X-5", kommunekode="561"),
    ]
    insert(con, "staging.er_contact", rows)
    spec = suites_for_stage("raw_er")[0]
    df = read_table(con, spec.table, [c for c in spec.columns if c in table_columns(con, spec.table)])
    params = suite_parameters(Settings(), TODAY)
    ours, _ = gx_runtime.run_suite(spec, df, "run-basic", params)

    context = gx_runtime.gx_context()
    suite = gx.ExpectationSuite(name="summary_reference", expectations=spec.gx_expectations())
    batch = context.data_sources.get(gx_runtime.DATASOURCE).add_dataframe_asset(
        name="summary_reference").add_batch_definition_whole_dataframe("all").get_batch(
        batch_parameters={"dataframe": df})
    reference = batch.validate(suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": 10},
                               expectation_parameters=params)

    def key(r):
        kwargs = {k: v for k, v in r.expectation_config.kwargs.items() if k != "batch_id"}
        return (r.expectation_config.type, json.dumps(kwargs, sort_keys=True, default=str))

    theirs = {key(r): r for r in reference.results}
    assert len(theirs) == len(ours.results) == len(spec.expectations)
    compared = 0
    for r in ours.results:
        ref = theirs[key(r)]
        assert r.success == ref.success, key(r)
        for field in ("element_count", "unexpected_count", "missing_count", "observed_value",
                      "partial_unexpected_list", "partial_unexpected_counts"):
            assert r.result.get(field) == ref.result.get(field), (key(r), field)
        compared += bool(r.result.get("partial_unexpected_counts"))
    # road_user, age, kommunekode and the compound key each found unexpected values
    assert compared == 4
    road = next(r for r in ours.results if r.expectation_config.kwargs.get("column") == "road_user")
    assert road.result["partial_unexpected_counts"] == [{"value": "spaceship", "count": 2},
                                                        {"value": "hovercraft", "count": 1}]
    assert "partial_unexpected_index_list" not in road.result  # the metric BASIC skips


def test_data_docs_are_rendered_once_per_run(con, settings, tmp_path):
    """Whole-table gates (a night's own pages: tests/test_quality_night.py)."""
    from functools import partial

    from skadestue.quality import docs_views

    whole = partial(validate_stage, incremental=False)

    docs = tmp_path / "docs"
    insert(con, "staging.er_contact", [er()])
    first = whole(con, "raw_er", "night-0", settings, docs, today=TODAY)
    assert first.docs_index == docs.resolve() / "index.html" and first.docs_index.exists()  # no index yet

    def pages(run_id: str) -> set[str]:
        return {p.parent.parent.parent.name for p in (docs / "validations").rglob("*.html") if run_id in str(p)}

    # a later night: passing gates only queue their results; the last gate renders them all
    ok = whole(con, "raw_er", "night-1", settings, docs, today=TODAY)
    assert ok.success and ok.docs_index == first.docs_index and pages("night-1") == set()
    con.execute("DROP TABLE IF EXISTS marts.hotspot_grid")
    con.execute("CREATE TABLE marts.hotspot_grid (cell_id VARCHAR, kommunekode VARCHAR, period_start DATE, "
                "period_end DATE, n_killed INTEGER, n_serious INTEGER, n_slight INTEGER, score DOUBLE, "
                "rank_in_kommune INTEGER)")
    insert(con, "marts.hotspot_grid", [{"cell_id": "100m_61669_7288", "kommunekode": "0561",
                                        "period_start": "2020-01-01", "period_end": "2024-12-31",
                                        "n_killed": 0, "n_serious": 1, "n_slight": 2, "score": 5.0,
                                        "rank_in_kommune": 1}])
    last = whole(con, "hotspots", "night-1", settings, docs, today=TODAY)
    assert last.success
    assert pages("night-1") == {"raw_er", "raw_er_timing", "hotspots"}
    assert "night-1" in last.docs_index.read_text(encoding="utf-8")

    # a critical failure renders at once (the operator needs the page before the run ends)
    con.execute("DELETE FROM staging.er_contact")
    failed = whole(con, "raw_er", "night-2", settings, docs, today=TODAY)
    assert not failed.success and pages("night-2") == {"raw_er", "raw_er_timing"}

    # every build of this process used one template environment per view class
    envs = {k[0].__name__: env for k, env in docs_views._ENVIRONMENTS.items()}
    assert set(envs) == {"CachedJinjaPageView", "CachedJinjaIndexPageView"}
    assert len(envs["CachedJinjaPageView"].cache) > 5  # compiled templates kept between builds
