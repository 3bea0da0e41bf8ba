"""Incremental hotspot builds (issue 9): only the periods whose input changed are rebuilt,
and the marts equal those of a full rebuild.

One demo region (scale 0.5, 2020-2024, seed 11) goes through ingest, geocoding and linkage
once; each test works on a copy of that warehouse: a full build, then a change, then an
incremental build compared with a full rebuild from scratch (whole tables, sorted).
Synthetic people only.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
from helpers import load_and_geocode

from skadestue import db, state
from skadestue.config import Settings
from skadestue.hotspots import build_hotspots
from skadestue.hotspots.incremental import STAGE

AS_OF = dt.date(2025, 6, 1)
PERIOD_TABLES = ("hotspot_grid", "hotspot_junction", "hotspot_segment", "hotspot_period", "hotspot_expected_model")
ALL_TABLES = (*PERIOD_TABLES, "casualty_point", "plan_coverage")
YEARS = ["year 2020", "year 2021", "year 2022", "year 2023", "year 2024"]


@pytest.fixture(scope="module")
def linked(tmp_path_factory, demo_setup):
    """The demo warehouse after ingest, geocoding and linkage (no hotspots yet)."""
    from skadestue.link import link_casualties

    out = tmp_path_factory.mktemp("hsinc")
    _, settings, _ = demo_setup(out, scale=0.5, years=(2020, 2024), seed=11)
    with db.warehouse(settings) as con:
        con.execute("INSERT INTO ops.run(run_id, started_at, status) VALUES ('t', now(), 'running')")
        load_and_geocode(con, settings, "t")
        link_casualties(con, settings)
        con.execute("CHECKPOINT")
    return settings


@pytest.fixture()
def con(linked, tmp_path):
    """A copy of the linked demo warehouse, fully built once."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(linked.warehouse, path)
    connection = db.connect(path, settings=linked)
    report = build_hotspots(connection, Settings(), as_of=AS_OF)
    assert report.periods_rebuilt == ["window 2020-2024", *YEARS] and report.periods_skipped == []
    yield connection
    connection.close()


def _snapshot(con, tables=ALL_TABLES) -> dict[str, list[tuple]]:
    """Every row of the marts (geometry as WKB, built_at left out), sorted."""
    out = {}
    for table in tables:
        cols = [
            c for (c,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'marts' AND table_name = ? "
                "ORDER BY column_index", [table]).fetchall()
            if c != "built_at"
        ]
        select = ", ".join(f"ST_AsWKB({c})" if c == "geom" else c for c in cols)
        out[table] = con.execute(f"SELECT {select} FROM marts.{table} ORDER BY ALL").fetchall()
    return out


#: The keys of the marts (migration 020 dropped their primary-key indexes: kept by construction).
KEYS = {
    "hotspot_grid": "cell_id, kommunekode, period_start, period_end",
    "hotspot_junction": "junction_id, period_start, period_end",
    "hotspot_segment": "kommunekode, vejkode, window_m, from_m, period_start, period_end",
    "casualty_point": "casualty_id",
}


def _assert_keys_unique(con) -> None:
    for table, key in KEYS.items():
        n, n_keys = con.execute(f"SELECT count(*), count(DISTINCT ({key})) FROM marts.{table}").fetchone()
        assert n == n_keys and n > 0, table


def _full_rebuild(con) -> dict[str, list[tuple]]:
    _assert_keys_unique(con)
    report = build_hotspots(con, Settings(), as_of=AS_OF, full=True)
    assert report.periods_skipped == []
    return _snapshot(con)


def _add_casualty(con, new_id: str, like: str, injury_date: str, x: float | None = None, y: float | None = None):
    """A copy of casualty ``like`` (new id, own accident) on ``injury_date``, optionally moved."""
    con.execute(
        "INSERT INTO core.casualty SELECT * REPLACE (? AS casualty_id, NULL AS uheld_id, ?::DATE AS injury_date, "
        "coalesce(?, x) AS x, coalesce(?, y) AS y, 'er' AS source) FROM core.casualty WHERE casualty_id = ?",
        [new_id, injury_date, x, y, like],
    )


def test_nothing_changed_rebuilds_nothing(con):
    before = _snapshot(con)
    report = build_hotspots(con, Settings(), as_of=AS_OF)
    assert report.periods_rebuilt == [] and report.periods_skipped == ["window 2020-2024", *YEARS]
    assert report.point_years_rebuilt == 0 and report.point_years_skipped == 5 and not report.plan_rebuilt
    assert _snapshot(con) == before
    assert report.rows["casualty_point"] == con.execute("SELECT count(*) FROM core.casualty").fetchone()[0]
    assert report.n_in_window_placed > 0 and report.gi_cells > 0


def test_casualties_after_the_last_closed_year_rebuild_no_period(con):
    before = _snapshot(con)
    like = con.execute(
        "SELECT casualty_id FROM core.casualty WHERE x IS NOT NULL ORDER BY casualty_id LIMIT 3"
    ).fetchall()
    for i, (cid,) in enumerate(like):
        _add_casualty(con, f"NIGHT-{i}", cid, "2025-03-0" + str(i + 1))
    report = build_hotspots(con, Settings(), as_of=AS_OF)
    assert report.periods_rebuilt == [] and not report.plan_rebuilt
    assert report.point_years_rebuilt == 1 and report.point_years_skipped == 5     # only 2025's points
    after = _snapshot(con)
    for table in (*PERIOD_TABLES, "plan_coverage"):
        assert after[table] == before[table], table
    new = con.execute(
        "SELECT casualty_id, injury_date FROM marts.casualty_point WHERE casualty_id LIKE 'NIGHT-%' ORDER BY 1"
    ).fetchall()
    assert new == [(f"NIGHT-{i}", dt.date(2025, 3, i + 1)) for i in range(3)]
    assert len(after["casualty_point"]) == len(before["casualty_point"]) + 3
    assert after == _full_rebuild(con)


