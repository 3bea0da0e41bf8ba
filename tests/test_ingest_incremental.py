"""Incremental core (issue 9): a night rebuilds only the records delivered since core was last
built, and the result is the same as a full build. All people are synthetic."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from skadestue import state
from skadestue.config import Settings
from skadestue.db import connect
from skadestue.demo import generate_demo
from skadestue.ingest import build_core, core as core_mod, ingest_inbox

KEY = "synthetic-incremental-key"
CORE = ("core.er_contact", "core.police_accident", "core.police_person")
#: Delivered in the second night: an ER correction of records of the first night, the police
#: accidents of 2023 whose persons came the night before (their age and counterpart depend on
#: the accident), and the police persons of 2024.
NIGHT2 = ("skadestue/svs_esbjerg_2024_rettelse.csv", "politi/uheld_2023.csv", "politi/personer_2024.csv")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("incremental")
    paths = generate_demo(out / "demo", scale=0.1, years=(2023, 2024), seed=5)
    return paths.inbox


def _copy(src: Path, dst: Path, files) -> None:
    for rel in files:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / rel, dst / rel)


def _all_files(inbox: Path) -> list[str]:
    return sorted(p.relative_to(inbox).as_posix() for p in inbox.rglob("*.csv"))


def _core(con) -> dict[str, list[tuple]]:
    return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in CORE}


@pytest.fixture(scope="module")
def all_at_once(demo):
    con = connect(":memory:")
    settings = Settings(inbox=demo, pseudonym_key=KEY)
    ingest_inbox(con, settings, "once")
    counts = build_core(con, settings, incremental=True)
    yield con, counts
    con.close()


@pytest.fixture(scope="module")
def two_nights(demo, tmp_path_factory):
    inbox = tmp_path_factory.mktemp("two_nights_inbox")
    files = _all_files(demo)
    assert set(NIGHT2) <= set(files)
    _copy(demo, inbox, [f for f in files if f not in NIGHT2])
    settings = Settings(inbox=inbox, pseudonym_key=KEY)
    con = connect(":memory:")
    ingest_inbox(con, settings, "night1")
    first = build_core(con, settings, run_id="night1", incremental=True)
    seq1 = con.execute("SELECT max(delivery_seq) FROM ops.delivery").fetchone()[0]
    _copy(demo, inbox, NIGHT2)
    ingest_inbox(con, settings, "night2")
    # What night 2 delivered, counted independently of build_core.
    delivered = {
        "rebuilt_er_contact": con.execute(
            "SELECT count(DISTINCT (sygehus, kontakt_id)) FROM staging.er_contact WHERE delivery_seq > ?", [seq1]
        ).fetchone()[0],
        "rebuilt_police_accident": con.execute(
            "SELECT count(DISTINCT uheld_id) FROM staging.police_accident WHERE delivery_seq > ?", [seq1]
        ).fetchone()[0],
        "rebuilt_police_person": con.execute(
            "SELECT count(DISTINCT uheld_id) FROM (SELECT uheld_id FROM staging.police_person WHERE delivery_seq > ? "
            "UNION ALL SELECT uheld_id FROM staging.police_accident WHERE delivery_seq > ?)", [seq1, seq1]
        ).fetchone()[0],
    }
    second = build_core(con, settings, run_id="night2", incremental=True)
    yield {"con": con, "settings": settings, "first": first, "second": second, "delivered": delivered}
    con.close()


def test_two_nights_give_the_core_of_one(two_nights, all_at_once):
    once, _ = all_at_once
    got, want = _core(two_nights["con"]), _core(once)
    assert len(want["core.er_contact"]) > 300 and len(want["core.police_person"]) > 100
    for table in CORE:
        assert got[table] == want[table], table


def test_the_second_night_rebuilds_only_what_it_delivered(two_nights):
    first, second, delivered = two_nights["first"], two_nights["second"], two_nights["delivered"]
    assert first["full_build"] == 1 and second["full_build"] == 0
    # the correction re-sends ~20 records; 2023's accidents and 2024's persons are whole files
    assert 5 <= delivered["rebuilt_er_contact"] <= 40
    assert delivered["rebuilt_police_accident"] > 50 and delivered["rebuilt_police_person"] > 100
    for k, n in delivered.items():
        assert second[k] == n, k
    # the first night kept the 2023 persons without their accidents; the second one joined them
    assert first["police_person_without_accident"] > 0
    assert second["police_person_without_accident"] == 0


def test_the_watermark_is_stored_with_core(two_nights):
    con = two_nights["con"]
    stored = state.stored(con, core_mod.STAGE)
    seq = con.execute("SELECT max(delivery_seq) FROM ops.delivery").fetchone()[0]
    assert f'"seq": {seq}' in stored
    run = con.execute("SELECT run_id FROM ops.stage_state WHERE stage = 'core'").fetchone()[0]
    assert run == "night2"


def test_a_night_without_deliveries_changes_nothing(two_nights, all_at_once):
    con = two_nights["con"]
    again = build_core(con, two_nights["settings"], incremental=True)
    assert again["full_build"] == 0
    assert [again[f"rebuilt_{t}"] for t in ("er_contact", "police_accident", "police_person")] == [0, 0, 0]
    assert _core(con) == _core(all_at_once[0])


def test_unchanged_rows_keep_the_later_stages_columns_rebuilt_rows_start_empty(demo, all_at_once, tmp_path):
    """Geocode and link write into core; an incremental build leaves their columns on the rows it
    does not rebuild (those stages tell their own changes apart) and empties them on the rows it
    rebuilds, as a full build does."""
    inbox = tmp_path / "inbox"
    files = _all_files(demo)
    _copy(demo, inbox, [f for f in files if f not in NIGHT2])
    settings = Settings(inbox=inbox, pseudonym_key=KEY)
    con = connect(":memory:")
    ingest_inbox(con, settings, "n1")
    build_core(con, settings, incremental=True)
    con.execute("UPDATE core.er_contact SET x = 1, y = 2, geocode_quality = 'A', casualty_id = 'c-' || kontakt_id")
    con.execute("UPDATE core.police_person SET casualty_id = 'p-' || uheld_id")
    con.execute("UPDATE core.police_accident SET xy_flag = 'swapped'")
    _copy(demo, inbox, NIGHT2)
    ingest_inbox(con, settings, "n2")
    counts = build_core(con, settings, incremental=True)
    assert counts["full_build"] == 0
    n2 = "(SELECT delivery_id FROM ops.delivery WHERE run_id = 'n2')"
    rebuilt_er = con.execute(
        f"SELECT count(*) FILTER (WHERE x IS NULL AND geocode_quality = 'none' AND casualty_id IS NULL), count(*) "
        f"FROM core.er_contact WHERE delivery_id IN {n2}").fetchone()
    assert rebuilt_er == (counts["rebuilt_er_contact"], counts["rebuilt_er_contact"])
    kept = con.execute("SELECT count(*) FROM core.er_contact WHERE casualty_id = 'c-' || kontakt_id AND x = 1")
    assert kept.fetchone()[0] == counts["er_contact"] - counts["rebuilt_er_contact"]
    # persons of the accidents delivered in night 2 were rebuilt (no casualty_id), the others kept
    persons = con.execute(
        "SELECT count(*) FILTER (WHERE casualty_id IS NULL), count(*) FILTER (WHERE casualty_id = 'p-' || uheld_id) "
        "FROM core.police_person").fetchone()
    rebuilt_persons = con.execute(
        "SELECT count(*) FROM core.police_person WHERE uheld_id IN (SELECT uheld_id FROM staging.police_person "
        f"WHERE delivery_id IN {n2} UNION SELECT uheld_id FROM staging.police_accident WHERE delivery_id IN {n2})"
    ).fetchone()[0]
    assert persons == (rebuilt_persons, counts["police_person"] - rebuilt_persons) and rebuilt_persons > 100
    flags = con.execute("SELECT count(*) FILTER (WHERE xy_flag IS NULL), count(*) FROM core.police_accident").fetchone()
    assert flags[0] == counts["rebuilt_police_accident"] and flags[1] > flags[0]
    # apart from those columns, core is the one-night core
    delivered = "* EXCLUDE (x, y, geocode_quality, casualty_id)"
    got = con.execute(f"SELECT {delivered} FROM core.er_contact ORDER BY ALL").fetchall()
    assert got == all_at_once[0].execute(f"SELECT {delivered} FROM core.er_contact ORDER BY ALL").fetchall()
    con.close()


def test_by_default_a_build_is_incremental_and_a_full_one_records_the_watermark(two_nights, all_at_once):
    """The nightly flow's call (no ``incremental``) follows INCREMENTAL_BY_DEFAULT (on)."""
    con, settings = two_nights["con"], two_nights["settings"]
    assert core_mod.INCREMENTAL_BY_DEFAULT is True
    counts = build_core(con, settings, incremental=False)
    assert counts["full_build"] == 1 and counts["rebuilt_er_contact"] == counts["er_contact"]
    assert _core(con) == _core(all_at_once[0])
    again = build_core(con, settings)  # the watermark was kept: nothing new, nothing rebuilt
    assert again["full_build"] == 0 and again["rebuilt_er_contact"] == 0
    assert _core(con) == _core(all_at_once[0])


