"""Unplaced texts: the review list with candidates, and the corrections file (issue 4)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from geodata.importer import import_geodata
from helpers import replace_er_locations as _er_rows
from skadestue.config import GeocodeSettings, Settings
from skadestue.db import connect
from skadestue.geocode import geocode_er_contacts
from skadestue.geocode.review import CorrectionsFileError, check_correction, read_corrections

NOERREGADE_48 = (587928.92, 6140163.52)
MIDDELFARTVEJ_291 = (583132.10, 6139304.08)


@pytest.fixture(scope="module")
def con(shared_data):
    c = connect(":memory:")
    import_geodata(
        c, addresses=shared_data / "addresses" / "dawa_testdata_adgangsadresser_joined.csv",
        roads=shared_data / "roads" / "dawa_testdata_vejmidte_21kommuner_epsg25832_with_vejnavn.geojson",
        municipalities=shared_data / "boundaries" / "dagi_kommuner.geojson",
        postcodes=shared_data / "boundaries" / "dagi_postnumre.geojson")
    yield c
    c.close()



ROWS = [
    ("Midelfartsvejen ved Brugsen", "0461"),     # too far from any name for a safe match
    ("Midelfartsvejen ved Brugsen", "0461"),
    ("Kildev. 6", None),                          # Kildevej in 0265 and 0326
    ("p-pladsen ved Netto", "0461"),
    ("", None),
    ("Nørregade 48, 5000 Odense C", None),
]


def settings_with(tmp_path, csv_text: str | None) -> Settings:
    path = tmp_path / "geocode_corrections.csv"
    if csv_text is not None:
        path.write_text(csv_text, encoding="utf-8")
    return Settings(geocode=GeocodeSettings(corrections_file=path))


def contact(con, kontakt_id):
    return con.execute("""SELECT x, y, geocode_quality, geocode_method, geocode_uncertainty_m
                          FROM core.er_contact WHERE kontakt_id = ?""", [kontakt_id]).fetchone()


def test_unplaced_rows_are_kept_and_listed_with_candidates(con, tmp_path):
    con.execute("DELETE FROM core.geocode_result")
    _er_rows(con, ROWS)
    counts = geocode_er_contacts(con, settings_with(tmp_path, None))
    assert counts["none"] == 5 and counts["A"] == 1 and counts["corrections"] == 0
    assert con.execute("SELECT count(*) FROM core.er_contact").fetchone()[0] == 6
    assert contact(con, "OUH-0000")[:3] == (None, None, "none")
    review = con.execute("SELECT location_text, kommunekode_hint, n_contacts, reason, candidates "
                         "FROM quality.geocode_review").df()
    # the blank text is not listed (nothing to read); the two Midelfartsvejen contacts count 2
    assert list(review["location_text"]) == ["Midelfartsvejen ved Brugsen", "Kildev. 6",
                                             "p-pladsen ved Netto"]
    assert list(review["n_contacts"]) == [2, 1, 1] and counts["review"] == 3
    kilde = review.iloc[1]
    assert "ambiguous" in kilde["reason"] and "0265" in kilde["reason"]
    cands = json.loads(kilde["candidates"])
    assert {c["label"] for c in cands[:2]} == {"Kildevej (0265)", "Kildevej (0326)"}
    assert all(c["score"] == 100 for c in cands[:2])
    midd = json.loads(review.iloc[0]["candidates"])
    assert midd[0]["label"] == "Middelfartvej (0461)" and midd[0]["kommunekode"] == "0461"
    assert 575_000 < midd[0]["x"] < 590_000 and 6_130_000 < midd[0]["y"] < 6_145_000
    assert review.iloc[2]["candidates"] is None or json.loads(review.iloc[2]["candidates"]) == [] \
        or all(c["kommunekode"] == "0461" for c in json.loads(review.iloc[2]["candidates"]))


def test_corrections_are_applied_next_run_and_undone_when_removed(con, tmp_path):
    con.execute("DELETE FROM core.geocode_result")
    con.execute("DELETE FROM quality.quarantine")
    _er_rows(con, ROWS)
    geocode_er_contacts(con, settings_with(tmp_path, None))
    csv = ("location_text;kommunekode_hint;x;y;address;quality;note\n"
           "  midelfartsvejen   VED brugsen ;0461;583140,5;6139300;;;checked on the map\n"
           "Kildev. 6;;;;Nørregade 48, 5000 Odense C;;\n"
           "p-pladsen ved Netto;461;12.3;55.4;;;\n"                 # lon/lat: rejected
           "p-pladsen ved Netto;0461;6139300;583140;;;\n"            # swapped: rejected
           "p-pladsen ved Netto;0461;;;Fantasivej 99;;\n"            # address not found: rejected
           "p-pladsen ved Netto;0461;583000;6139000;;Z;\n")          # bad quality: rejected
    s = settings_with(tmp_path, csv)
    counts = geocode_er_contacts(con, s, run_id="night-2")
    assert counts["corrections"] == 2 and counts["texts_corrected"] == 2
    x, y, q, method, unc = contact(con, "OUH-0001")
    assert (x, y, q, method, unc) == (583140.5, 6139300.0, "B", "manual", 10.0)
    x, y, q, method, _ = contact(con, "OUH-0002")
    assert q == "A" and method == "manual_address"
    assert math.hypot(x - NOERREGADE_48[0], y - NOERREGADE_48[1]) < 1
    assert contact(con, "OUH-0003")[2] == "none"
    assert counts["review"] == 1
    bad = con.execute("""SELECT line_no, reason FROM quality.quarantine
                         WHERE run_id = 'night-2' AND stage = 'geocode' ORDER BY line_no""").fetchall()
    assert [b[0] for b in bad] == [4, 5, 6, 7]
    assert "longitude/latitude" in bad[0][1] and "swapped" in bad[1][1]
    assert "Fantasivej 99" in bad[2][1] and "A, B or C" in bad[3][1]
    # the corrected kommune comes from the polygon under the manual point
    assert con.execute("SELECT kommunekode FROM core.er_contact WHERE kontakt_id = 'OUH-0002'"
                       ).fetchone()[0] == "0461"
    # a night later the line for Kildev. 6 is removed: the text is unplaced again
    s2 = settings_with(tmp_path, "location_text,kommunekode_hint,x,y\n"
                                 "Midelfartsvejen ved Brugsen,0461,583140.5,6139300\n")
    counts = geocode_er_contacts(con, s2)
    assert counts["corrections"] == 1 and counts["texts_corrected"] == 1
    assert contact(con, "OUH-0002")[:3] == (None, None, "none")
    assert contact(con, "OUH-0000")[2] == "B"
    assert counts["review"] == 2


def test_a_correction_with_a_hint_only_applies_to_that_hint(con, tmp_path):
    con.execute("DELETE FROM core.geocode_result")
    _er_rows(con, [("Kildev. 6", "0265"), ("Kildev. 6", None), ("Kildev. 6", "0326")])
    s = settings_with(tmp_path, "location_text,kommunekode_hint,x,y,quality\n"
                                "Kildev. 6,,650000,6170000,C\n"
                                "Kildev. 6,0326,640000,6180000,A\n")
    geocode_er_contacts(con, s)
    got = con.execute("SELECT kontakt_id, x, geocode_quality FROM core.er_contact "
                      "ORDER BY kontakt_id").fetchall()
    # the line without a hint covers every hint; the line with hint 0326 wins for that hint
    assert got[0][1:] == (650000.0, "C") and got[1][1:] == (650000.0, "C")
    assert got[2][1:] == (640000.0, "A")
    # a correction for another kommune's hint leaves the geocoder's own answer alone
    s = settings_with(tmp_path, "location_text,kommunekode_hint,x,y\nKildev. 6,0326,640000,6180000\n")
    geocode_er_contacts(con, s)
    got = con.execute("SELECT kontakt_id, x, geocode_quality, geocode_method FROM core.er_contact "
                      "ORDER BY kontakt_id").fetchall()
    assert got[0][2] in ("A", "B", "C") and got[0][3] != "manual"     # 0265: one Kildevej
    assert got[1][1:3] == (None, "none")                                # no hint: ambiguous
    assert got[2][1:] == (640000.0, "B", "manual")


def test_unreadable_corrections_files_say_what_to_do(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("tekst,x,y\nfoo,1,2\n", encoding="utf-8")
    with pytest.raises(CorrectionsFileError, match="location_text"):
        read_corrections(p)
    p.write_text("location_text,note\nfoo,bar\n", encoding="utf-8")
    with pytest.raises(CorrectionsFileError, match="x and y"):
        read_corrections(p)
    p.write_bytes("location_text,x,y\nKøgevej,1,2\n".encode("latin-1"))
    with pytest.raises(CorrectionsFileError, match="UTF-8"):
        read_corrections(p)
    assert read_corrections(tmp_path / "missing.csv").empty


@pytest.mark.parametrize("row, problem", [
    ({"location_text": "", "x": "590000", "y": "6140000"}, "empty"),
    ({"location_text": "a", "x": "590000", "y": ""}, "not both numbers"),
    ({"location_text": "a", "x": "100000", "y": "6140000"}, "outside Denmark"),
    ({"location_text": "a", "kommunekode_hint": "Odense", "x": "590000", "y": "6140000"},
     "not a kommunekode"),
    ({"location_text": "a"}, "either x and y or an address"),
    ({"location_text": "a", "x": "590000", "y": "6140000"}, None),
    ({"location_text": "a", "x": "590000,5", "y": "6140000,25", "quality": "a"}, None),
    ({"location_text": "a", "address": "Nørregade 48"}, None),
])
def test_check_correction(row, problem):
    full = pd.Series({"location_text": "", "kommunekode_hint": "", "x": "", "y": "",
                      "address": "", "quality": "", **row})
    got = check_correction(full)
    assert (got is None) if problem is None else (problem in got)