def test_late_records_for_a_closed_year_rebuild_that_year_and_the_window(con):
    # a junction with 3 accidents in the window, one of them in 2021: 2 late records in 2022
    # make it a rule-of-thumb site, which the year rows of 2020/2021/2023/2024 (kept) must show
    row = con.execute(
        """
        SELECT w.junction_id, ST_X(w.geom), ST_Y(w.geom)
        FROM marts.hotspot_junction AS w
        WHERE w.period_type = 'window' AND w.n_accidents = 3 AND NOT w.rule_flag
          AND EXISTS (SELECT 1 FROM marts.hotspot_junction AS y WHERE y.junction_id = w.junction_id
                      AND y.period_start = DATE '2021-01-01' AND y.period_type = 'year')
        ORDER BY w.junction_id LIMIT 1
        """
    ).fetchone()
    assert row is not None, "the demo should have a junction with 3 accidents"
    junction_id, jx, jy = row
    like = con.execute(     # the casualty nearest to the junction: its kommune
        "SELECT casualty_id FROM core.casualty WHERE x IS NOT NULL "
        "ORDER BY (x - ?) ^ 2 + (y - ?) ^ 2, casualty_id LIMIT 1", [jx, jy]
    ).fetchone()[0]
    _add_casualty(con, "LATE-1", like, "2022-05-01", jx + 2.0, jy)
    _add_casualty(con, "LATE-2", like, "2022-06-01", jx - 2.0, jy)
    con.execute("UPDATE core.casualty SET geocode_uncertainty_m = NULL WHERE casualty_id LIKE 'LATE-%'")
    kept_2023 = con.execute(
        "SELECT count(*) FROM marts.hotspot_grid WHERE period_start = DATE '2023-01-01'"
    ).fetchone()[0]

    report = build_hotspots(con, Settings(), as_of=AS_OF)
    assert report.periods_rebuilt == ["window 2020-2024", "year 2022"]
    assert report.periods_skipped == ["year 2020", "year 2021", "year 2023", "year 2024"]
    assert report.plan_rebuilt and report.point_years_rebuilt == 1
    flags = con.execute(
        "SELECT period_type, period_start, n_accidents, rule_flag FROM marts.hotspot_junction "
        "WHERE junction_id = ? ORDER BY period_type, period_start", [junction_id]
    ).fetchall()
    assert flags[0][0] == "window" and flags[0][2] == 5 and all(f[3] for f in flags)
    assert {dt.date(2021, 1, 1), dt.date(2022, 1, 1)} <= {f[1] for f in flags if f[0] == "year"}
    assert con.execute(
        "SELECT count(*) FROM marts.hotspot_grid WHERE period_start = DATE '2023-01-01'"
    ).fetchone()[0] == kept_2023
    incremental = _snapshot(con)
    assert incremental == _full_rebuild(con)


def test_a_new_closed_year_moves_the_window(con):
    like = con.execute(
        "SELECT casualty_id FROM core.casualty WHERE x IS NOT NULL ORDER BY casualty_id LIMIT 2"
    ).fetchall()
    _add_casualty(con, "Y2025-1", like[0][0], "2025-02-01")
    _add_casualty(con, "Y2025-2", like[1][0], "2025-12-20")
    report = build_hotspots(con, Settings(), as_of=dt.date(2026, 2, 1))
    assert report.periods_rebuilt == ["window 2021-2025", "year 2025"]
    assert report.periods_skipped == ["year 2021", "year 2022", "year 2023", "year 2024"]
    assert con.execute(
        "SELECT count(*) FROM marts.hotspot_junction WHERE period_start = DATE '2020-01-01'"
    ).fetchone()[0] == 0
    assert state.stored(con, STAGE, "period:year:2020-01-01:2020-12-31") is None
    _assert_keys_unique(con)
    incremental = _snapshot(con)
    full = build_hotspots(con, Settings(), as_of=dt.date(2026, 2, 1), full=True)
    assert len(full.periods_rebuilt) == 6
    assert incremental == _snapshot(con)


def test_settings_change_rebuilds_everything(con):
    settings = Settings()
    settings.hotspot.weight_serious = 6.0
    report = build_hotspots(con, settings, as_of=AS_OF)
    assert report.periods_rebuilt == ["window 2020-2024", *YEARS] and report.periods_skipped == []
    assert con.execute(
        "SELECT count(*) FROM marts.hotspot_grid WHERE score <> n_killed * 10 + n_serious * 6 + n_slight + n_unknown"
    ).fetchone()[0] == 0
    again = build_hotspots(con, settings, as_of=AS_OF)
    assert again.periods_rebuilt == []


def test_failed_build_keeps_the_old_marts_and_fingerprints(con, monkeypatch):
    import skadestue.hotspots.build as build

    before = _snapshot(con)
    stored = state.stored_parts(con, STAGE)
    like = con.execute("SELECT casualty_id FROM core.casualty WHERE x IS NOT NULL LIMIT 1").fetchone()[0]
    _add_casualty(con, "LATE-X", like, "2023-04-01")

    def boom(*args, **kwargs):
        raise RuntimeError("killed mid-build")

    monkeypatch.setattr(build, "update_expected", boom)
    with pytest.raises(RuntimeError, match="killed mid-build"):
        build_hotspots(con, Settings(), as_of=AS_OF)
    assert _snapshot(con) == before and state.stored_parts(con, STAGE) == stored
    monkeypatch.undo()
    report = build_hotspots(con, Settings(), as_of=AS_OF)
    assert report.periods_rebuilt == ["window 2020-2024", "year 2023"]
