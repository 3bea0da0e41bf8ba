"""Every critical expectation stops publication; every row-level failure quarantines exactly
the bad rows.

The critical checks are generated from the suite files themselves: for each suite on a base
table, a valid frame gets one extra row per critical expectation that breaks exactly that
expectation (a duplicate for uniqueness, a value outside the set/range/pattern, a NULL ...),
so a suite edited in ``expectations/*.json`` is tested without touching this file.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from helpers import insert, unconstrain
from skadestue.config import Settings

from skadestue.ingest import build_core
from skadestue.quality import CriticalExpectationFailed, raise_for_critical, suites_for_stage, validate_stage
from skadestue.quality.quarantine import failing_rows_sql
from skadestue.quality.report import quality_summary_markdown
from skadestue.quality.suites import SuiteError, all_suites, read_suite

TODAY = dt.date(2025, 6, 30)
HMAC = "ab" * 32


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    base = tmp_path_factory.mktemp("gates")
    return Settings(warehouse=base / "w.duckdb", publish_dir=base / "publish", quality_dir=base / "quality")


@pytest.fixture()
def con(fresh_warehouse):
    return fresh_warehouse


# ------------------------------------------------------------- valid rows of every base table

BASELINE: dict[str, tuple[dict, str]] = {  # table -> (a valid row, the key column varied per row)
    "staging.er_contact": ({
        "sygehus": "SVS Esbjerg", "kontakt_id": "K-0", "delivery_id": "er-1", "delivery_seq": 1,
        "line_no": 2, "ankomst": "2024-03-05 14:32:00", "ulykke_tid": "2024-03-05 14:10:00",
        "injury_date": "2024-03-05", "cpr_pseudonym": HMAC, "sex": "K", "age": 34,
        "road_user": "cyclist", "counterpart": "car", "ulykkessted": "Kongensgade 12, Esbjerg",
        "kommunekode": "0561", "diagnose": "DS525", "afslutning": "hjem", "severity": "slight",
    }, "kontakt_id"),
    "staging.police_accident": ({
        "uheld_id": "U-0", "delivery_id": "pa-1", "delivery_seq": 1, "line_no": 2,
        "uheldsdato": "2024-02-01", "kode_uheldssituation": "510", "kommunekode": "0540",
        "x": 543210.0, "y": 6090123.0, "antal_draebte": 0, "antal_alv": 0, "antal_let": 1,
        "severity": "slight",
    }, "uheld_id"),
    "staging.police_person": ({
        "uheld_id": "U-0", "elementnr": 1, "personnr": 1, "delivery_id": "pp-1", "delivery_seq": 1,
        "line_no": 2, "road_user": "car", "skadesgrad": "L", "severity": "slight", "age": 40,
        "sex": "M", "cpr_pseudonym": HMAC,
    }, "personnr"),
    "core.er_contact": ({
        "sygehus": "SVS Esbjerg", "kontakt_id": "K-0", "delivery_id": "er-1",
        "ankomst": "2024-03-05 14:32:00", "injury_date": "2024-03-05", "road_user": "cyclist",
        "counterpart": "none", "severity": "slight", "kommunekode": "0561", "sex": "M", "age": 20,
        "x": 470123.4, "y": 6150321.9, "geocode_quality": "A", "geocode_uncertainty_m": 5.0,
        "ulykkessted": "Torvet 1", "cpr_pseudonym": HMAC,
    }, "kontakt_id"),
    "core.casualty": ({
        "casualty_id": "C-0", "source": "both", "uheld_id": "U1", "injury_date": "2023-08-14",
        "injury_hour": 17, "kommunekode": "0510", "x": 530001.0, "y": 6124000.0,
        "geocode_quality": "police", "road_user": "moped", "counterpart": "car", "severity": "serious",
        "age_band": "15-17", "sex": "M", "link_probability": 0.97, "n_er_contacts": 1,
    }, "casualty_id"),
    "marts.hotspot_grid": ({
        "cell_id": "100m_61000_7000", "kommunekode": "0561", "period_start": "2020-01-01",
        "period_end": "2024-12-31", "n_killed": 0, "n_serious": 1, "n_slight": 3, "score": 8.0,
        "rank_in_kommune": 1,
    }, "cell_id"),
}


GOOD = 900  # the key number of the valid row


def keyed(table: str, i: int) -> dict:
    """The baseline row of ``table`` with a key of its own (row i)."""
    row, key = BASELINE[table]
    row = dict(row)
    if key == "cell_id":
        row[key] = f"100m_{61001 + i}_7000"
    elif key == "personnr":
        row[key] = 100 + i
    else:
        row[key] = f"{row[key][:-1]}{i + 1}"
    return row


def _beyond(value, above: bool):
    """A value just outside a between bound (dates as ISO strings or the 'today' parameter)."""
    if isinstance(value, dict):  # {"$PARAMETER": "today" | "max_age"}
        value = TODAY.isoformat() if value["$PARAMETER"] == "today" else 120
    if isinstance(value, str):
        d = dt.date.fromisoformat(value) + dt.timedelta(days=1 if above else -1)
        return d.isoformat()
    return value + 1 if above else value - 1


def breaking_rows(table: str, exp: dict, i: int) -> list[dict] | None:
    """Rows that, added to a valid frame, break ``exp`` (and no other critical expectation).

    None for expectations that a single extra row cannot break (table row counts, ``mostly``).
    """
    kind, kw = exp["type"], exp["kwargs"]
    if kind.startswith("expect_table_") or "mostly" in kw:
        return None
    row = keyed(table, i)
    if kind in ("expect_compound_columns_to_be_unique", "expect_column_values_to_be_unique"):
        return [keyed(table, GOOD)]  # a second copy of the valid row
    col = kw.get("column")
    if kind == "expect_column_values_to_not_be_null":
        row[col] = None
    elif kind == "expect_column_values_to_be_in_set":
        row[col] = "not-in-vocabulary"
    elif kind == "expect_column_values_to_match_regex":
        row[col] = "bad value!"
    elif kind == "expect_column_values_to_not_match_regex":
        row[col] = "0101901111"  # synthetic CPR-like digits
    elif kind == "expect_column_values_to_be_between":
        row[col] = _beyond(kw["max_value"], True) if "max_value" in kw else _beyond(kw["min_value"], False)
    elif kind == "expect_column_pair_values_a_to_be_greater_than_b":
        row[kw["column_A"]], row[kw["column_B"]] = "2019-01-01", "2020-01-01"
    else:
        raise AssertionError(f"no breaking row for {kind}; extend breaking_rows")
    return [row]


def _label(spec, exp) -> str:
    kw = exp["kwargs"]
    col = kw.get("column") or (f"{kw['column_A']},{kw['column_B']}" if "column_A" in kw else
                               ",".join(kw.get("column_list", [])))
    return f"{spec.name}.{exp['type']}" + (f"[{col}]" if col else "")


def load_frame(con, table: str, rows: list[dict]) -> None:
    """Put ``rows`` into ``table`` (unconstrained; marts.hotspot_grid as a stand-in)."""
    if table == "marts.hotspot_grid":
        con.execute("DROP TABLE IF EXISTS marts.hotspot_grid")
        con.execute(
            "CREATE TABLE marts.hotspot_grid (cell_id VARCHAR, kommunekode VARCHAR, period_start DATE, "
            "period_end DATE, n_killed INTEGER, n_serious INTEGER, n_slight INTEGER, score DOUBLE, "
            "rank_in_kommune INTEGER)")
    else:
        unconstrain(con, table)
    insert(con, table, rows)


BASE_TABLE_SUITES = [s for s in all_suites() if s.table in BASELINE]


def test_every_suite_is_covered_here():
    covered = {s.name for s in BASE_TABLE_SUITES} | {"raw_er_timing", "raw_police_counts", "linked_share"}
    assert covered == {s.name for s in all_suites()}


@pytest.mark.parametrize("spec", BASE_TABLE_SUITES, ids=lambda s: s.name)
def test_each_critical_expectation_stops_publication(con, settings, spec):
    good = [keyed(spec.table, GOOD)]
    load_frame(con, spec.table, good)
    res = validate_stage(con, spec.stage, "run-ok", settings, today=TODAY, quarantine=False)
    assert [f for f in res.critical_failures if f.startswith(spec.name + ".")] == []

    planted, bad_rows = {}, list(good)
    for i, exp in enumerate(spec.expectations):
        if not exp["meta"]["critical"]:
            continue
        rows = breaking_rows(spec.table, exp, i)
        if rows is not None:
            planted[_label(spec, exp)] = 2 if "unique" in exp["type"] else 1
            bad_rows += rows
    assert planted, spec.name
    load_frame(con, spec.table, bad_rows)
    res = validate_stage(con, spec.stage, "run-bad", settings, today=TODAY, quarantine=False)
    mine = sorted(f for f in res.critical_failures if f.startswith(spec.name + "."))
    assert mine == sorted(planted)
    got = {f"{r['suite']}.{r['expectation']}[{r['column_name']}]": r["unexpected_count"]
           for r in res.results if not r["success"] and r["critical"]}
    assert {k: got[k] for k in planted} == planted  # exactly the planted row(s) each
    with pytest.raises(CriticalExpectationFailed) as stop:
        raise_for_critical([res])
    for label in planted:
        assert label in str(stop.value)
    assert "publication stopped" in str(stop.value)
    stored = con.execute(
        "SELECT count(*) FROM quality.validation_result WHERE run_id = 'run-bad' AND suite = ? "
        "AND critical AND NOT success", [spec.name]).fetchone()[0]
    assert stored == len(planted)


@pytest.mark.parametrize("spec", BASE_TABLE_SUITES, ids=lambda s: s.name)
def test_an_empty_table_stops_publication(con, settings, spec):
    load_frame(con, spec.table, [])
    res = validate_stage(con, spec.stage, "run-empty", settings, today=TODAY, quarantine=False)
    assert f"{spec.name}.expect_table_row_count_to_be_between" in res.critical_failures
    row = next(r for r in res.results if r["suite"] == spec.name
               and r["expectation"] == "expect_table_row_count_to_be_between")
    assert json.loads(row["details"])["observed_value"] == 0


def test_police_counts_that_disagree_with_their_persons_stop_publication(con, settings):
    insert(con, "staging.police_accident", [keyed("staging.police_accident", i) for i in range(3)])
    persons = [{**BASELINE["staging.police_person"][0], "uheld_id": f"U-{i + 1}"} for i in range(3)]
    insert(con, "staging.police_person", persons)
    res = validate_stage(con, "raw_police", "run-c", settings, today=TODAY, quarantine=False)
    assert res.success and not [r for r in res.results if r["suite"] == "raw_police_counts" and not r["success"]]

    # a person file from another extract: U-1's slight casualty is now a killed one
    con.execute("UPDATE staging.police_person SET severity = 'killed', skadesgrad = 'D' WHERE uheld_id = 'U-1'")
    res = validate_stage(con, "raw_police", "run-c", settings, today=TODAY, quarantine=False)
    assert sorted(f for f in res.critical_failures if "raw_police_counts" in f) == [
        "raw_police_counts.expect_column_pair_values_to_be_equal[antal_draebte,n_killed_persons]",
        "raw_police_counts.expect_column_pair_values_to_be_equal[antal_let,n_slight_persons]",
    ]
    single = [r for r in res.results if r["suite"] == "raw_police_counts" and not r["critical"]]
    assert sorted((r["column_name"], r["unexpected_count"]) for r in single if not r["success"]) == [
        ("antal_draebte,n_killed_persons", 1), ("antal_let,n_slight_persons", 1)]


@pytest.mark.parametrize("sources, share_ok", [
    (["both", "er", "er", "er", "police"], True),      # 1 of 4 ER casualties linked
    (["er"] * 60 + ["police"] * 10, False),            # police feed broken: nothing links
    (["both"] * 20 + ["police"], False),               # everything linked: over-linking
])
def test_linked_share_outside_its_band_stops_publication(con, settings, sources, share_ok):
    base = BASELINE["core.casualty"][0]
    insert(con, "core.casualty", [{**base, "casualty_id": f"C{i}", "source": s,
                                    "link_probability": 0.9 if s == "both" else None}
                                   for i, s in enumerate(sources)])
    res = validate_stage(con, "linked", "run-s", settings, today=TODAY, quarantine=False)
    label = "linked_share.expect_column_values_to_be_between[linked_share]"
    assert (label not in res.critical_failures) is share_ok
    assert res.success is share_ok


# ------------------------------------------------------------------- row-level quarantine


def er(kontakt_id: str, **over) -> dict:
    return {**BASELINE["staging.er_contact"][0], "kontakt_id": kontakt_id, **over}


def person(uheld_id: str, personnr: int, **over) -> dict:
    return {**BASELINE["staging.police_person"][0], "uheld_id": uheld_id, "personnr": personnr, **over}


def accident(uheld_id: str, **over) -> dict:
    return {**BASELINE["staging.police_accident"][0], "uheld_id": uheld_id, **over}


def test_row_level_failures_quarantine_exactly_the_bad_rows(con, settings):
    insert(con, "staging.er_contact", [
        er("OK-1"), er("OK-2", age=None, ulykke_tid=None),
        er("OK-3", ankomst="2024-03-08 10:00:00"),                      # 3 days later: kept (warning only)
        er("FUT-1", injury_date="2025-07-02", ankomst="2025-07-02 10:00:00", ulykke_tid=None),
        er("AGE-1", age=121),
        er("TIME-1", ulykke_tid="2024-03-05 15:00:00"),                 # accident after arrival
        er("BOTH-1", age=-1, ulykke_tid="2024-03-05 15:00:00"),         # breaks two: quarantined once per check
        er("OLD-1", age=150, delivery_id="er-1", delivery_seq=1),        # bad old version ...
        er("OLD-1", delivery_id="er-2", delivery_seq=2),                # ... corrected: keep
        er("NEWBAD-1", delivery_id="er-1", delivery_seq=1),              # good old version ...
        er("NEWBAD-1", age=200, delivery_id="er-2", delivery_seq=2),    # ... bad correction: out
    ])
    insert(con, "staging.police_accident", [
        accident("U-1"), accident("U-2", uheldsdato="2025-08-01"), accident("U-3"),
    ])
    insert(con, "staging.police_person", [
        person("U-1", 1), person("U-2", 1), person("U-3", 1), person("U-3", 2, age=130, severity="uninjured",
                                                                     skadesgrad="U"),
    ])
    build_core(con, settings)
    before = con.execute("SELECT count(*) FROM core.er_contact").fetchone()[0]
    assert before == 9

    res_er = validate_stage(con, "raw_er", "run-q", settings, today=TODAY)
    res_po = validate_stage(con, "raw_police", "run-q", settings, today=TODAY)
    assert res_er.success and res_po.success  # row-level failures do not stop publication
    assert res_er.quarantined == {
        "raw_er.expect_column_values_to_be_between[injury_date]": 1,
        "raw_er.expect_column_pair_values_a_to_be_greater_than_b[ankomst,ulykke_tid]": 2,
        "raw_er.expect_column_values_to_be_between[age]": 2,  # BOTH-1 already out; AGE-1, NEWBAD-1
    }
    q = con.execute(
        "SELECT source, stage, record_key, column_name, value, reason, delivery_id, line_no "
        "FROM quality.quarantine WHERE run_id = 'run-q' ORDER BY stage, record_key").df()
    er_q = q[q.source == "er_contact"]
    assert sorted(er_q.record_key) == sorted(
        ["SVS Esbjerg/FUT-1", "SVS Esbjerg/AGE-1", "SVS Esbjerg/TIME-1", "SVS Esbjerg/BOTH-1",
         "SVS Esbjerg/NEWBAD-1"])
    assert (er_q.stage == "raw_er").all()
    newbad = er_q[er_q.record_key == "SVS Esbjerg/NEWBAD-1"].iloc[0]
    assert (newbad.column_name, newbad.value, newbad.delivery_id) == ("age", "200", "er-2")
    assert newbad.reason.startswith("raw_er.expect_column_values_to_be_between[age]: Ages outside")
    time_row = er_q[er_q.record_key == "SVS Esbjerg/TIME-1"].iloc[0]
    assert time_row.value == "ankomst=2024-03-05 14:32:00; ulykke_tid=2024-03-05 15:00:00"
    kept = sorted(r[0] for r in con.execute("SELECT kontakt_id FROM core.er_contact").fetchall())
    assert kept == ["OK-1", "OK-2", "OK-3", "OLD-1"]

    # police: the future accident goes with its person; the 130-year-old person alone
    po_q = q[q.source != "er_contact"]
    assert sorted(zip(po_q.source, po_q.record_key)) == [
        ("police_accident", "U-2"), ("police_person", "U-3/1/2")]
    assert res_po.quarantined == {"raw_police.expect_column_values_to_be_between[uheldsdato]": 1,
                                  "raw_police_person.expect_column_values_to_be_between[age]": 1}
    assert con.execute("SELECT list(uheld_id ORDER BY uheld_id) FROM core.police_accident").fetchone()[0] == ["U-1", "U-3"]
    assert con.execute(
        "SELECT list(uheld_id || '/' || personnr ORDER BY ALL) FROM core.police_person").fetchone()[0] == ["U-1/1", "U-3/1"]

    # the summary shows the quarantine per stage and the open gate
    md = quality_summary_markdown(con, "run-q")
    assert "| raw_er | 19 | 4 | 0 | 5 |" in md and "| raw_police | 32 | 2 | 0 | 2 |" in md
    assert "Publication gate: open" in md


def test_sql_form_counts_the_same_rows_as_gx(con, settings):
    """Every row-level expectation: the SQL used for quarantine finds GX's unexpected rows."""
    insert(con, "staging.er_contact", [
        er("A", age=0), er("B", age=120), er("C", age=121), er("D", age=None), er("E", age=-3),
        er("F", injury_date="2000-01-01"), er("G", injury_date="1999-12-31"),
        er("H", injury_date=TODAY.isoformat()), er("I", injury_date=(TODAY + dt.timedelta(days=1)).isoformat()),
        er("J", ulykke_tid="2024-03-05 14:32:00"), er("K", ulykke_tid="2024-03-05 14:33:00"),
    ])
    res = validate_stage(con, "raw_er", "run-sql", settings, today=TODAY, quarantine=False)
    gx_counts = {(r["expectation"], r["column_name"]): r["unexpected_count"] for r in res.results
                 if r["suite"] == "raw_er"}
    params = {"today": TODAY.isoformat(), "max_age": settings.ingest.max_age}
    spec = next(s for s in suites_for_stage("raw_er") if s.name == "raw_er")
    for exp in spec.row_level:
        pred, binds = failing_rows_sql(exp, params)
        n = con.execute(f"SELECT count(*) FROM staging.er_contact WHERE {pred}", binds).fetchone()[0]
        kw = exp["kwargs"]
        col = kw.get("column") or f"{kw['column_A']},{kw['column_B']}"
        assert n == gx_counts[(exp["type"], col)], (exp["type"], col)
    assert gx_counts[("expect_column_values_to_be_between", "age")] == 2
    assert gx_counts[("expect_column_values_to_be_between", "injury_date")] == 2
    assert gx_counts[("expect_column_pair_values_a_to_be_greater_than_b", "ankomst,ulykke_tid")] == 1


