"""Quality gates: suites in expectations/*.json, validate_stage, the publication gate.

GX is slow to import, so one process-wide context serves the whole module (the library
caches it); each test gets its own in-memory warehouse.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
from pathlib import Path

import pandas as pd
import pytest

from helpers import insert, unconstrain
from skadestue import vocab
from skadestue.config import Settings

from skadestue.quality import (
    STAGES,
    CriticalExpectationFailed,
    StageValidation,
    SuiteError,
    all_suites,
    default_docs_dir,
    raise_for_critical,
    stage_gate,
    suites_for_stage,
    validate_stage,
)
from skadestue.quality.redact import REDACTED, redact
from skadestue.quality.suites import read_suite

TODAY = dt.date(2025, 6, 30)
#: A synthetic CPR-like number (not a real person) planted in the adversarial data.
FAKE_CPR = "010190-1111"
FAKE_CPR_DIGITS = "0101901111"
HMAC = "9f" * 32


# ---------------------------------------------------------------- helpers and fixtures


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    base = tmp_path_factory.mktemp("quality")
    return Settings(warehouse=base / "warehouse.duckdb", publish_dir=base / "publish",
                    quality_dir=base / "quality")


@pytest.fixture()
def con(fresh_warehouse):
    return fresh_warehouse


def er_row(**over) -> dict:
    row = {
        "sygehus": "SVS Esbjerg", "kontakt_id": "SVS-2024-000123", "delivery_id": "er-aaaa",
        "delivery_seq": 1, "line_no": 2, "ankomst": "2024-03-05 14:32:00",
        "ulykke_tid": "2024-03-05 14:10:00", "injury_date": "2024-03-05",
        "cpr_pseudonym": HMAC, "sex": "M", "age": 34, "road_user": "cyclist",
        "counterpart": "car", "ulykkessted": "Kongensgade 12, 6700 Esbjerg",
        "kommunekode": "0561", "diagnose": "DS525", "afslutning": "hjem", "severity": "serious",
    }
    row.update(over)
    return row


def good_er_rows() -> list[dict]:
    """Varied valid contacts: nulls where allowed, Danish letters, corrections (seq 2)."""
    return [
        er_row(),
        er_row(kontakt_id="SVS-2024-000123", delivery_seq=2, line_no=5),  # a correction
        er_row(sygehus="SHS Aabenraa", kontakt_id="SVS-2024-000123", ulykke_tid=None,
               cpr_pseudonym=None, sex="K", age=None, road_user="pedestrian",
               counterpart="none", ulykkessted=None, kommunekode=None, afslutning="død",
               severity="killed", diagnose="DS065"),
        er_row(kontakt_id="A-7", ankomst="2000-01-01 00:05:00", ulykke_tid="2000-01-01 00:05:00",
               injury_date="2000-01-01", age=0, road_user="e_bike", counterpart="fixed_object",
               ulykkessted="krydset Storegade/Jernbanegade, Vejen", kommunekode="0575",
               afslutning=None, severity="unknown", sex=None, diagnose=None),
        er_row(kontakt_id="A-8", ankomst="2025-06-30 23:50:00", ulykke_tid=None,
               injury_date=TODAY.isoformat(), age=120, road_user="unknown",
               counterpart="unknown", ulykkessted="Rute 11 ved Ribe, tlf 75 12 34 56",
               kommunekode="0580", afslutning="overflyttet", severity="slight"),
    ]


def failed(result: StageValidation) -> dict[tuple[str, str | None], dict]:
    return {(r["expectation"], r["column_name"]): r for r in result.results if not r["success"]}


def stored(con, run_id: str, stage: str) -> pd.DataFrame:
    return con.execute(
        "SELECT * FROM quality.validation_result WHERE run_id = ? AND stage = ? ORDER BY suite, expectation, column_name",
        [run_id, stage],
    ).df()


def spec_count(stage: str) -> int:
    return sum(len(s.expectations) for s in suites_for_stage(stage))


# ---------------------------------------------------------------- suites


def test_suites_cover_every_stage_with_the_right_tables():
    specs = {s.name: s for s in all_suites()}
    assert set(specs) == {"raw_er", "raw_er_timing", "raw_police", "raw_police_person",
                          "raw_police_counts", "geocoded", "linked", "linked_share", "hotspots"}
    assert {s.stage for s in specs.values()} == set(STAGES)
    assert {n: s.table for n, s in specs.items()} == {
        "raw_er": "staging.er_contact",
        "raw_er_timing": "quality.er_contact_timing",
        "raw_police": "staging.police_accident",
        "raw_police_counts": "quality.police_accident_person_counts",
        "linked_share": "quality.casualty_link_share",
        "raw_police_person": "staging.police_person",
        "geocoded": "core.er_contact",
        "linked": "core.casualty",
        "hotspots": "marts.hotspot_grid",
    }
    assert [s.name for s in suites_for_stage("raw_police")] == [
        "raw_police", "raw_police_counts", "raw_police_person"]
    for spec in specs.values():
        assert spec.expectations[0]["type"] == "expect_table_row_count_to_be_between"
        assert spec.expectations[0]["meta"]["critical"] is True
        assert all(e["meta"]["why"] for e in spec.expectations)


def test_suites_build_as_gx_suites():
    import great_expectations as gx

    from skadestue.quality.gx_runtime import gx_context

    gx_context()
    for spec in all_suites():
        suite = gx.ExpectationSuite(name=f"check_{spec.name}", expectations=spec.gx_expectations())
        assert len(suite.expectations) == len(spec.expectations)
        severities = [e.severity.value for e in suite.expectations]
        assert severities == ["critical" if e["meta"]["critical"] else "warning" for e in spec.expectations]


def test_value_sets_equal_vocab():
    checked = 0
    vocab_columns = {"road_user", "counterpart", "severity", "sex", "geocode_quality", "source", "age_band", "skadesgrad"}
    for spec in all_suites():
        for e in spec.expectations:
            if e["type"] != "expect_column_values_to_be_in_set":
                continue
            if e["kwargs"]["column"] in vocab_columns:
                assert "vocab" in e["meta"], f"{spec.name}: {e['kwargs']['column']} set not tied to vocab.py"
            if "vocab" in e["meta"]:
                ref = getattr(vocab, e["meta"]["vocab"])
                expected = list(ref.keys()) if isinstance(ref, dict) else list(ref)
                assert e["kwargs"]["value_set"] == expected, (spec.name, e["kwargs"]["column"])
                checked += 1
    assert checked == 21


def test_suite_columns_exist_in_the_warehouse_schema(con):
    from skadestue.quality.validate import table_columns

    for spec in all_suites():
        cols = table_columns(con, spec.table)
        if not cols:  # a table built by a stage not migrated yet
            assert spec.table == "marts.hotspot_grid"
            continue
        assert set(spec.columns) <= set(cols), (spec.name, set(spec.columns) - set(cols))


def test_malformed_suite_files_give_clear_errors(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "stage": "raw_er", "table": "staging.er_contact",
                               "expectations": [{"type": "expect_column_values_to_not_be_null",
                                                 "kwargs": {"column": "sygehus"}, "meta": {}}]}))
    with pytest.raises(SuiteError, match=r"bad\.json.*meta\.critical"):
        read_suite(bad)
    bad.write_text(json.dumps({"name": "x", "stage": "nightly", "table": "a.b", "expectations": []}))
    with pytest.raises(SuiteError, match="unknown stage 'nightly'"):
        read_suite(bad)
    with pytest.raises(SuiteError, match="unknown stage"):
        suites_for_stage("publish")


def test_redact_removes_cpr_like_runs_only():
    text = f"ring {FAKE_CPR} el. {FAKE_CPR_DIGITS}; Kongensgade 12, 6700 Esbjerg, tlf 75123456"
    out = redact({"v": [text, 101901111, 6700, float("nan")], FAKE_CPR: 1})
    assert out == {
        "v": [f"ring {REDACTED} el. {REDACTED}; Kongensgade 12, 6700 Esbjerg, tlf 75123456",
              101901111, 6700, None],
        REDACTED: 1,
    }
    assert redact(1012901111) == REDACTED


# ---------------------------------------------------------------- validate_stage


def test_good_er_table_passes_and_results_are_stored(con, settings, tmp_path):
    insert(con, "staging.er_contact", good_er_rows())
    docs = tmp_path / "docs"
    res = validate_stage(con, "raw_er", "run-good", settings, docs, today=TODAY)

    assert res.success and res.critical_failures == [] and res.warnings == []
    assert (res.n_expectations, res.n_failed) == (19, 0)
    assert res.suites == ["raw_er", "raw_er_timing"]
    df = stored(con, "run-good", "raw_er")
    assert len(df) == 19 and df["success"].all()
    assert df.groupby("suite").size().to_dict() == {"raw_er": 17, "raw_er_timing": 2}
    df = df[df.suite == "raw_er"]
    row_count = df[df.expectation == "expect_table_row_count_to_be_between"].iloc[0]
    assert json.loads(row_count.details)["observed_value"] == 5
    nulls = df[(df.expectation == "expect_column_values_to_not_be_null") & (df.column_name == "kontakt_id")]
    assert nulls[["element_count", "unexpected_count"]].values.tolist() == [[5, 0]]
    age = df[(df.expectation == "expect_column_values_to_be_between") & (df.column_name == "age")].iloc[0]
    assert json.loads(age.details)["missing_count"] == 1
    assert res.docs_index == docs.resolve() / "index.html" and res.docs_index.exists()
    assert "raw_er" in res.docs_index.read_text(encoding="utf-8")
    assert stage_gate([res]) is True
    raise_for_critical([res])  # no exception


def test_bad_er_table_fails_the_right_expectations(con, settings, tmp_path, caplog):
    unconstrain(con, "staging.er_contact")
    rows = good_er_rows() + [
        er_row(kontakt_id=None, line_no=9),                                   # null key
        er_row(kontakt_id="DUP-1", line_no=10), er_row(kontakt_id="DUP-1", line_no=11),  # duplicate
        er_row(kontakt_id="X-1", road_user="spaceship"),
        er_row(kontakt_id="X-2", age=150),
        er_row(kontakt_id="X-3", ulykkessted=f"cykelstien ud for Vestervej 40 {FAKE_CPR}"),
        er_row(kontakt_id="X-4", ulykkessted=f"Ribe {FAKE_CPR_DIGITS}"),
        er_row(kontakt_id="X-5", kommunekode="561", injury_date="2025-07-01",
               ulykke_tid="2025-07-01 10:00:00", ankomst="2025-07-01 09:00:00"),
    ]
    insert(con, "staging.er_contact", rows)
    caplog.set_level(logging.INFO)
    res = validate_stage(con, "raw_er", "run-bad", settings, tmp_path / "docs", today=TODAY)

    assert not res.success and stage_gate([res]) is False
    assert sorted(res.critical_failures) == sorted([
        "raw_er.expect_column_values_to_not_be_null[kontakt_id]",
        "raw_er.expect_compound_columns_to_be_unique[sygehus,kontakt_id,delivery_seq]",
        "raw_er.expect_column_values_to_be_in_set[road_user]",
        "raw_er.expect_column_values_to_not_match_regex[ulykkessted]",
        "raw_er.expect_column_values_to_match_regex[kommunekode]",
    ])
    assert sorted(res.warnings) == sorted([
        "raw_er.expect_column_values_to_be_between[age]",
        "raw_er.expect_column_values_to_be_between[injury_date]",
        "raw_er.expect_column_pair_values_a_to_be_greater_than_b[ankomst,ulykke_tid]",
        "raw_er_timing.expect_column_values_to_be_between[hours_to_arrival]",  # 1 of 12 timed
    ])
    assert res.n_failed == 9 and res.n_expectations == 19
    counts = {k: (r["element_count"], r["unexpected_count"]) for k, r in failed(res).items()
              if r["suite"] == "raw_er"}
    n = len(rows)
    assert counts == {
        ("expect_column_values_to_not_be_null", "kontakt_id"): (n, 1),
        ("expect_compound_columns_to_be_unique", "sygehus,kontakt_id,delivery_seq"): (n, 2),
        ("expect_column_values_to_be_in_set", "road_user"): (n, 1),
        ("expect_column_values_to_be_between", "age"): (n, 1),
        ("expect_column_values_to_not_match_regex", "ulykkessted"): (n, 2),
        ("expect_column_values_to_match_regex", "kommunekode"): (n, 1),
        ("expect_column_values_to_be_between", "injury_date"): (n, 1),
        ("expect_column_pair_values_a_to_be_greater_than_b", "ankomst,ulykke_tid"): (n, 1),
    }
    road = json.loads(failed(res)[("expect_column_values_to_be_in_set", "road_user")]["details"])
    assert road["unexpected_values"] == [{"value": "spaceship", "count": 1}]
    place = json.loads(failed(res)[("expect_column_values_to_not_match_regex", "ulykkessted")]["details"])
    assert sorted(v["value"] for v in place["unexpected_values"]) == [
        f"Ribe {REDACTED}", f"cykelstien ud for Vestervej 40 {REDACTED}"]

    df = stored(con, "run-bad", "raw_er")
    assert len(df) == 19
    df = df[df.suite == "raw_er"]
    bad = df[~df.success]
    assert sorted(zip(bad.column_name, bad.critical, bad.unexpected_count)) == sorted([
        ("kontakt_id", True, 1), ("sygehus,kontakt_id,delivery_seq", True, 2),
        ("road_user", True, 1), ("ulykkessted", True, 2), ("kommunekode", True, 1),
        ("age", False, 1), ("injury_date", False, 1), ("ankomst,ulykke_tid", False, 1),
    ])
    with pytest.raises(CriticalExpectationFailed, match="5 critical expectation"):
        raise_for_critical([res])

    # the planted CPR number is nowhere: not in the table, the result object, logs or HTML
    everything = " ".join(
        [con.execute("SELECT string_agg(details::VARCHAR, ' ') FROM quality.validation_result").fetchone()[0],
         repr(res), caplog.text]
        + [p.read_text(encoding="utf-8", errors="replace") for p in (tmp_path / "docs").rglob("*.html")]
    )
    assert (tmp_path / "docs" / "index.html").exists()
    assert len(list((tmp_path / "docs").rglob("*.html"))) >= 3
    for needle in (FAKE_CPR, FAKE_CPR_DIGITS, "010190"):
        assert needle not in everything


def test_rerun_of_the_same_run_replaces_rows(con, settings):
    insert(con, "staging.er_contact", good_er_rows())
    validate_stage(con, "raw_er", "run-again", settings, today=TODAY)
    validate_stage(con, "raw_er", "run-again", settings, today=TODAY)
    validate_stage(con, "raw_er", "run-other", settings, today=TODAY)
    n = con.execute(
        "SELECT run_id, count(*) FROM quality.validation_result GROUP BY run_id ORDER BY run_id"
    ).fetchall()
    assert n == [("run-again", 19), ("run-other", 19)]


def test_empty_table_is_a_critical_failure(con, settings):
    res = validate_stage(con, "raw_er", "run-empty", settings, today=TODAY)
    assert res.critical_failures == ["raw_er.expect_table_row_count_to_be_between",
                                     "raw_er_timing.expect_table_row_count_to_be_between"]
    assert res.n_failed == 2


def test_raw_police_validates_accidents_and_persons(con, settings):
    acc = {"delivery_id": "pa-1", "delivery_seq": 1, "line_no": 2, "uheldsdato": "2023-11-02",
           "kode_uheldssituation": "510", "kommunekode": "0540", "x": 543210.5, "y": 6090123.0,
           "antal_draebte": 0, "antal_alv": 1, "antal_let": 0, "severity": "serious"}
    insert(con, "staging.police_accident", [
        {**acc, "uheld_id": "U1"},
        {**acc, "uheld_id": "U1", "delivery_seq": 2},
        {**acc, "uheld_id": "U2", "x": None, "y": None, "kommunekode": "0550", "severity": "killed",
         "antal_draebte": 1, "antal_alv": 0},
    ])
    per = {"delivery_id": "pp-1", "delivery_seq": 1, "line_no": 2, "uheld_id": "U1",
           "road_user": "car", "skadesgrad": "U", "severity": "uninjured", "age": 45, "sex": "K",
           "cpr_pseudonym": HMAC}
    persons = [
        {**per, "elementnr": 1, "personnr": 1},
        {**per, "elementnr": 2, "personnr": 1, "road_user": "cyclist", "skadesgrad": "A",
         "severity": "serious", "age": 12, "sex": "M"},
        {**per, "uheld_id": "U2", "elementnr": 1, "personnr": 1, "road_user": "motorcycle",
         "skadesgrad": "D", "severity": "killed", "cpr_pseudonym": None, "age": None, "sex": None},
    ]
    insert(con, "staging.police_person", persons)
    res = validate_stage(con, "raw_police", "run-p", settings, today=TODAY)
    assert res.success and res.suites == ["raw_police", "raw_police_counts", "raw_police_person"]
    assert res.n_expectations == spec_count("raw_police") == 32
    assert stored(con, "run-p", "raw_police").groupby("suite").size().to_dict() == {
        "raw_police": 14, "raw_police_counts": 7, "raw_police_person": 11}

    insert(con, "staging.police_person", [
        {**per, "uheld_id": "U3", "elementnr": 1, "personnr": 1, "severity": "dead", "skadesgrad": "X",
         "cpr_pseudonym": FAKE_CPR_DIGITS},
    ])
    res = validate_stage(con, "raw_police", "run-p", settings, today=TODAY)
    assert sorted(res.critical_failures) == [
        "raw_police_person.expect_column_values_to_be_in_set[severity]",
        "raw_police_person.expect_column_values_to_not_match_regex[cpr_pseudonym]",
    ]
    assert res.warnings == ["raw_police_person.expect_column_values_to_be_in_set[skadesgrad]"]
    assert len(stored(con, "run-p", "raw_police")) == 32
    assert FAKE_CPR_DIGITS not in json.dumps(res.results)


def geocoded_row(**over) -> dict:
    row = {"sygehus": "SVS Esbjerg", "kontakt_id": "K1", "delivery_id": "er-1",
           "ankomst": "2024-05-01 10:00:00", "injury_date": "2024-05-01", "road_user": "cyclist",
           "counterpart": "none", "severity": "slight", "kommunekode": "0561",
           "x": 470123.4, "y": 6150321.9, "geocode_quality": "A", "geocode_uncertainty_m": 5.0}
    row.update(over)
    return row


def test_geocoded_share_is_a_warning_but_half_a_point_is_critical(con, settings):
    insert(con, "core.er_contact", [
        geocoded_row(),
        geocoded_row(kontakt_id="K2", x=None, y=None, geocode_quality="none", geocode_uncertainty_m=None),
        geocoded_row(kontakt_id="K3", x=None, y=None, geocode_quality="none", geocode_uncertainty_m=None),
    ])
    res = validate_stage(con, "geocoded", "run-g", settings, today=TODAY)
    assert res.success and res.warnings == ["geocoded.expect_column_values_to_not_be_null[x]"]
    share = failed(res)[("expect_column_values_to_not_be_null", "x")]
    assert (share["element_count"], share["unexpected_count"]) == (3, 2)

    con.execute("UPDATE core.er_contact SET x = 10.45, y = NULL WHERE kontakt_id = 'K1'")  # lon as x
    res = validate_stage(con, "geocoded", "run-g", settings, today=TODAY)
    assert sorted(res.critical_failures) == [
        "geocoded.expect_column_values_to_be_between[x]",
        "geocoded.expect_column_values_to_not_be_null[y]",
    ]
    assert failed(res)[("expect_column_values_to_not_be_null", "y")]["unexpected_count"] == 1


def casualty_row(**over) -> dict:
    row = {"casualty_id": "C1", "source": "both", "uheld_id": "U1", "injury_date": "2023-08-14",
           "injury_hour": 17, "kommunekode": "0510", "x": 530001.0, "y": 6124000.0,
           "geocode_quality": "police", "road_user": "moped", "counterpart": "car",
           "severity": "serious", "age_band": "15-17", "sex": "M", "link_probability": 0.97,
           "n_er_contacts": 2}
    row.update(over)
    return row


def test_linked_casualties(con, settings):
    insert(con, "core.casualty", [
        casualty_row(),
        casualty_row(casualty_id="C2", source="er", uheld_id=None, link_probability=None,
                     injury_hour=None, x=None, y=None, geocode_quality="none", sex=None,
                     age_band="unknown", counterpart="fixed_object", n_er_contacts=1),
        casualty_row(casualty_id="C3", source="police", link_probability=None, n_er_contacts=0,
                     age_band="75+", severity="killed", road_user="pedestrian", injury_hour=0),
    ])
    res = validate_stage(con, "linked", "run-l", settings, today=TODAY)
    assert res.success and res.n_failed == 0 and res.n_expectations == 24

    insert(con, "core.casualty", [
        casualty_row(casualty_id="C4", link_probability=1.3),
        casualty_row(casualty_id="C5", source="hospital", link_probability=None),
        casualty_row(casualty_id="C6", age_band="34", injury_hour=24),
        casualty_row(casualty_id="C7", link_probability=None),
    ])
    res = validate_stage(con, "linked", "run-l", settings, today=TODAY)
    assert sorted(res.critical_failures) == [
        "linked.expect_column_values_to_be_between[link_probability]",
        "linked.expect_column_values_to_be_in_set[age_band]",
        "linked.expect_column_values_to_be_in_set[source]",
    ]
    assert sorted(res.warnings) == [
        "linked.expect_column_values_to_be_between[injury_hour]",
        "linked.expect_column_values_to_not_be_null[link_probability]",
    ]
    # the conditional check counts only source = 'both' rows (C1, C4, C6, C7)
    cond = failed(res)[("expect_column_values_to_not_be_null", "link_probability")]
    assert (cond["element_count"], cond["unexpected_count"]) == (4, 1)


def make_hotspot_standin(con, rows: list[dict]) -> None:
    """A minimal marts.hotspot_grid with the columns the suite checks (the real one may differ)."""
    con.execute("DROP TABLE IF EXISTS marts.hotspot_grid")
    con.execute(
        "CREATE TABLE marts.hotspot_grid (cell_id VARCHAR, kommunekode VARCHAR, period_start DATE, "
        "period_end DATE, n_killed INTEGER, n_serious INTEGER, n_slight INTEGER, score DOUBLE, "
        "rank_in_kommune INTEGER)"
    )
    insert(con, "marts.hotspot_grid", rows)


def test_hotspots_gate(con, settings):
    base = {"kommunekode": "0561", "period_start": "2020-01-01", "period_end": "2024-12-31",
            "n_killed": 0, "n_serious": 1, "n_slight": 3, "score": 8.0}
    good = [
        {**base, "cell_id": "100m_61669_7288", "rank_in_kommune": 1},
        {**base, "cell_id": "1km_6166_728", "rank_in_kommune": 1, "score": 0.0, "n_serious": 0, "n_slight": 0},
        {**base, "cell_id": "100m_61669_7288", "kommunekode": "0575", "rank_in_kommune": 1},  # split cell
        {**base, "cell_id": "100m_61669_7288", "period_start": "2024-01-01", "rank_in_kommune": 3},
    ]
    make_hotspot_standin(con, good)
    res = validate_stage(con, "hotspots", "run-h", settings, today=TODAY)
    assert res.success and res.n_failed == 0 and res.n_expectations == 15

    make_hotspot_standin(con, good + [
        {**base, "cell_id": "100m_61669_7288", "rank_in_kommune": 2},          # duplicate cell/period
        {**base, "cell_id": "61669_7288", "rank_in_kommune": 0, "n_killed": -1,
         "period_start": "2025-01-01", "period_end": "2024-12-31"},
    ])
    res = validate_stage(con, "hotspots", "run-h", settings, today=TODAY)
    assert sorted(res.critical_failures) == sorted([
        "hotspots.expect_compound_columns_to_be_unique[cell_id,kommunekode,period_start,period_end]",
        "hotspots.expect_column_values_to_match_regex[cell_id]",
        "hotspots.expect_column_values_to_be_between[rank_in_kommune]",
        "hotspots.expect_column_values_to_be_between[n_killed]",
        "hotspots.expect_column_pair_values_a_to_be_greater_than_b[period_end,period_start]",
    ])
    dup = failed(res)[("expect_compound_columns_to_be_unique", "cell_id,kommunekode,period_start,period_end")]
    assert dup["unexpected_count"] == 2


def test_missing_table_stops_publication(con, settings):
    con.execute("DROP TABLE IF EXISTS marts.hotspot_grid")
    res = validate_stage(con, "hotspots", "run-m", settings, today=TODAY)
    assert res.critical_failures == ["hotspots.expect_table_to_exist"]
    df = stored(con, "run-m", "hotspots")
    assert df[["expectation", "critical", "success"]].values.tolist() == [["expect_table_to_exist", True, False]]
    assert "marts.hotspot_grid does not exist" in df.details.iloc[0]


def test_gate_over_several_stages(con, settings):
    insert(con, "staging.er_contact", good_er_rows())
    ok = validate_stage(con, "raw_er", "run-gate", settings, today=TODAY)
    broken = validate_stage(con, "linked", "run-gate", settings, today=TODAY)  # empty core.casualty
    assert stage_gate([ok]) is True
    assert stage_gate([ok, broken]) is False
    with pytest.raises(CriticalExpectationFailed) as e:
        raise_for_critical([ok, broken])
    assert e.value.failures == ["linked.expect_table_row_count_to_be_between",
                                "linked_share.expect_column_values_to_be_between[n_er_casualties]"]


def test_validation_never_touches_the_network(con, settings, monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    insert(con, "staging.er_contact", good_er_rows())
    res = validate_stage(con, "raw_er", "run-offline", settings, tmp_path / "d", today=TODAY)
    assert res.success and (tmp_path / "d" / "index.html").exists()


def test_default_docs_dir_is_the_quality_dir_not_publish(settings):
    assert default_docs_dir(settings) == settings.quality_dir
    assert settings.publish_dir not in default_docs_dir(settings).parents
