"""Incremental linkage (issue 9): a night re-links only what changed, and the result equals a
full relink of the same warehouse with the same model: casualties (keys, sources, members),
links, review list and dark figure."""

from __future__ import annotations

import shutil

import pytest
from helpers import load_and_geocode

from geodata.importer import import_geodata
from skadestue import state
from skadestue.config import load_settings
from skadestue.db import connect
from skadestue.demo import generate_demo
from skadestue.link import link_casualties
from skadestue.link import incremental
from skadestue.link import pipeline as link_pipeline

LAST_YEAR = 2024

_HOLD = {
    "er_contact": f"year(ankomst) = {LAST_YEAR}",
    "police_person": f"uheld_id IN (SELECT uheld_id FROM core.police_accident WHERE year(uheldsdato) = {LAST_YEAR})",
    "police_accident": f"year(uheldsdato) = {LAST_YEAR}",
}


def snapshot(con) -> dict:
    """Everything the linkage publishes or keeps, in a comparable form."""
    q = {
        "casualty": "SELECT * FROM core.casualty ORDER BY casualty_id",
        "members": "SELECT sygehus, kontakt_id, casualty_id, x, y, geocode_quality FROM core.er_contact ORDER BY 1, 2",
        "police": "SELECT uheld_id, elementnr, personnr, casualty_id FROM core.police_person ORDER BY 1, 2, 3",
        "links": "SELECT er_key, police_key, match_probability FROM link.pair ORDER BY 1, 2",
        "scored": "SELECT er_key, police_key, match_probability, match_weight FROM link.scored_pair ORDER BY 1, 2",
        "review": "SELECT * EXCLUDE (built_at) FROM quality.link_review ORDER BY 1, 2",
        "dark": "SELECT * EXCLUDE (built_at) FROM marts.dark_figure ORDER BY 1, 2, 3, 4",
        "events": "SELECT * FROM link.er_event ORDER BY event_key",
        "contacts": "SELECT contact_key, person_key, component, event_key FROM link.contact ORDER BY 1",
    }
    return {k: con.execute(v).fetchall() for k, v in q.items()}


def assert_same(a: dict, b: dict) -> None:
    for key in a:
        assert a[key] == b[key], f"{key} differs: {len(a[key])} vs {len(b[key])} rows"


@pytest.fixture(scope="module")
def demo(tmp_path_factory, shared_data):
    """The demo region ingested and geocoded; its last year held back in hold_* tables."""
    out = tmp_path_factory.mktemp("link_incr")
    paths = generate_demo(out, scale=0.3, years=(2022, LAST_YEAR), seed=5,
                          municipalities_geojson=shared_data / "boundaries" / "dagi_kommuner.geojson")
    settings = load_settings(None, inbox=out / "inbox", warehouse=out / "wh.duckdb",
                             publish_dir=out / "publish", quality_dir=out / "quality")
    con = connect(str(out / "all.duckdb"))
    import_geodata(con, addresses=paths.addresses_csv, roads=paths.roads_geojson,
                   municipalities=paths.municipalities_geojson, postcodes=paths.postcodes_geojson)
    load_and_geocode(con, settings, "test-run")
    con.close()
    # the first N-1 years alone, the last year kept aside
    shutil.copy(out / "all.duckdb", out / "night1.duckdb")
    con = connect(str(out / "night1.duckdb"))
    for table, where in _HOLD.items():
        con.execute(f"CREATE TABLE main.hold_{table} AS SELECT * FROM core.{table} WHERE {where}")
    for table, where in _HOLD.items():
        con.execute(f"DELETE FROM core.{table} WHERE {where}")
    held = {t: con.execute(f"SELECT count(*) FROM main.hold_{t}").fetchone()[0] for t in _HOLD}
    night1 = link_casualties(con, settings)
    for table in ("police_accident", "police_person", "er_contact"):
        con.execute(f"INSERT INTO core.{table} SELECT * FROM main.hold_{table}")
    con.close()
    return {"dir": out, "settings": settings, "night1": night1, "held": held}


def _open_copy(demo, source: str, name: str):
    shutil.copy(demo["dir"] / source, demo["dir"] / name)
    return connect(str(demo["dir"] / name))