def test_full_build_when_asked_or_when_core_was_changed_outside(two_nights, all_at_once):
    con, settings = two_nights["con"], two_nights["settings"]
    want = _core(all_at_once[0])
    assert build_core(con, settings, full=True, incremental=True)["full_build"] == 1
    assert _core(con) == want
    state.forget(con, core_mod.STAGE)
    assert build_core(con, settings, incremental=True)["full_build"] == 1
    con.execute("DELETE FROM core.er_contact WHERE kontakt_id = (SELECT min(kontakt_id) FROM core.er_contact)")
    counts = build_core(con, settings, incremental=True)
    assert counts["full_build"] == 1
    assert _core(con) == want


def test_a_failed_build_leaves_core_and_its_watermark_as_they_were(demo, tmp_path, monkeypatch, all_at_once):
    inbox = tmp_path / "inbox"
    files = _all_files(demo)
    _copy(demo, inbox, [f for f in files if f not in NIGHT2])
    settings = Settings(inbox=inbox, pseudonym_key=KEY)
    con = connect(":memory:")
    ingest_inbox(con, settings, "n1")
    build_core(con, settings, incremental=True)
    before, stored = _core(con), state.stored(con, core_mod.STAGE)
    _copy(demo, inbox, NIGHT2)
    ingest_inbox(con, settings, "n2")
    real = core_mod.core_query

    def failing(name, *args):
        if name == "core_police_person":
            raise RuntimeError("killed")
        return real(name, *args)

    monkeypatch.setattr(core_mod, "core_query", failing)
    with pytest.raises(RuntimeError, match="killed"):
        build_core(con, settings, incremental=True)
    assert _core(con) == before and state.stored(con, core_mod.STAGE) == stored

    def every_version(name, *args):  # a bug that would keep both versions of a corrected record
        return real(name, *args).replace("QUALIFY row_number()", "QUALIFY true OR row_number()")

    monkeypatch.setattr(core_mod, "core_query", every_version)
    with pytest.raises(core_mod.CoreKeyError, match=r"core.er_contact: \d+ rebuilt rows for \d+ keys"):
        build_core(con, settings, incremental=True)
    assert _core(con) == before and state.stored(con, core_mod.STAGE) == stored
    monkeypatch.undo()
    assert build_core(con, settings, incremental=True)["full_build"] == 0
    assert _core(con) == _core(all_at_once[0])
    con.close()