def test_row_level_rules_are_checked_when_suites_load(tmp_path):
    def suite(exp, quarantine=True):
        data = {"name": "x", "stage": "raw_er", "table": "staging.er_contact", "expectations": [exp]}
        if quarantine:
            data["quarantine"] = {"source": "er_contact", "table": "core.er_contact", "key": ["kontakt_id"]}
        p = tmp_path / "x.json"
        p.write_text(json.dumps(data))
        return p

    between = {"type": "expect_column_values_to_be_between", "kwargs": {"column": "age", "min_value": 0}}
    with pytest.raises(SuiteError, match="both critical and row_level"):
        read_suite(suite({**between, "meta": {"critical": True, "row_level": True}}))
    with pytest.raises(SuiteError, match="no 'quarantine' target"):
        read_suite(suite({**between, "meta": {"critical": False, "row_level": True}}, quarantine=False))
    with pytest.raises(SuiteError, match="no 'mostly'"):
        read_suite(suite({**between, "kwargs": {**between["kwargs"], "mostly": 0.9},
                          "meta": {"critical": False, "row_level": True}}))
    with pytest.raises(SuiteError, match="row_level works only"):
        read_suite(suite({"type": "expect_column_mean_to_be_between", "kwargs": {"column": "age"},
                          "meta": {"critical": False, "row_level": True}}))
    assert read_suite(suite({**between, "meta": {"critical": False, "row_level": True}})).row_level


def test_nightly_trend_records_the_key_ratios(con, settings):
    base = BASELINE["core.casualty"][0]
    insert(con, "core.casualty", [{**base, "casualty_id": f"C{i}", "source": s} for i, s in
                                  enumerate(["both", "er", "er", "er", "police"])])
    insert(con, "core.er_contact", [keyed("core.er_contact", i) for i in range(3)]
           + [{**keyed("core.er_contact", 3), "x": None, "y": None, "geocode_quality": "none"}])
    validate_stage(con, "linked", "run-t1", settings, today=TODAY)
    con.execute("DELETE FROM core.casualty WHERE source = 'both'")
    validate_stage(con, "linked", "run-t2", settings, today=TODAY)
    trend = con.execute("SELECT run_id, placed_share, linked_share, rows_casualty, rows_er_contact "
                        "FROM quality.nightly_trend ORDER BY run_id").fetchall()
    assert trend == [("run-t1", 0.75, 0.25, 5.0, 4.0), ("run-t2", 0.75, 0.0, 4.0, 4.0)]