@pytest.fixture(scope="module")
def night2(demo):
    """The last year delivered as one more night: incremental vs a full relink (same model)."""
    inc = _open_copy(demo, "night1.duckdb", "inc.duckdb")
    drift = incremental.RETRAIN_DRIFT
    incremental.RETRAIN_DRIFT = 10.0  # the demo's last year adds ~48 % events: stay incremental
    try:
        report = link_casualties(inc, demo["settings"])
    finally:
        incremental.RETRAIN_DRIFT = drift
    full = _open_copy(demo, "night1.duckdb", "relink.duckdb")
    full_report = link_casualties(full, demo["settings"], mode="relink")
    for con in (inc, full):
        con.execute("CHECKPOINT")  # later tests copy inc.duckdb
    yield {"inc": inc, "full": full, "report": report, "full_report": full_report}
    inc.close()
    full.close()


def test_held_back_year_is_a_real_night(demo):
    held = demo["held"]
    assert held["er_contact"] > 500 and held["police_person"] > 50
    assert demo["night1"].mode == "full" and demo["night1"].model_trained


def test_incremental_night_equals_full_relink(night2):
    r, f = night2["report"], night2["full_report"]
    assert r.mode == "incremental" and not r.model_trained
    assert f.mode == "relink"
    # only the new year's records and their neighbours were re-scored
    assert 0 < r.n_er_events_rescored < f.n_er_events_rescored
    assert r.n_contacts_refolded < f.n_contacts_refolded
    assert (r.n_links, r.by_source, r.n_review_pairs) == (f.n_links, f.by_source, f.n_review_pairs)
    assert r.dark_figure_estimate == f.dark_figure_estimate
    assert_same(snapshot(night2["inc"]), snapshot(night2["full"]))
    # every contact of the warehouse is in a casualty, every injured police person too
    con = night2["inc"]
    assert con.execute("SELECT count(*) FROM core.er_contact WHERE casualty_id IS NULL").fetchone()[0] == 0
    assert con.execute("SELECT sum(n_er_contacts) FROM core.casualty").fetchone()[0] == \
        con.execute("SELECT count(*) FROM core.er_contact").fetchone()[0]


def test_nothing_changed_skips_and_keeps_everything(demo, night2):
    con = _open_copy(demo, "inc.duckdb", "skip.duckdb")
    try:
        before = snapshot(con)
        n_police_placed = con.execute(
            "SELECT count(*) FROM core.er_contact WHERE geocode_quality = 'police'").fetchone()[0]
        # the first re-run re-opens only the contacts whose position the last run took from the
        # police (the linkage reads them as unplaced from then on, as a full relink would)
        first = link_casualties(con, demo["settings"])
        assert first.mode in ("incremental", "skipped")
        assert first.n_contacts_changed <= n_police_placed
        after_first = snapshot(con)
        assert after_first["links"] == before["links"]
        assert [r[:2] for r in after_first["casualty"]] == [r[:2] for r in before["casualty"]]
        # then nothing is left to do
        second = link_casualties(con, demo["settings"])
        assert second.mode == "skipped"
        assert (second.n_contacts_changed, second.n_pairs_scored, second.n_casualties_rebuilt) == (0, 0, 0)
        assert (second.n_links, second.by_source) == (first.n_links, first.by_source)
        assert snapshot(con) == after_first
    finally:
        con.close()


def _corrections(con) -> dict:
    """A correction of a linked contact, a deleted linked contact, a deleted police person."""
    linked = con.execute("""
        SELECT c.sygehus, c.kontakt_id, c.casualty_id FROM core.er_contact c
        JOIN core.casualty k USING (casualty_id)
        WHERE k.source = 'both' AND k.n_er_contacts = 1 ORDER BY 1, 2 LIMIT 3""").fetchall()
    assert len(linked) == 3
    (h1, k1, _), (h2, k2, _), (_, _, pid) = linked
    # 1. correction: the ward fixes the arrival by a year -> no longer the police person's date
    con.execute("UPDATE core.er_contact SET ankomst = ankomst - INTERVAL 400 DAY, "
                "injury_date = injury_date - INTERVAL 400 DAY, ulykke_tid = NULL "
                "WHERE sygehus = ? AND kontakt_id = ?", [h1, k1])
    # 2. a deleted ER contact
    con.execute("DELETE FROM core.er_contact WHERE sygehus = ? AND kontakt_id = ?", [h2, k2])
    # 3. a deleted police person (the partner of a third linked contact)
    uheld, elem, pers = con.execute(
        "SELECT uheld_id, elementnr, personnr FROM core.police_person WHERE casualty_id = ?", [pid]).fetchone()
    con.execute("DELETE FROM core.police_person WHERE uheld_id = ? AND elementnr = ? AND personnr = ?",
                [uheld, elem, pers])
    return {"corrected": f"{h1}|{k1}", "deleted_er": f"{h2}|{k2}", "deleted_police": f"{uheld}|{elem}|{pers}"}


