"""Geocoding at night (issue 9): the memory-mapped gazetteer cache gives the same gazetteer and
the same answers as reading gazetteer.* from DuckDB; the ER contacts and police accidents are
only touched when new or changed, with the same result as a full run."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest

from geodata.importer import import_geodata
from helpers import insert, replace_er_locations
from skadestue.config import Settings
from skadestue.db import connect
from skadestue.geocode import (
    Gazetteer, geocode_er_contacts, geocode_police_accidents, geocode_texts,
)
from skadestue.geocode.cache import default_cache_dir, gazetteer_fingerprint, load_gazetteer
from skadestue.geocode.testset import build_testset


@pytest.fixture(scope="module")
def wh(shared_data, tmp_path_factory):
    """A file warehouse with the real Odense-area gazetteer (so it has a cache directory)."""
    path = tmp_path_factory.mktemp("geocache") / "warehouse.duckdb"
    con = connect(path)
    import_geodata(
        con, addresses=shared_data / "addresses" / "dawa_testdata_adgangsadresser_joined.csv",
        roads=shared_data / "roads" / "dawa_testdata_vejmidte_21kommuner_epsg25832_with_vejnavn.geojson",
        municipalities=shared_data / "boundaries" / "dagi_kommuner.geojson",
        postcodes=shared_data / "boundaries" / "dagi_postnumre.geojson")
    yield con
    con.close()


def _same_gazetteer(a: Gazetteer, b: Gazetteer) -> None:
    pd.testing.assert_frame_equal(a.streets.drop(columns="geom"), b.streets.drop(columns="geom"))
    assert all((ga is None and gb is None) or ga.equals(gb)
               for ga, gb in zip(a.streets["geom"], b.streets["geom"]))
    for name in ("by_a", "by_b", "by_postnr", "by_kommune", "by_town", "junctions_by_road",
                 "kommune_names", "jcol"):
        assert getattr(a, name) == getattr(b, name), name
    for arr in ("start", "tal", "x", "y"):
        np.testing.assert_array_equal(getattr(a.addresses, arr), getattr(b.addresses, arr))
    for col, (codes, cats) in a.addresses._cats.items():
        np.testing.assert_array_equal(codes, b.addresses._cats[col][0])
        assert list(cats) == list(b.addresses._cats[col][1])
    pd.testing.assert_frame_equal(a.junctions, b.junctions)


def test_cache_gives_the_same_gazetteer_and_answers(wh):
    cache = default_cache_dir(wh)
    shutil.rmtree(cache, ignore_errors=True)
    plain = Gazetteer.load(wh)
    report: dict = {}
    missed = load_gazetteer(wh, report=report)
    assert report["gazetteer_cache"] == "miss"
    fp = gazetteer_fingerprint(wh)
    assert (cache / fp / "complete").exists() and (cache / fp / "addresses.arrow").exists()
    hit = load_gazetteer(wh, report=report)
    assert report["gazetteer_cache"] == "hit"
    assert len(plain.addresses) > 1_000 and len(plain.streets) > 150
    _same_gazetteer(plain, missed)
    _same_gazetteer(plain, hit)
    # the address arrays come from the memory map, not a copy
    assert not hit.addresses.x.flags.writeable
    truth = build_testset(wh, seed=11)
    assert len(truth) > 1_500
    texts = truth[["location_text", "kommunekode_hint"]]
    want = geocode_texts(wh, texts, gazetteer=plain)
    for gaz in (missed, hit):
        pd.testing.assert_frame_equal(geocode_texts(wh, texts, gazetteer=gaz), want)
    assert want["quality"].isin(["A", "B"]).sum() > 1_000


def test_a_changed_gazetteer_gets_a_new_cache_and_a_damaged_one_is_rebuilt(wh):
    load_gazetteer(wh)
    old = gazetteer_fingerprint(wh)
    one = wh.execute("SELECT id, x FROM gazetteer.address WHERE husnr = '48' AND vejnavn = 'Nørregade' "
                     "AND kommunekode = '0461'").fetchone()
    wh.execute("UPDATE gazetteer.address SET x = x + 100 WHERE id = ?", [one[0]])
    try:
        new = gazetteer_fingerprint(wh)
        assert new != old
        report: dict = {}
        gaz = load_gazetteer(wh, report=report)
        assert report["gazetteer_cache"] == "miss"
        cache = default_cache_dir(wh)
        assert sorted(p.name for p in cache.iterdir()) == [new]      # the old one is gone
        r = geocode_texts(wh, pd.DataFrame({"location_text": ["Nørregade 48, 5000 Odense C"]}),
                          gazetteer=gaz)
        assert abs(r["x"].iloc[0] - (one[1] + 100)) < 1e-6
        (cache / new / "streets.arrow").write_bytes(b"not arrow")
        gaz = load_gazetteer(wh, report=report)
        assert report["gazetteer_cache"] == "miss"
        _same_gazetteer(Gazetteer.load(wh), gaz)
        assert load_gazetteer(wh, report=report) is not None and report["gazetteer_cache"] == "hit"
    finally:
        wh.execute("UPDATE gazetteer.address SET x = ? WHERE id = ?", [one[1], one[0]])


def _reset_core_geocode(con) -> None:
    """What a full run starts from: core rebuilt from staging, an empty geocode cache."""
    con.execute("""UPDATE core.er_contact SET x = NULL, y = NULL, geocode_quality = 'none',
                   geocode_uncertainty_m = NULL, geocode_method = NULL, kommunekode_geocoded = NULL,
                   kommunekode = CASE WHEN kommunekode_geocoded THEN NULL ELSE kommunekode END""")
    con.execute("DELETE FROM core.geocode_result")


def _er_state(con):
    return con.execute("""SELECT kontakt_id, x, y, geocode_quality, geocode_uncertainty_m,
                                 geocode_method, kommunekode FROM core.er_contact ORDER BY ALL""").fetchall()


def test_er_nights_touch_only_new_contacts_and_equal_a_full_run(wh, tmp_path):
    rows = [("Middelfartvej 291", "0461"), ("Nørregade 48, 5000 Odense C", None),
            ("Odense", None), (None, None), ("Kildegaardsvej 188", None), ("Middelfartvj 293", None)]
    replace_er_locations(wh, rows)
    wh.execute("DELETE FROM core.geocode_result")
    settings = Settings.model_validate({"geocode": {"corrections_file": str(tmp_path / "none.csv")}})
    night1 = geocode_er_contacts(wh, settings)
    assert night1["texts_geocoded"] == 6
    # Nørregade 48 had no stated kommune: it takes the polygon's, and stays keyed (text, '')
    assert wh.execute("SELECT kommunekode, kommunekode_geocoded FROM core.er_contact "
                      "WHERE kontakt_id = 'OUH-0001'").fetchone() == ("0461", True)
    # night 2: core keeps the old rows and adds two contacts (one new text, one cached text)
    insert(wh, "core.er_contact", [
        {"sygehus": "OUH Odense", "kontakt_id": f"OUH-{k}", "delivery_id": "er-night2",
         "ankomst": pd.Timestamp("2024-03-06 10:00"), "injury_date": pd.Timestamp("2024-03-06").date(),
         "road_user": "cyclist", "counterpart": "car", "severity": "slight",
         "ulykkessted": text, "kommunekode": kom}
        for k, (text, kom) in ((9001, ("Højstrupvangen 17", "0461")),
                               (9002, ("Nørregade 48, 5000 Odense C", None)))])
    wh.execute("CREATE TEMP TABLE before AS SELECT * FROM core.er_contact")
    night2 = geocode_er_contacts(wh, settings)
    assert night2["texts_geocoded"] == 1 and night2["texts_cached"] == 6
    assert night2["gazetteer_cache"] in ("hit", "miss")
    # the night wrote only the new contacts: every old row is unchanged
    changed = wh.execute("""SELECT e.kontakt_id FROM core.er_contact e JOIN before b USING (sygehus, kontakt_id)
                            WHERE e.x IS DISTINCT FROM b.x OR e.geocode_quality IS DISTINCT FROM b.geocode_quality
                               OR e.kommunekode IS DISTINCT FROM b.kommunekode ORDER BY 1""").fetchall()
    assert changed == [("OUH-9001",), ("OUH-9002",)]
    wh.execute("DROP TABLE before")
    incremental = _er_state(wh)
    _reset_core_geocode(wh)
    full = geocode_er_contacts(wh, settings)
    assert full["texts_geocoded"] == 7
    assert _er_state(wh) == incremental
    assert {k: full[k] for k in ("A", "B", "C", "none")} == {k: night2[k] for k in ("A", "B", "C", "none")}
    # a night with nothing new loads no gazetteer and writes nothing
    quiet = geocode_er_contacts(wh, settings)
    assert quiet["texts_geocoded"] == 0 and quiet["gazetteer_cache"] == "unused"
    assert _er_state(wh) == incremental


def test_corrections_move_only_their_contacts(wh, tmp_path):
    replace_er_locations(wh, [("Fantasivej 3", None), ("Middelfartvej 291", "0461")])
    wh.execute("DELETE FROM core.geocode_result")
    corr = tmp_path / "corrections.csv"
    settings = Settings.model_validate({"geocode": {"corrections_file": str(corr)}})
    geocode_er_contacts(wh, settings)
    assert wh.execute("SELECT geocode_quality FROM core.er_contact WHERE kontakt_id = 'OUH-0000'"
                      ).fetchone() == ("none",)
    corr.write_text("location_text,kommunekode_hint,x,y,address,quality,note\n"
                    "Fantasivej 3,,587928.92,6140163.52,,B,fixed by hand\n", encoding="utf-8")
    geocode_er_contacts(wh, settings)
    x, y, q, kom = wh.execute("SELECT x, y, geocode_quality, kommunekode FROM core.er_contact "
                              "WHERE kontakt_id = 'OUH-0000'").fetchone()
    assert (q, kom) == ("B", "0461") and math.hypot(x - 587928.92, y - 6140163.52) < 1e-6
    corr.unlink()                       # a removed correction is undone the next night
    geocode_er_contacts(wh, settings)
    assert wh.execute("SELECT x, geocode_quality, kommunekode FROM core.er_contact "
                      "WHERE kontakt_id = 'OUH-0000'").fetchone() == (None, "none", None)


def _police_state(con):
    return con.execute("SELECT uheld_id, x, y, geocode_quality, geocode_uncertainty_m, xy_flag "
                       "FROM core.police_accident ORDER BY 1").fetchall()


def test_police_accidents_are_checked_once_and_again_when_core_replaces_them(wh):
    wh.execute("DELETE FROM core.police_accident")
    delivered = [
        ("P1", "0461", "Nørregade", "48", None, 587936.92, 6140158.52),          # kept
        ("P2", "0461", "Middelfartvej", "291", None, 6139304.08, 583132.10),     # swapped
        ("P3", "0461", "Middelfartvej", "291", None, None, None),                # geocoded
        ("P5", "0461", "Nørregade", "48", None, 520000.0, 6125000.0),            # outside kommune
    ]

    def deliver(rows):
        for r in rows:
            wh.execute("DELETE FROM core.police_accident WHERE uheld_id = ?", [r[0]])
            wh.execute("""INSERT INTO core.police_accident(uheld_id, delivery_id, uheldsdato, severity,
                            kommunekode, vejnavn, husnr, krydsende_vej, x, y, geocode_quality)
                          VALUES (?, 'pol', DATE '2024-05-01', 'slight', ?, ?, ?, ?, ?, ?,
                                  CASE WHEN ? IS NULL THEN 'none' ELSE 'police' END)""", [*r, r[5]])

    deliver(delivered)
    first = geocode_police_accidents(wh, Settings())
    assert first["checked"] == 4
    after_first = _police_state(wh)
    assert [r[5] for r in after_first] == [None, "swapped", None, "outside_kommune"]
    again = geocode_police_accidents(wh, Settings())
    assert again["checked"] == 0 and _police_state(wh) == after_first   # the swap is not undone
    assert {k: again[k] for k in ("swapped", "outside_kommune")} == {"swapped": 1, "outside_kommune": 1}
    # core replaces P2 with its delivered (swapped) values again and adds P6: both are checked
    deliver([delivered[1], ("P6", "0461", "Middelfartvej", "293", None, None, None)])
    third = geocode_police_accidents(wh, Settings())
    assert third["checked"] == 2
    incremental = _police_state(wh)
    assert [r for r in incremental if r[0] != "P6"] == after_first
    deliver([*delivered, ("P6", "0461", "Middelfartvej", "293", None, None, None)])   # a full rebuild
    geocode_police_accidents(wh, Settings())
    assert _police_state(wh) == incremental


def test_batched_candidates_equal_the_per_text_ones(wh):
    """The review list's candidates for many unplaced texts at once (one cdist per area) are
    those of candidates() text by text, in the same order."""
    from skadestue.geocode.parse import DEFAULT_TOWNS, parse_location
    from skadestue.geocode.review import candidates, candidates_many

    gaz = Gazetteer.load(wh)
    truth = build_testset(wh, seed=5)
    extra = ["Nørregde ved Brugsen", "krydset Middelfartvej/Fantasivej", "Kildegårdsvej ved nr. 900",
             "Holstedvj og Regner Lodbrogsvej", "Ukendtvej 3, 5000 Odense C", "ved skolen", "Odense",
             "Højstrupvang 17", "Middelfart vej 291 5210 Odense NV", ""]
    texts = pd.concat([truth[["location_text", "kommunekode_hint"]],
                       pd.DataFrame({"location_text": extra, "kommunekode_hint": ["0461", ""] * 5})])
    texts = texts.drop_duplicates().reset_index(drop=True)
    towns = gaz.towns | DEFAULT_TOWNS
    items = [(parse_location(t, towns), h) for t, h in zip(texts["location_text"], texts["kommunekode_hint"])]
    settings = Settings().geocode
    batched = candidates_many(gaz, items, settings, block=64)
    one_by_one = [candidates(gaz, p, h, settings) for p, h in items]
    assert batched == one_by_one
    assert sum(bool(c) for c in batched) > 500 and sum(len(c) == 5 for c in batched) > 50
