"""Gazetteer import on the real DAWA / GeoDanmark / DAGI extracts in ../shared/data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geodata.importer import GeodataError, gazetteer_counts, import_geodata, sniff_csv
from skadestue.db import connect

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ADDR_JOINED = DATA / "addresses" / "dawa_testdata_adgangsadresser_joined.csv"
ADDR_RAW = DATA / "addresses" / "dawa_testdata_adgangsadresser_raw.csv"
VEJNAVNE_RAW = DATA / "addresses" / "dawa_testdata_vejnavne_raw.csv"
ROADS = DATA / "roads" / "dawa_testdata_vejmidte_21kommuner_epsg25832_with_vejnavn.geojson"
KOMMUNER = DATA / "boundaries" / "dagi_kommuner.geojson"
POSTNUMRE = DATA / "boundaries" / "dagi_postnumre.geojson"

pytestmark = pytest.mark.skipif(not ROADS.exists(), reason="shared geodata not available")


@pytest.fixture(scope="module")
def gaz_con():
    con = connect(":memory:")
    counts = import_geodata(con, addresses=ADDR_JOINED, roads=ROADS, municipalities=KOMMUNER,
                            postcodes=POSTNUMRE)
    yield con, counts
    con.close()


def one(con, sql, params=None):
    return con.execute(sql, params or []).fetchone()


def test_counts_of_the_full_files(gaz_con):
    con, counts = gaz_con
    assert counts["municipality"] == 99          # 98 + Christiansø, dissolved from 311 parts
    assert counts["postcode"] == 592             # 805 features, 592 distinct postnumre
    assert counts["road_segment"] == 5684
    assert counts["address"] == 1320 and counts["address_skipped"] == 0
    assert counts == {**counts, **{k: v for k, v in gazetteer_counts(con).items() if k in counts}}
    assert one(con, "SELECT count(*) FROM gazetteer.road_segment WHERE kommunekode = '0461'")[0] == 1717
    assert one(con, "SELECT count(*) FROM gazetteer.address WHERE kommunekode = '0461'")[0] == 460
    assert one(con, "SELECT count(*) FROM gazetteer.address WHERE kommunekode = '0510'")[0] == 7
    assert one(con, "SELECT count(*) FROM gazetteer.street WHERE kommunekode = '0461'")[0] == 55
    assert one(con, "SELECT count(*) FROM gazetteer.junction WHERE kommunekode = '0461'")[0] == 83


def test_geometries_are_2d_epsg25832(gaz_con):
    con, _ = gaz_con
    # Z (road heights, DAGI z=-999) dropped everywhere
    assert one(con, "SELECT count(*) FROM gazetteer.road_segment WHERE ST_HasZ(geom)")[0] == 0
    assert one(con, "SELECT count(*) FROM gazetteer.municipality WHERE ST_HasZ(geom)")[0] == 0
    # Odense's polygon is in UTM metres (not lon/lat, not swapped)
    xmin, ymin, xmax, ymax = one(con, """SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom),
                                         ST_YMax(geom) FROM gazetteer.municipality
                                         WHERE kommunekode = '0461'""")
    assert 560_000 < xmin < xmax < 610_000 and 6_110_000 < ymin < ymax < 6_160_000
    # segment length in metres: the first Middelfartvej segment of the file (7 vertices, ~114 m)
    assert one(con, """SELECT round(length_m) FROM gazetteer.road_segment
                       WHERE startknude = '5269886' AND slutknude = '5269887'""")[0] == 114


def test_municipality_polygons_contain_their_addresses(gaz_con):
    con, _ = gaz_con
    # Middelfartvej 291, 5200 Odense V lies in Odense kommune and nowhere else
    rows = con.execute("""SELECT m.kommunekode FROM gazetteer.municipality m
                          WHERE ST_Contains(m.geom, ST_Point(583132.1, 6139304.08))""").fetchall()
    assert rows == [("0461",)]
    # all 7 Haderslev addresses fall inside 0510 (a region kommune)
    assert one(con, """SELECT count(*) FROM gazetteer.address a JOIN gazetteer.municipality m
                       ON ST_Contains(m.geom, ST_Point(a.x, a.y))
                       WHERE a.kommunekode = '0510' AND m.kommunekode = '0510'""")[0] == 7
    assert one(con, "SELECT navn FROM gazetteer.municipality WHERE kommunekode = '0510'")[0] == "Haderslev"
    # postcode polygon 5000 Odense C contains Nørregade 48
    assert one(con, """SELECT list(postnr) FROM gazetteer.postcode
                       WHERE ST_Contains(geom, ST_Point(587928.92, 6140163.52))""")[0] == ["5000"]


def test_known_junctions_between_real_odense_streets(gaz_con):
    con, _ = gaz_con
    row = one(con, """SELECT junction_id, x, y, vejnavne, n_roads, node_id FROM gazetteer.junction
                      WHERE list_contains(vejnavne, 'Holstedvej')
                        AND list_contains(vejnavne, 'Regner Lodbrogs Vej')""")
    assert row[0] == "J0461_584250_6139813"
    assert row[1] == pytest.approx(584250, abs=1) and row[2] == pytest.approx(6139813, abs=1)
    assert row[3] == ["Holstedvej", "Regner Lodbrogs Vej"] and row[4] == 2 and row[5] is not None
    # a dual carriageway: Rugårdsvej meets Rismarksvej at two nodes a few metres apart
    rows = con.execute("""SELECT x, y FROM gazetteer.junction
                          WHERE list_contains(vejnavne, 'Rugårdsvej')
                            AND list_contains(vejnavne, 'Rismarksvej')""").fetchall()
    assert len(rows) == 2
    assert abs(rows[0][0] - rows[1][0]) < 50 and abs(rows[0][1] - rows[1][1]) < 50
    # every junction joins at least two different roads; ids are unique
    assert one(con, "SELECT min(n_roads), count(*) = count(DISTINCT junction_id) FROM gazetteer.junction") == (2, True)


def test_streets_carry_postcodes_point_and_length(gaz_con):
    con, _ = gaz_con
    row = one(con, """SELECT postnumre, x, y, length_m, n_addresses, navn_norm FROM gazetteer.street
                      WHERE kommunekode = '0461' AND vejnavn = 'Nørregade'""")
    assert row[0] == ["5000"] and row[4] == 26 and row[5] == "noerregade"
    # the street point lies on the street line
    assert one(con, """SELECT ST_Distance(geom, ST_Point(x, y)) FROM gazetteer.street
                       WHERE kommunekode = '0461' AND vejnavn = 'Nørregade'""")[0] < 0.01
    assert 300 < row[3] < 2000
    # Stationsvej exists in three kommuner, each its own street
    assert one(con, "SELECT list(kommunekode ORDER BY kommunekode) FROM gazetteer.street "
                    "WHERE vejnavn = 'Stationsvej'")[0] == ["0155", "0326", "0420"]


def test_reimport_is_idempotent_and_keeps_ids_and_cache():
    con = connect(":memory:")
    kw = dict(addresses=ADDR_JOINED, roads=ROADS, municipalities=KOMMUNER)
    first = import_geodata(con, **kw)
    ids1 = con.execute("SELECT list(junction_id ORDER BY junction_id) FROM gazetteer.junction").fetchone()[0]
    con.execute("INSERT INTO core.geocode_result(location_text, kommunekode_hint, quality) "
                "VALUES ('Nørregade 48', '0461', 'A')")
    second = import_geodata(con, **kw)
    ids2 = con.execute("SELECT list(junction_id ORDER BY junction_id) FROM gazetteer.junction").fetchone()[0]
    assert {k: v for k, v in first.items() if k != "geocode_cache_cleared"} == \
           {k: v for k, v in second.items() if k != "geocode_cache_cleared"}
    assert ids1 == ids2 and len(ids1) == 222
    assert second["geocode_cache_cleared"] == 0            # same files: cache still valid
    assert one(con, "SELECT count(*) FROM core.geocode_result")[0] == 1
    # different gazetteer -> the cache is cleared
    third = import_geodata(con, addresses=ADDR_RAW, vejnavne=VEJNAVNE_RAW, roads=ROADS,
                           municipalities=KOMMUNER)
    assert third["geocode_cache_cleared"] == 1
    assert one(con, "SELECT count(*) FROM core.geocode_result")[0] == 0
    assert one(con, "SELECT count(*) FROM gazetteer.import_log")[0] == 3
    assert json.loads(one(con, "SELECT counts FROM gazetteer.import_log ORDER BY imported_at DESC")[0])["address"] == 1320
    con.close()


def test_raw_dawa_file_gets_names_from_vejnavne_or_roads(gaz_con):
    joined_con, _ = gaz_con
    expected = dict(joined_con.execute("SELECT id, vejnavn FROM gazetteer.address").fetchall())
    con = connect(":memory:")
    c = import_geodata(con, addresses=ADDR_RAW, vejnavne=VEJNAVNE_RAW, roads=ROADS,
                       municipalities=KOMMUNER)
    assert c["address"] == 1320 and c["address_unnamed"] == 0
    got = dict(con.execute("SELECT id, vejnavn FROM gazetteer.address").fetchall())
    assert got == expected
    # raw columns: husnummer, postnummer, adgangspunkt_etrs89koordinat_*, kommunekode '155'
    assert one(con, "SELECT kommunekode, husnr, postnr, postnrnavn, x, y FROM gazetteer.address "
                    "WHERE id = '0a3f507b-c905-32b8-e044-0003ba298018'") == \
        ("0155", "60", "2791", "Dragør", 728838.86, 6166977.63)
    # without the vejnavne file, names come from the road centre lines (all roads are named here)
    c2 = import_geodata(con, addresses=ADDR_RAW, roads=ROADS, municipalities=KOMMUNER)
    named = one(con, "SELECT count(*) FROM gazetteer.address WHERE vejnavn IS NOT NULL")[0]
    assert c2["address"] == 1320 and named == 1320 and c2["address_unnamed"] == 0
    assert dict(con.execute("SELECT id, vejnavn FROM gazetteer.address").fetchall()) == expected
    con.close()


def test_cp1252_semicolon_csv_with_bad_rows(tmp_path):
    csv = tmp_path / "adr.csv"
    lines = [
        "id;kommunekode;vejkode;vejnavn;husnummer;postnummer;postdistrikt;supplerendebynavn;"
        "adgangspunkt_etrs89koordinat_oest;adgangspunkt_etrs89koordinat_nord",
        "a1;561;1234;Kongensgade;12B;6700;Esbjerg;;481200,5;6151600,25",
        "a2;0561;1234;Kongensgade;14;6700;Esbjerg;;481210.5;6151610.0",
        "a3;0575;0042;Ågade;3;6600;Vejen;Øster Starup;;",           # no coordinates -> skipped
        "a2;0561;1234;Kongensgade;14;6700;Esbjerg;;481210.5;6151610.0",  # duplicate id -> skipped
    ]
    csv.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    assert sniff_csv(csv) == (";", "latin-1")
    con = connect(":memory:")
    c = import_geodata(con, addresses=csv, roads=ROADS, municipalities=KOMMUNER)
    assert c["address"] == 2 and c["address_skipped"] == 2
    assert con.execute("SELECT kommunekode, vejkode, husnr, husnr_tal, husnr_bogstav, x, y "
                       "FROM gazetteer.address ORDER BY id").fetchall() == [
        ("0561", "1234", "12B", 12, "B", 481200.5, 6151600.25),
        ("0561", "1234", "14", 14, "", 481210.5, 6151610.0),
    ]
    assert one(con, "SELECT postnumre, n_addresses FROM gazetteer.street WHERE vejnavn = 'Kongensgade'") == (["6700"], 2)
    con.close()


def test_missing_columns_and_files_give_clear_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,vejkode,husnr\nx,1,2\n", encoding="utf-8")
    con = connect(":memory:")
    with pytest.raises(GeodataError, match="kommunekode"):
        import_geodata(con, addresses=bad, roads=ROADS, municipalities=KOMMUNER)
    # the failed import rolled back: nothing half-loaded
    assert one(con, "SELECT count(*) FROM gazetteer.municipality")[0] == 0
    with pytest.raises(GeodataError, match="not found"):
        import_geodata(con, addresses=tmp_path / "nope.csv", roads=ROADS, municipalities=KOMMUNER)
    con.close()


def test_junctions_by_snapping_when_no_node_ids(tmp_path):
    """Lines without STARTKNUDE/SLUTKNUDE meet when their end points are within ~1 m."""
    def line(kode, navn, coords):
        return {"type": "Feature", "properties": {"KOMMUNEKODE": "0561", "VEJKODE": kode, "navn": navn,
                                                  "VEJKLASSE": "Lokalvej-Primær"},
                "geometry": {"type": "LineString", "coordinates": coords}}
    fc = {"type": "FeatureCollection",
          "crs": {"type": "name", "properties": {"name": "EPSG:25832"}},
          "features": [
              line("0100", "Kongensgade", [[481000.0, 6151000.0, 5.0], [481100.2, 6151000.1, 5.0]]),
              line("0100", "Kongensgade", [[481100.2, 6151000.1, 5.0], [481200.0, 6151000.0, 5.0]]),
              line("0200", "Torvegade", [[481100.0, 6150900.0, 4.0], [481100.1, 6151000.0, 4.0]]),
              line("0300", "Skolegade", [[481200.0, 6151000.0], [481300.0, 6151050.0]]),
              line("0300", "Skolegade", [[481300.0, 6151050.0], [481400.0, 6151050.0]]),
          ]}
    roads = tmp_path / "roads.geojson"
    roads.write_text(json.dumps(fc), encoding="utf-8")
    addr = tmp_path / "a.csv"
    addr.write_text("id,kommunekode,vejkode,husnr,etrs89_oest,etrs89_nord\n"
                    "b1,0561,0200,5,481105.0,6150950.0\n", encoding="utf-8")
    con = connect(":memory:")
    c = import_geodata(con, addresses=addr, roads=roads, municipalities=KOMMUNER)
    assert c["road_segment"] == 5 and c["junction"] == 2
    rows = con.execute("SELECT junction_id, vejnavne, vejkoder, node_id FROM gazetteer.junction "
                       "ORDER BY junction_id").fetchall()
    assert rows == [
        ("J0561_481100_6151000", ["Kongensgade", "Torvegade"], ["0100", "0200"], None),
        ("J0561_481200_6151000", ["Kongensgade", "Skolegade"], ["0100", "0300"], None),
    ]
    # the address got its street name from the road file (no vejnavn column)
    assert one(con, "SELECT vejnavn FROM gazetteer.address")[0] == "Torvegade"
    con.close()