def test_corrected_and_deleted_records_are_relinked(demo, night2):
    inc = _open_copy(demo, "inc.duckdb", "corr_inc.duckdb")
    full = _open_copy(demo, "inc.duckdb", "corr_full.duckdb")
    try:
        before_pairs = inc.execute("SELECT count(*) FROM link.pair").fetchone()[0]
        keys = _corrections(inc)
        assert _corrections(full) == keys
        old_event = inc.execute("SELECT event_key FROM link.contact WHERE contact_key = ?",
                                [keys["deleted_er"]]).fetchone()[0]
        report = link_casualties(inc, demo["settings"])
        assert report.mode == "incremental"
        # the three records, plus the contacts the last night placed at the police's position
        # (re-opened once, see test_nothing_changed_skips_and_keeps_everything)
        n_police_placed = inc.execute(
            "SELECT count(*) FROM core.er_contact WHERE geocode_quality = 'police'").fetchone()[0]
        assert 3 <= report.n_contacts_changed <= 3 + n_police_placed
        assert 1 <= report.n_er_events_rescored <= 3 + n_police_placed
        assert report.n_er_events_rescored < 0.05 * report.n_er_events
        # the deleted records' pairs are gone, the corrected contact no longer links
        assert inc.execute("SELECT count(*) FROM link.scored_pair WHERE er_key = ? OR police_key = ?",
                           [old_event, keys["deleted_police"]]).fetchone()[0] == 0
        assert inc.execute("SELECT count(*) FROM link.contact WHERE contact_key = ?",
                           [keys["deleted_er"]]).fetchone()[0] == 0
        src = inc.execute("SELECT k.source FROM core.er_contact c JOIN core.casualty k USING (casualty_id) "
                          "WHERE c.sygehus || '|' || c.kontakt_id = ?", [keys["corrected"]]).fetchone()[0]
        assert src == "er"
        assert inc.execute("SELECT count(*) FROM link.pair").fetchone()[0] < before_pairs
        link_casualties(full, demo["settings"], mode="relink")
        assert_same(snapshot(inc), snapshot(full))
    finally:
        inc.close()
        full.close()


def test_a_crash_inside_the_linkage_leaves_the_state_untouched(demo, night2, monkeypatch):
    con = _open_copy(demo, "inc.duckdb", "crash.duckdb")
    try:
        _corrections(con)
        before = snapshot(con)
        stage_state = con.execute("SELECT * FROM ops.stage_state WHERE stage = 'link' ORDER BY part").fetchall()

        def boom(*_a, **_k):
            raise RuntimeError("killed")

        monkeypatch.setattr(link_pipeline, "build_casualties", boom)
        with pytest.raises(RuntimeError):
            link_casualties(con, demo["settings"])
        monkeypatch.undo()
        assert snapshot(con) == before
        assert con.execute("SELECT * FROM ops.stage_state WHERE stage = 'link' ORDER BY part").fetchall() == stage_state
        # and the next run catches up exactly as a relink would
        link_casualties(con, demo["settings"])
        ref = _open_copy(demo, "inc.duckdb", "crash_ref.duckdb")
        try:
            _corrections(ref)
            link_casualties(ref, demo["settings"], mode="relink")
            assert_same(snapshot(con), snapshot(ref))
        finally:
            ref.close()
    finally:
        con.close()


