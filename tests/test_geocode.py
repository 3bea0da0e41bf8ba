"""Offline geocoder: normalisation, parsing and matching against the real Odense gazetteer."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from geodata.importer import import_geodata
from helpers import replace_er_locations as _er_rows
from skadestue.config import Settings
from skadestue.db import connect
from skadestue.geocode import (
    Gazetteer, geocode_er_contacts, geocode_police_accidents, geocode_texts, normalise,
    parse_location,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ROADS = DATA / "roads" / "dawa_testdata_vejmidte_21kommuner_epsg25832_with_vejnavn.geojson"

# Real access points from dawa_testdata_adgangsadresser_joined.csv (EPSG:25832)
MIDDELFARTVEJ_291 = (583132.10, 6139304.08)
MIDDELFARTVEJ_293 = (583002.32, 6139244.0)
NOERREGADE_48 = (587928.92, 6140163.52)
HOEJSTRUPVANGEN_17 = (585357.39, 6139757.61)
KILDEGAARDSVEJ_188 = (591904.16, 6140997.11)
HOLSTEDVEJ_X_REGNER_LODBROGS_VEJ = (584250.0, 6139813.0)


@pytest.fixture(scope="module")
def con():
    if not ROADS.exists():
        pytest.skip("shared geodata not available")
    c = connect(":memory:")
    import_geodata(c, addresses=DATA / "addresses" / "dawa_testdata_adgangsadresser_joined.csv",
                   roads=ROADS, municipalities=DATA / "boundaries" / "dagi_kommuner.geojson",
                   postcodes=DATA / "boundaries" / "dagi_postnumre.geojson")
    yield c
    c.close()


@pytest.fixture(scope="module")
def gaz(con):
    return Gazetteer.load(con)


def near(row, point, tol=3.0) -> bool:
    return math.hypot(row["x"] - point[0], row["y"] - point[1]) <= tol


# -- normalise / parse ---------------------------------------------------------------------------

@pytest.mark.parametrize("a, b", [
    ("Aabenraa", "Åbenrå"), ("Kongensg.", "Kongensgade"), ("Kongensgd", "kongensgade"),
    ("Middelfartv.", "Middelfartvej"), ("Skt. Knuds Gade", "Sankt Knuds Gade"),
    ("Chr. Winthers Vej", "Christian Winthers Vej"), ("Fr. Bajers Plads", "Frederik Bajers Plads"),
    ("SØNDRE  ALLÉ", "søndre alle"), ("Hoejstrupvangen", "Højstrupvangen"),
    ("cykelstien ved Nørregade", "Noerregade"),
])
def test_normalise_folds_both_sides_alike(a, b):
    assert normalise(a) == normalise(b)


def test_normalise_keeps_different_names_apart():
    assert normalise("Nørregade") != normalise("Søndergade")
    assert normalise("St. Kongensgade") != normalise("Sankt Kongensgade")   # St. = Store too
    assert normalise("Kongensgade") == "kongensgade"


@pytest.mark.parametrize("text, expected", [
    ("Vejnavn 12B, 6700 Esbjerg", dict(kind="address", street="Vejnavn", husnr=12, letter="B",
                                       postnr="6700", town="Esbjerg")),
    ("Vejnavn 12 Esbjerg", dict(kind="address", street="Vejnavn", husnr=12, town="Esbjerg")),
    ("Kongensgade 12, 1. tv, 6700 Esbjerg", dict(kind="address", husnr=12, postnr="6700")),
    ("krydset Storegade/Jernbanegade Vejen", dict(kind="junction", street="Storegade",
                                                  street2="Jernbanegade", town="Vejen")),
    ("Storegade og Jernbanegade", dict(kind="junction", street="Storegade", street2="Jernbanegade")),
    ("hjørnet af Storegade og Jernbanegade", dict(kind="junction", street="Storegade")),
    ("rundkørslen Storegade/Jernbanegade", dict(kind="junction", street2="Jernbanegade")),
    ("rundkørslen ved Kolding Landevej", dict(kind="street", street="Kolding Landevej")),
    ("cykelstien ud for Vestervej 40", dict(kind="house_near", street="Vestervej", husnr=40)),
    ("Vestervej ud for nr. 40", dict(kind="house_near", street="Vestervej", husnr=40)),
    ("Vestervej ved nr. 40", dict(kind="house_near", street="Vestervej", husnr=40)),
    ("cykelstien langs Vestervej", dict(kind="street", street="Vestervej")),
    ("Storegade ved Jernbanegade", dict(kind="junction", street="Storegade", connector="ved")),
    ("Kongensgade ved Ribe", dict(kind="street", street="Kongensgade", town="Ribe")),
    ("Rute 11 km 23", dict(kind="road_km", road="11", km=23.0)),
    ("Rute 11 ved Ribe", dict(kind="road_km", road="11", town="Ribe")),
    ("Esbjerg", dict(kind="town", town="Esbjerg")),
    ("6700 Esbjerg", dict(kind="town", postnr="6700")),
    ("p-pladsen ved Bilka", dict(kind="landmark", landmark="Bilka")),
    ("", dict(kind="blank")), ("  ?  ", dict(kind="blank")), (None, dict(kind="blank")),
    ("Chr. 9.s Vej 4", dict(kind="address", street="Chr. 9.s Vej", husnr=4)),
    ("Middelfartv. 291", dict(kind="address", street="Middelfartv.", husnr=291)),
    # 'i' after the number is the preposition, a lone 4-digit last part the postcode
    ("Vestergade nr 6 i Ribe", dict(kind="address", street="Vestergade", husnr=6, letter="",
                                    town="Ribe")),
    ("Vestergade 6I, Ribe", dict(kind="address", husnr=6, letter="I", town="Ribe")),
    ("Vestergade 6 i", dict(kind="address", husnr=6, letter="I")),
    ("Vestergade 6,6760", dict(kind="address", husnr=6, postnr="6760")),
    ("Vestergade 6, 2. 1234, 6760 Ribe", dict(kind="address", husnr=6, postnr="6760")),
])
def test_parse_location(text, expected):
    p = parse_location(text)
    assert {k: getattr(p, k) for k in expected} == expected


# -- geocode_texts on real Odense data ------------------------------------------------------------

CASES = [
    # text, hint, quality, method, expected point (None = not placed)
    ("Middelfartvej 291, 5200 Odense V", "0461", "A", "address", MIDDELFARTVEJ_291),
    ("middelfartvej 291", "461", "A", "address", MIDDELFARTVEJ_291),
    ("MIDDELFARTVEJ 291", None, "A", "address", MIDDELFARTVEJ_291),   # unique name, no hint
    ("Nørregade 48, 5000 Odense C", None, "A", "address", NOERREGADE_48),
    ("Middelfartv. 291 Odense", None, "B", "address", MIDDELFARTVEJ_291),
    ("Midelfartvej 291, 5200 Odense V", "", "B", "address", MIDDELFARTVEJ_291),
    ("Hoejstrupvangen 17", "0461", "B", "address", HOEJSTRUPVANGEN_17),
    ("Kildegaardsvej 188", "0461", "B", "address", KILDEGAARDSVEJ_188),
    ("Kildegårdvej 188, 5240", None, "B", "address", KILDEGAARDSVEJ_188),
    ("cykelstien ud for Middelfartvej 291", "0461", "A", "house_near", MIDDELFARTVEJ_291),
    ("Middelfartvej 289", "0461", "B", "nearest_number", MIDDELFARTVEJ_291),
    ("hjørnet af Holstedvej og Regner Lodbrogs Vej", "0461", "A", "junction",
     HOLSTEDVEJ_X_REGNER_LODBROGS_VEJ),
    ("Regner Lodbrogsvej/Holstedvej", "0461", "B", "junction", HOLSTEDVEJ_X_REGNER_LODBROGS_VEJ),
    ("Nørregade", "0461", "C", "street", None),
    ("Stationsvej", None, "none", None, None),           # 3 kommuner, far apart, no hint
    ("Odense", None, "none", None, None),
    ("6700 Esbjerg", "0561", "none", None, None),
    ("", "0461", "none", None, None),
    ("Fantasivej 3", "0461", "none", None, None),
    ("Rute 9 km 12", "0461", "none", None, None),
    ("p-pladsen ved Bilka", "0461", "none", None, None),
]


@pytest.fixture(scope="module")
def results(con, gaz):
    texts = pd.DataFrame({"location_text": [c[0] for c in CASES],
                          "kommunekode_hint": [c[1] for c in CASES]})
    return geocode_texts(con, texts, Settings(), gazetteer=gaz)


@pytest.mark.parametrize("i", range(len(CASES)), ids=[c[0] or "<blank>" for c in CASES])
def test_geocode_cases(results, i):
    text, hint, quality, method, point = CASES[i]
    row = results.iloc[i]
    assert (row["location_text"], row["quality"], row["method"]) == (text, quality, method), row["reason"]
    if point is not None:
        assert near(row, point), (row["x"], row["y"])
        assert row["kommunekode"] == "0461"
    if quality == "none":
        assert pd.isna(row["x"]) and row["reason"]


def test_uncertainty_and_labels(results):
    r = results.set_index("location_text")
    assert r.at["Middelfartvej 291, 5200 Odense V", "uncertainty_m"] == 5
    assert r.at["Middelfartvej 291, 5200 Odense V", "matched"] == "Middelfartvej 291, 5200 Odense V"
    assert 10 <= r.at["Midelfartvej 291, 5200 Odense V", "uncertainty_m"] <= 25
    assert r.at["hjørnet af Holstedvej og Regner Lodbrogs Vej", "matched"] == "Holstedvej / Regner Lodbrogs Vej"
    # street only: a point ON Nørregade, uncertainty half its length
    assert 150 < r.at["Nørregade", "uncertainty_m"] < 1000
    assert r.at["Odense", "reason"].startswith("town only")
    assert "ambiguous" in r.at["Stationsvej", "reason"]
    assert "Fantasivej" in r.at["Fantasivej 3", "reason"]


def test_street_point_is_on_the_street(con, results):
    row = results.set_index("location_text").loc["Nørregade"]
    d = con.execute("SELECT ST_Distance(geom, ST_Point(?, ?)) FROM gazetteer.street "
                    "WHERE kommunekode = '0461' AND vejnavn = 'Nørregade'",
                    [row["x"], row["y"]]).fetchone()[0]
    assert d < 1


def test_same_name_in_several_kommuner_is_never_a(con, gaz):
    texts = pd.DataFrame({
        "location_text": ["Stationsvej 5", "Stationsvej 19", "Stationsvej 19", "Stationsvej",
                          "Kildevej", "Gyden 3, 4270 Høng"],
        "kommunekode_hint": [None, None, "0420", "0420", None, None]})
    r = geocode_texts(con, texts, gazetteer=gaz)
    # number 5 exists only on Høng's Stationsvej, but the name is in 3 kommuner: C at best
    assert r.loc[0, "quality"] == "C" and r.loc[0, "kommunekode"] == "0326"
    assert r.loc[1, "quality"] in ("C", "none")
    # with the kommune stated, Vissenbjerg's Stationsvej 19 is exact; street only -> C
    assert (r.loc[2, "quality"], r.loc[2, "kommunekode"]) == ("A", "0420")
    assert near(r.loc[2], (570074.36, 6136828.81))
    assert (r.loc[3, "quality"], r.loc[3, "method"], r.loc[3, "kommunekode"]) == ("C", "street", "0420")
    assert r.loc[4, "quality"] == "none"            # Roskilde and Kalundborg, 45 km apart
    # a postcode picks Høng's Gyden out of two
    assert (r.loc[5, "quality"], r.loc[5, "kommunekode"]) == ("A", "0326")


def test_hint_narrows_but_never_overrides_the_text(con, gaz):
    # Nørregade 48 is in Odense; a ward in Esbjerg (0561) stating its own kommune gets C
    r = geocode_texts(con, pd.DataFrame({"location_text": ["Nørregade 48"],
                                         "kommunekode_hint": ["0561"]}), gazetteer=gaz)
    assert r.loc[0, "quality"] == "C" and near(r.loc[0], NOERREGADE_48)
    assert "outside" in r.loc[0, "reason"]


def test_geocode_texts_loops_over_distinct_pairs_and_keeps_rows(con, gaz, monkeypatch):
    import skadestue.geocode.match as match
    calls = []
    real = match.parse_location
    monkeypatch.setattr(match, "parse_location", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    texts = pd.DataFrame({"location_text": ["Nørregade 48"] * 50 + ["Middelfartvej 291"] * 30 + [None] * 5,
                          "kommunekode_hint": ["0461"] * 85},
                         index=range(100, 185))
    r = geocode_texts(con, texts, gazetteer=gaz)
    assert len(calls) == 3
    assert list(r.index) == list(range(100, 185))
    assert (r["quality"] == "A").sum() == 80 and (r["quality"] == "none").sum() == 5


# -- warehouse: ER contacts and police accidents --------------------------------------------------


def test_geocode_er_contacts_uses_and_fills_the_cache(con):
    con.execute("DELETE FROM core.geocode_result")
    _er_rows(con, [("Middelfartvej 291", "0461"), ("Middelfartvej 291", "0461"),
                   ("Nørregade 48, 5000 Odense C", None), ("Odense", None), (None, None),
                   ("Kildegaardsvej 188", "0461")])
    counts = geocode_er_contacts(con, Settings())
    assert counts["texts_geocoded"] == 5 and counts["texts_cached"] == 0
    assert (counts["A"], counts["B"], counts["C"], counts["none"]) == (3, 1, 0, 2)
    rows = {r[0]: r[1:] for r in con.execute(
        "SELECT kontakt_id, x, y, geocode_quality, geocode_method, kommunekode, geocode_uncertainty_m "
        "FROM core.er_contact").fetchall()}
    assert rows["OUH-0002"][2:5] == ("A", "address", "0461")   # kommune from the polygon
    assert math.hypot(rows["OUH-0002"][0] - NOERREGADE_48[0], rows["OUH-0002"][1] - NOERREGADE_48[1]) < 1
    assert rows["OUH-0003"][2] == "none" and rows["OUH-0003"][0] is None and rows["OUH-0003"][4] is None
    assert con.execute("SELECT count(*) FROM core.geocode_result").fetchone()[0] == 5
    assert con.execute("SELECT reason FROM core.geocode_result WHERE location_text = ''").fetchone()[0] \
        == "blank location text"
    # next night: one new text, the rest from the cache
    _er_rows(con, [("Middelfartvej 291", "0461"), ("Middelfartvej 293", "0461")])
    counts = geocode_er_contacts(con, Settings())
    assert counts["texts_geocoded"] == 1 and counts["texts_cached"] == 5
    assert counts["A"] == 2
    x, y = con.execute("SELECT x, y FROM core.er_contact WHERE kontakt_id = 'OUH-0001'").fetchone()
    assert math.hypot(x - MIDDELFARTVEJ_293[0], y - MIDDELFARTVEJ_293[1]) < 1


def test_geocode_police_accidents(con):
    con.execute("DELETE FROM core.police_accident")
    rows = [
        # uheld_id, kommunekode, vejnavn, husnr, krydsende_vej, x, y
        ("P1", "0461", "Nørregade", "48", None, NOERREGADE_48[0] + 8, NOERREGADE_48[1] - 5),
        ("P2", "0461", "Middelfartvej", "291", None, MIDDELFARTVEJ_291[1], MIDDELFARTVEJ_291[0]),
        ("P3", "0461", "Middelfartvej", "291", None, None, None),
        ("P4", "0461", "Holstedvej", None, "Regner Lodbrogs Vej", None, None),
        ("P5", "0461", "Nørregade", "48", None, 520000.0, 6125000.0),     # Haderslev, not Odense
        ("P6", "0461", None, None, None, 100.0, 200.0),                    # nowhere in Denmark
        ("P7", "0999", "Ukendtvej", "1", None, 600000.0, 6200000.0),        # kommune without polygon
        ("P8", "0461", "Fantasivej", "3", None, None, None),
    ]
    for r in rows:
        con.execute("""INSERT INTO core.police_accident(uheld_id, delivery_id, uheldsdato, severity,
                         kommunekode, vejnavn, husnr, krydsende_vej, x, y)
                       VALUES (?, 'pol-test', DATE '2024-05-01', 'slight', ?, ?, ?, ?, ?, ?)""", list(r))
    counts = geocode_police_accidents(con, Settings())
    got = {r[0]: r[1:] for r in con.execute(
        "SELECT uheld_id, x, y, geocode_quality, xy_flag FROM core.police_accident").fetchall()}
    assert got["P1"] == (NOERREGADE_48[0] + 8, NOERREGADE_48[1] - 5, "police", None)
    assert got["P2"] == (MIDDELFARTVEJ_291[0], MIDDELFARTVEJ_291[1], "police", "swapped")
    assert got["P3"][2:] == ("A", None) and math.hypot(got["P3"][0] - MIDDELFARTVEJ_291[0],
                                                        got["P3"][1] - MIDDELFARTVEJ_291[1]) < 1
    assert got["P4"][2] == "A" and math.hypot(got["P4"][0] - HOLSTEDVEJ_X_REGNER_LODBROGS_VEJ[0],
                                              got["P4"][1] - HOLSTEDVEJ_X_REGNER_LODBROGS_VEJ[1]) < 2
    assert got["P5"][2:] == ("A", "outside_kommune")
    assert math.hypot(got["P5"][0] - NOERREGADE_48[0], got["P5"][1] - NOERREGADE_48[1]) < 1
    assert got["P6"] == (None, None, "none", "outside_denmark")
    assert got["P7"] == (600000.0, 6200000.0, "police", None)
    assert got["P8"] == (None, None, "none", None)
    assert (counts["police"], counts["A"], counts["none"]) == (3, 3, 2)
    assert (counts["swapped"], counts["outside_kommune"], counts["outside_denmark"]) == (1, 1, 1)