def test_forget_or_changed_settings_retrain_the_model(demo, night2):
    con = _open_copy(demo, "inc.duckdb", "retrain.duckdb")
    try:
        state.forget(con)  # what `skadestue run --full` does
        report = link_casualties(con, demo["settings"])
        assert report.mode == "full" and report.model_trained
        again = link_casualties(con, demo["settings"])
        assert again.mode == "skipped"
        changed = demo["settings"].model_copy(deep=True)
        changed.link.match_threshold = 0.95
        report = link_casualties(con, changed)
        assert report.mode == "full" and report.model_trained
        assert con.execute("SELECT min(link_probability) FROM core.casualty WHERE source = 'both'").fetchone()[0] >= 0.95
    finally:
        con.close()


def test_incremental_vs_all_at_once_with_a_fresh_model(demo, night2):
    """All three years linked at once (model trained on all of them) vs N-1 years then the
    last year (model trained on N-1 years, frozen): the same casualties and links on the demo."""
    fresh = _open_copy(demo, "all.duckdb", "fresh.duckdb")
    try:
        link_casualties(fresh, demo["settings"])
        a, b = snapshot(fresh), snapshot(night2["inc"])
        assert [r[:2] for r in a["casualty"]] == [r[:2] for r in b["casualty"]]  # keys, sources
        assert [r[:3] for r in a["members"]] == [r[:3] for r in b["members"]]  # members
        assert [r[:2] for r in a["links"]] == [r[:2] for r in b["links"]]
    finally:
        fresh.close()


def test_data_drift_retrains_the_model(demo, monkeypatch):
    """When the ER events grew by more than RETRAIN_DRIFT since training, the night retrains
    (lambda and the date span follow the data) and re-scores every pair."""
    monkeypatch.setattr(incremental, "RETRAIN_DRIFT", 0.2)
    con = _open_copy(demo, "night1.duckdb", "drift.duckdb")
    try:
        n_before = con.execute("SELECT n_er_events FROM link.model").fetchone()[0]
        report = link_casualties(con, demo["settings"])
        assert report.mode == "full" and report.model_trained
        assert report.n_er_events > 1.2 * n_before
        assert con.execute("SELECT n_er_events FROM link.model").fetchone()[0] == report.n_er_events
        assert report.n_er_events_rescored == report.n_er_events
    finally:
        con.close()


def test_police_places_survive_a_regeocode(demo, night2):
    """Another stage re-geocoding a contact the linkage placed at the police's position back to
    what it was (so its linkage input is unchanged and nothing is re-linked) gets the police
    position back, as in an uninterrupted run."""
    ref = _open_copy(demo, "inc.duckdb", "regeo_ref.duckdb")
    con = _open_copy(demo, "inc.duckdb", "regeo.duckdb")
    try:
        # police-placed contacts that were unplaced before: the reset below restores exactly
        # the row the last linkage hashed
        reset = ("hash(sygehus, kontakt_id, ankomst, ulykke_tid, injury_date, cpr_pseudonym, sex, age, "
                 "road_user, counterpart, kommunekode, severity, diagnose, ulykkessted, NULL::DOUBLE, "
                 "NULL::DOUBLE, 'none', NULL::DOUBLE)")
        placed = con.execute(f"""
            SELECT c.sygehus, c.kontakt_id FROM core.er_contact c
            JOIN link.contact l ON l.contact_key = c.sygehus || '|' || c.kontakt_id
            WHERE c.geocode_quality = 'police' AND l.row_hash = {reset} ORDER BY 1, 2 LIMIT 5""").fetchall()
        assert len(placed) >= 1
        for h, k in placed:
            con.execute("UPDATE core.er_contact SET x = NULL, y = NULL, geocode_quality = 'none', "
                        "geocode_uncertainty_m = NULL WHERE sygehus = ? AND kontakt_id = ?", [h, k])
        link_casualties(ref, demo["settings"])
        report = link_casualties(con, demo["settings"])
        assert snapshot(con) == snapshot(ref)
        assert con.execute("SELECT count(*) FROM core.er_contact WHERE geocode_quality = 'police' AND "
                           "(sygehus, kontakt_id) IN (SELECT * FROM (VALUES " +
                           ", ".join(f"('{h}', '{k}')" for h, k in placed) + "))").fetchone()[0] == len(placed)
        assert report.n_links == night2["report"].n_links
    finally:
        ref.close()
        con.close()
