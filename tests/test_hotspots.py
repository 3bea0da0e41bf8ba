"""Hotspot layers: Kvadratnet grid, junctions, road stretches, Gi*, casualty points.

The fixture is a small hand-made region: two kommuner (0561, 0575) as boxes, a planted
hotspot of 8 casualties (6 accidents) within 20 m of junction J1 in 0561, ~60 scattered
background casualties over 2020-2024 in both kommuner, and adversarial extras: unplaced
casualties, one without kommunekode (found by boundary), one dated 2019 (outside the
window), one in January 2025 (an incomplete year), a casualty between two junctions, a
cell on the kommune border, and casualties on a straight road and on a road with a gap.
All people are synthetic.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from skadestue.config import Settings
from skadestue.db import connect
from skadestue.hotspots import analysis_periods, build_hotspots, kvadratnet_cell_id
from skadestue.hotspots.grid import cell_label, pad_with_empty_cells
from skadestue.hotspots.periods import last_full_year

AS_OF = dt.date(2025, 6, 1)

# Kommune boxes (EPSG:25832): 0561 west of E 490000, 0575 east of it.
BOX = {"0561": (460000, 6140000, 490000, 6160000), "0575": (490000, 6140000, 520000, 6160000)}
J1 = (480050.0, 6150050.0)          # planted hotspot, in cell 100m_61500_4800
J2 = (485000.0, 6150000.0)          # J2 and J3 are 60 m apart
J3 = (485060.0, 6150000.0)
NEAR_TWO = (485025.0, 6150000.0)    # 25 m from J2, 35 m from J3

GAZETTEER_DDL = """
CREATE TABLE IF NOT EXISTS gazetteer.municipality (kommunekode VARCHAR, navn VARCHAR, geom GEOMETRY);
CREATE TABLE IF NOT EXISTS gazetteer.road_segment (segment_id VARCHAR, kommunekode VARCHAR,
    vejkode VARCHAR, vejnavn VARCHAR, vejklasse VARCHAR, startknude VARCHAR, slutknude VARCHAR,
    length_m DOUBLE, geom GEOMETRY);
CREATE TABLE IF NOT EXISTS gazetteer.street (kommunekode VARCHAR, vejkode VARCHAR, vejnavn VARCHAR,
    navn_norm VARCHAR, postnumre VARCHAR[], x DOUBLE, y DOUBLE, length_m DOUBLE,
    n_addresses INTEGER DEFAULT 0, geom GEOMETRY);
CREATE TABLE IF NOT EXISTS gazetteer.junction (junction_id VARCHAR, kommunekode VARCHAR, x DOUBLE,
    y DOUBLE, vejnavne VARCHAR[], vejkoder VARCHAR[], n_roads INTEGER);
"""

CASUALTY_COLUMNS = [
    "casualty_id", "source", "uheld_id", "injury_date", "injury_hour", "kommunekode", "x", "y",
    "geocode_quality", "road_user", "counterpart", "severity", "age_band", "sex",
    "link_probability", "n_er_contacts",
]


def _casualty(cid, source, uheld, date, kommune, x, y, severity="slight", road_user="cyclist"):
    return {
        "casualty_id": cid, "source": source, "uheld_id": uheld, "injury_date": date,
        "injury_hour": 14, "kommunekode": kommune, "x": x, "y": y,
        "geocode_quality": "police" if source != "er" else "A", "road_user": road_user,
        "counterpart": "car", "severity": severity, "age_band": "25-44", "sex": "K",
        "link_probability": 0.97 if source == "both" else None, "n_er_contacts": 0 if source == "police" else 1,
    }


def planted_casualties() -> list[dict]:
    """8 casualties, 6 accidents within 20 m of J1: 1 killed, 3 serious, 4 slight; 4 ER-only."""
    x, y = J1
    d = dt.date
    return [
        _casualty("P1", "police", "U-1", d(2021, 3, 4), "0561", x + 12, y + 5, "killed", "pedestrian"),
        _casualty("P2", "both", "U-1", d(2021, 3, 4), "0561", x + 12, y + 5, "serious", "car"),
        _casualty("P3", "both", "U-2", d(2022, 7, 9), "0561", x - 15, y + 3, "serious", "cyclist"),
        _casualty("P4", "police", "U-2", d(2022, 7, 9), "0561", x - 15, y + 3, "slight", "car"),
        _casualty("P5", "er", None, d(2023, 1, 20), "0561", x + 3, y - 18, "serious", "e_bike"),
        _casualty("P6", "er", None, d(2023, 11, 2), "0561", x - 4, y + 9, "slight", "cyclist"),
        _casualty("P7", "er", None, d(2024, 5, 30), "0561", x + 8, y - 8, "slight", "moped"),
        _casualty("P8", "er", None, d(2024, 12, 31), "0561", x, y + 15, "slight", "cyclist"),
    ]


def background_casualties(n: int = 60, seed: int = 7) -> list[dict]:
    """Scattered casualties in both kommuner, > 400 m from every junction and road."""
    rng = np.random.default_rng(seed)
    xs = rng.uniform(462000, 518000, n)
    ys = rng.uniform(6141000, 6147000, n)  # south of every road and junction (N >= 6150000)
    sev = rng.choice(["killed", "serious", "slight", "slight", "unknown"], n)
    users = rng.choice(["car", "cyclist", "pedestrian", "van", "truck", "bus", "motorcycle", "other", "unknown"], n)
    sources = rng.choice(["police", "er", "both"], n)
    days = rng.integers(0, 5 * 365, n)
    rows = []
    for i in range(n):
        kommune = "0561" if xs[i] < 490000 else "0575"
        source = str(sources[i])
        rows.append(
            _casualty(
                f"B{i:03d}", source, None if source == "er" else f"UB-{i}",
                dt.date(2020, 1, 1) + dt.timedelta(days=int(days[i])), kommune,
                float(xs[i]), float(ys[i]), str(sev[i]), str(users[i]),
            )
        )
    return rows


def extra_casualties() -> list[dict]:
    """The adversarial extras."""
    d = dt.date
    return [
        _casualty("X-unplaced-1", "er", None, d(2022, 2, 2), "0561", None, None),
        _casualty("X-unplaced-2", "police", "UX-2", d(2023, 2, 2), None, None, None),
        _casualty("X-nokommune", "er", None, d(2022, 6, 1), None, 505010.0, 6143010.0),
        _casualty("X-2019", "police", "UX-2019", d(2019, 12, 31), "0561", 470010.0, 6145010.0),
        _casualty("X-2025", "police", "UX-2025", d(2025, 1, 10), "0561", 470010.0, 6145010.0),
        _casualty("X-near-two", "police", "UX-N2", d(2021, 9, 9), "0561", *NEAR_TWO),
        # the border cell 100m_61445_4900 (E 490000-490100) holds one casualty of each kommune
        _casualty("X-border-w", "police", "UX-BW", d(2022, 4, 4), "0561", 490020.0, 6144520.0),
        _casualty("X-border-e", "er", None, d(2022, 4, 5), "0575", 490080.0, 6144520.0),
        # Testvej (0575): a straight road from E 500000; 730 m and 1210 m along it
        _casualty("X-road-730", "police", "UX-R1", d(2023, 8, 1), "0575", 500730.0, 6150010.0),
        _casualty("X-road-1210", "er", None, d(2023, 8, 2), "0575", 501210.0, 6149990.0),
        # Gapvej (0575): parts E 510000-510300 and 510500-510900; E 510600 is 400 m along
        _casualty("X-gap-400", "police", "UX-G1", d(2024, 3, 3), "0575", 510600.0, 6150005.0),
        # 45 m off Testvej: beyond the 30 m snap distance
        _casualty("X-offroad", "police", "UX-OFF", d(2024, 3, 4), "0575", 501500.0, 6150045.0),
    ]


def _insert_gazetteer(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(GAZETTEER_DDL)
    for kode, (x0, y0, x1, y1) in BOX.items():
        con.execute(
            "INSERT INTO gazetteer.municipality (kommunekode, navn, geom) VALUES (?, ?, ST_MakeEnvelope(?, ?, ?, ?))",
            [kode, {"0561": "Esbjerg", "0575": "Vejen"}[kode], x0, y0, x1, y1],
        )
    junctions = [
        ("J1", "0561", *J1, ["Storegade", "Jernbanegade"]),
        ("J2", "0561", *J2, ["Kirkevej", "Skolevej"]),
        ("J3", "0561", *J3, ["Kirkevej", "Møllevej"]),
    ]
    # eight quiet junctions in 0561 and three in 0575 make the expected count per junction small
    junctions += [(f"JQ{i}", "0561", 465000.0 + 1000 * i, 6158000.0, ["A", "B"]) for i in range(8)]
    junctions += [(f"JV{i}", "0575", 495000.0 + 1000 * i, 6158000.0, ["C", "D"]) for i in range(3)]
    for jid, kode, x, y, names in junctions:
        con.execute(
            "INSERT INTO gazetteer.junction (junction_id, kommunekode, x, y, vejnavne, vejkoder, n_roads) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [jid, kode, x, y, names, [f"{i:04d}" for i in range(len(names))], len(names)],
        )
    streets = [
        ("0561", "1000", "Storegade", "LINESTRING (479500 6150050, 480500 6150050)"),
        ("0575", "0100", "Testvej", "LINESTRING (500000 6150000, 502000 6150000)"),
        ("0575", "0200", "Gapvej",
         "MULTILINESTRING ((510000 6150000, 510300 6150000), (510500 6150000, 510900 6150000))"),
    ]
    for kode, vejkode, navn, wkt in streets:
        con.execute(
            "INSERT INTO gazetteer.street (kommunekode, vejkode, vejnavn, navn_norm, geom) "
            "VALUES (?, ?, ?, lower(?), ST_GeomFromText(?))",
            [kode, vejkode, navn, navn, wkt],
        )


def make_warehouse(settings: Settings | None = None) -> tuple[duckdb.DuckDBPyConnection, pd.DataFrame]:
    """An in-memory warehouse with the fixture's gazetteer and core.casualty."""
    con = connect(":memory:")
    _insert_gazetteer(con)
    frame = pd.DataFrame(planted_casualties() + background_casualties() + extra_casualties())
    frame = frame[CASUALTY_COLUMNS]
    con.register("fixture_casualty", frame)
    con.execute("INSERT INTO core.casualty BY NAME SELECT * FROM fixture_casualty")
    con.unregister("fixture_casualty")
    return con, frame


@pytest.fixture(scope="module")
def built():
    settings = Settings()
    con, frame = make_warehouse()
    report = build_hotspots(con, settings, as_of=AS_OF)
    yield con, report, frame
    con.close()


WINDOW = (dt.date(2020, 1, 1), dt.date(2024, 12, 31))


# --- Kvadratnet and periods -------------------------------------------------------------

@pytest.mark.parametrize(
    ("x", "y", "size", "expected"),
    [
        (728838, 6166977, 100, "100m_61669_7288"),
        (728838, 6166977, 1000, "1km_6166_728"),
        (576000.0, 6223000.0, 1000, "1km_6223_576"),      # exactly on a corner: that cell
        (575999.99, 6222999.99, 1000, "1km_6222_575"),
        (575560, 6223760, 250, "250m_622375_57550"),
        (575560, 6223760, 10000, "10km_622_57"),
    ],
)
def test_kvadratnet_cell_id(x, y, size, expected):
    assert kvadratnet_cell_id(x, y, size) == expected


def test_cell_label_units():
    assert cell_label(100) == ("100m", 100)
    assert cell_label(1000) == ("1km", 1000)
    assert cell_label(250) == ("250m", 10)


def test_last_full_year_rules():
    assert last_full_year(dt.date(2025, 1, 10), AS_OF) == 2024      # January 2025 is not a year
    assert last_full_year(dt.date(2024, 12, 3), AS_OF) == 2024
    assert last_full_year(dt.date(2025, 12, 20), AS_OF) == 2024      # 2025 has not ended yet
    assert last_full_year(dt.date(2024, 6, 30), dt.date(2030, 1, 1)) == 2023


def test_periods_are_window_and_each_year(built):
    con, report, _ = built
    assert [(p.start, p.end, p.kind) for p in report.periods][:2] == [
        (dt.date(2020, 1, 1), dt.date(2024, 12, 31), "window"),
        (dt.date(2020, 1, 1), dt.date(2020, 12, 31), "year"),
    ]
    assert [p.start.year for p in report.periods if p.kind == "year"] == [2020, 2021, 2022, 2023, 2024]
    assert analysis_periods(con, 3, AS_OF)[0].start == dt.date(2022, 1, 1)


def test_period_accounting(built):
    con, report, frame = built
    row = con.execute(
        "SELECT n_casualties, n_placed, n_unplaced, n_no_kommune, n_on_junction, n_on_road "
        "FROM marts.hotspot_period WHERE period_type = 'window'"
    ).fetchone()
    in_window = frame[(frame.injury_date >= WINDOW[0]) & (frame.injury_date <= WINDOW[1])]
    assert row[0] == len(in_window) == len(frame) - 2                 # 2019 and 2025 are out
    assert row[2] == 2                                                  # the two unplaced
    assert row[3] == 0                                                  # X-nokommune found by boundary
    assert row[1] == row[0] - 2
    # junction: 8 planted + near-two; road: 8 planted on Storegade, 730, 1210, gap-400
    assert row[4] == 9
    assert row[5] == 11
    assert report.n_unplaced == 2 and report.n_outside_window == 2
    assert report.n_casualties == len(frame)


# --- grid --------------------------------------------------------------------------------

def test_grid_planted_cell_counts_and_rank(built):
    con, _, _ = built
    row = con.execute(
        "SELECT kommunekode, n_accidents, n_casualties, n_killed, n_serious, n_slight, n_police, "
        "n_er_only, score, rule_flag, rank_in_kommune, ST_AsText(geom) FROM marts.hotspot_grid "
        "WHERE cell_id = '100m_61500_4800' AND period_type = 'window'"
    ).fetchone()
    assert row[:10] == ("0561", 6, 8, 1, 3, 4, 4, 4, 29.0, True)
    assert row[10] == 1
    assert row[11] == "POLYGON ((480000 6150000, 480000 6150100, 480100 6150100, 480100 6150000, 480000 6150000))"
    # the 1 km cell around it holds the same 8 casualties
    km = con.execute(
        "SELECT n_casualties, gi_z FROM marts.hotspot_grid "
        "WHERE cell_id = '1km_6150_480' AND period_type = 'window'"
    ).fetchone()
    assert km == (8, None)


def test_grid_yearly_rows_add_up(built):
    con, _, _ = built
    years = con.execute(
        "SELECT year(period_start), n_casualties, rule_flag FROM marts.hotspot_grid "
        "WHERE cell_id = '100m_61500_4800' AND period_type = 'year' ORDER BY 1"
    ).fetchall()
    assert years == [(2021, 2, True), (2022, 2, True), (2023, 2, True), (2024, 2, True)]


def test_grid_cell_in_two_kommuner_gives_two_rows(built):
    con, _, _ = built
    rows = con.execute(
        "SELECT kommunekode, n_casualties, n_er_only FROM marts.hotspot_grid "
        "WHERE cell_id = '100m_61445_4900' AND period_type = 'window' ORDER BY kommunekode"
    ).fetchall()
    assert rows == [("0561", 1, 0), ("0575", 1, 1)]


def test_grid_totals_match_placed_casualties(built):
    con, _, _ = built
    per_size = con.execute(
        "SELECT cell_size_m, sum(n_casualties) FROM marts.hotspot_grid "
        "WHERE period_type = 'window' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    n_placed = con.execute(
        "SELECT n_placed FROM marts.hotspot_period WHERE period_type = 'window'"
    ).fetchone()[0]
    assert per_size == [(100, n_placed), (1000, n_placed)]
    # the casualty without kommunekode was given 0575 by the boundary
    assert con.execute(
        "SELECT kommunekode FROM marts.hotspot_grid WHERE cell_id = '100m_61430_5050' AND period_type = 'window'"
    ).fetchall() == [("0575",)]


def test_grid_ranks_are_dense_and_deterministic(built):
    con, _, _ = built
    bad = con.execute(
        """
        SELECT kommunekode, period_start, period_end, cell_size_m, count(*), max(rank_in_kommune),
               count(DISTINCT rank_in_kommune)
        FROM marts.hotspot_grid GROUP BY ALL
        HAVING count(*) <> max(rank_in_kommune) OR count(*) <> count(DISTINCT rank_in_kommune)
        """
    ).fetchall()
    assert bad == []


def test_gi_star_planted_cell_is_hot(built):
    con, report, _ = built
    z, p = con.execute(
        "SELECT gi_z, gi_p FROM marts.hotspot_grid "
        "WHERE cell_id = '100m_61500_4800' AND period_type = 'window'"
    ).fetchone()
    assert z > 1.96
    assert p < 0.05
    # a lone background cell is not a hot spot; yearly rows carry no Gi*
    lone = con.execute(
        "SELECT max(gi_z) FROM marts.hotspot_grid WHERE cell_size_m = 100 AND period_type = 'window' "
        "AND cell_id <> '100m_61500_4800' AND n_accidents = 1"
    ).fetchone()[0]
    assert lone < z
    assert con.execute(
        "SELECT count(*) FROM marts.hotspot_grid WHERE period_type = 'year' AND gi_z IS NOT NULL"
    ).fetchone()[0] == 0
    assert report.gi_cells == con.execute(
        "SELECT count(DISTINCT cell_id) FROM marts.hotspot_grid WHERE cell_size_m = 100 AND period_type = 'window'"
    ).fetchone()[0]


def test_gi_star_matches_esda(built):
    """The vectorised Gi* gives esda.G_Local's z exactly and a permutation p close to it."""
    import warnings

    from esda.getisord import G_Local
    from libpysal.weights import DistanceBand

    con, _, _ = built
    cells = con.execute(
        "SELECT cell_id, min(ST_XMin(geom))::BIGINT AS e0, min(ST_YMin(geom))::BIGINT AS n0, "
        "sum(n_accidents) AS value, any_value(gi_z) AS gi_z, any_value(gi_p) AS gi_p "
        "FROM marts.hotspot_grid WHERE cell_size_m = 100 AND period_type = 'window' "
        "GROUP BY cell_id ORDER BY cell_id"
    ).df()
    corners = pad_with_empty_cells(cells["e0"].to_numpy(), cells["n0"].to_numpy(), 100, 300.0)
    y = np.zeros(len(corners))
    y[: len(cells)] = cells["value"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = DistanceBand.from_array(corners + 50.0, threshold=300.0 + 1e-6, binary=True, silence_warnings=True)
        g = G_Local(y, w, transform="B", star=True, permutations=0)
    np.testing.assert_allclose(cells["gi_z"], g.Zs[: len(cells)], rtol=1e-9)
    planted = cells.index[cells["cell_id"] == "100m_61500_4800"][0]
    assert cells.loc[planted, "gi_p"] == pytest.approx(1 / 200)      # no permutation beat it
    assert (cells["gi_p"] > 0).all() and (cells["gi_p"] <= 0.51).all()  # folded p


def test_pad_with_empty_cells_adds_the_band_only():
    corners = pad_with_empty_cells(np.array([0]), np.array([0]), 100, 100.0)
    assert corners[0].tolist() == [0, 0]
    assert sorted(map(tuple, corners[1:].tolist())) == [(-100, 0), (0, -100), (0, 100), (100, 0)]


# --- junctions ---------------------------------------------------------------------------

def test_planted_junction_is_rank_one(built):
    con, _, _ = built
    row = con.execute(
        "SELECT junction_id, vejnavne, kommunekode, n_accidents, n_casualties, n_killed, n_serious, "
        "n_slight, n_unknown, n_police, n_er_only, n_pedestrian, n_cyclist, n_e_bike, n_moped, n_car, "
        "score, rule_flag, rank_in_kommune, ST_AsText(geom) "
        "FROM marts.hotspot_junction WHERE period_type = 'window' AND kommunekode = '0561' "
        "ORDER BY rank_in_kommune LIMIT 1"
    ).fetchone()
    assert row == (
        "J1", "Storegade / Jernbanegade", "0561", 6, 8, 1, 3, 4, 0, 4, 4, 1, 3, 1, 1, 2,
        29.0, True, 1, "POINT (480050 6150050)",
    )


def test_junction_statistics(built):
    con, _, _ = built
    expected, ratio, p = con.execute(
        "SELECT expected_accidents, obs_exp_ratio, poisson_p FROM marts.hotspot_junction "
        "WHERE junction_id = 'J1' AND period_type = 'window'"
    ).fetchone()
    # 0561 has 11 junctions; J1 has 6 accidents and J2 1 in the window
    assert expected == pytest.approx(7 / 11)
    assert ratio == pytest.approx(6 / (7 / 11))
    assert p == pytest.approx(1 - sum(np.exp(-7 / 11) * (7 / 11) ** k / np.prod(range(1, k + 1)) for k in range(6)))
    assert p < 0.001


def test_casualty_near_two_junctions_counted_once(built):
    con, _, _ = built
    rows = con.execute(
        "SELECT junction_id, n_casualties, rule_flag FROM marts.hotspot_junction "
        "WHERE junction_id IN ('J2', 'J3') AND period_type = 'window'"
    ).fetchall()
    assert rows == [("J2", 1, False)]
    assert con.execute(
        "SELECT sum(n_casualties) FROM marts.hotspot_junction WHERE period_type = 'window'"
    ).fetchone()[0] == 9


# --- road stretches ----------------------------------------------------------------------

def test_segment_windows_on_straight_road(built):
    con, _, _ = built
    rows = con.execute(
        "SELECT window_m, from_m, to_m, vejnavn, n_casualties, n_er_only, round(ST_Length(geom), 6) "
        "FROM marts.hotspot_segment WHERE vejkode = '0100' AND kommunekode = '0575' "
        "AND period_type = 'window' ORDER BY window_m, from_m"
    ).fetchall()
    assert rows == [
        (100, 700, 800, "Testvej", 1, 0, 100.0),
        (100, 1200, 1300, "Testvej", 1, 1, 100.0),
        (500, 500, 1000, "Testvej", 1, 0, 500.0),
        (500, 1000, 1500, "Testvej", 1, 1, 500.0),
    ]
    geom = con.execute(
        "SELECT ST_AsText(geom) FROM marts.hotspot_segment WHERE vejkode = '0100' "
        "AND window_m = 100 AND from_m = 700 AND period_type = 'window'"
    ).fetchone()[0]
    assert geom == "LINESTRING (500700 6150000, 500800 6150000)"


def test_segment_on_road_with_gap(built):
    con, _, _ = built
    rows = con.execute(
        "SELECT window_m, from_m, to_m, round(ST_Length(geom), 6), ST_GeometryType(geom) "
        "FROM marts.hotspot_segment WHERE vejkode = '0200' AND period_type = 'window' ORDER BY window_m"
    ).fetchall()
    # 300 m of the first part + 100 m into the second part = 400 m
    assert rows == [
        (100, 400, 500, 100.0, "LINESTRING"),
        (500, 0, 500, 500.0, "MULTILINESTRING"),
    ]


def test_segment_rule_flag_uses_stretch(built):
    con, _, _ = built
    rows = con.execute(
        "SELECT window_m, from_m, n_accidents, n_accidents_stretch, rule_flag, rank_in_kommune "
        "FROM marts.hotspot_segment WHERE vejkode = '1000' AND period_type = 'window' ORDER BY window_m"
    ).fetchall()
    # the planted casualties lie 530-562 m along Storegade (E 479500 + 1000 m)
    assert rows == [(100, 500, 6, 6, True, 1), (500, 500, 6, 6, True, 1)]
    # the off-road casualty is in no segment
    assert con.execute(
        "SELECT count(*) FROM marts.hotspot_segment WHERE vejkode = '0100' AND from_m = 1500"
    ).fetchone()[0] == 0


# --- casualty points ---------------------------------------------------------------------

def test_casualty_point_columns_and_rows(built):
    con, _, frame = built
    columns = [r[0] for r in con.execute("DESCRIBE marts.casualty_point").fetchall()]
    assert columns == [
        "casualty_id", "injury_date", "injury_hour", "road_user", "counterpart", "severity",
        "age_band", "sex", "source", "kommunekode", "x", "y", "geom",
    ]
    forbidden = ("cpr", "pseudonym", "birth", "kontakt", "fritekst", "ulykkessted", "age", "navn")
    assert not [c for c in columns if any(f in c for f in forbidden) and c != "age_band"]
    assert con.execute("SELECT count(*) FROM marts.casualty_point").fetchone()[0] == len(frame)
    assert con.execute(
        "SELECT count(*) FROM marts.casualty_point WHERE geom IS NULL"
    ).fetchone()[0] == 2


def test_rebuild_is_idempotent(built):
    con, report, _ = built
    before = con.execute(
        "SELECT cell_id, kommunekode, period_start, n_casualties, gi_z FROM marts.hotspot_grid ORDER BY ALL"
    ).fetchall()
    again = build_hotspots(con, Settings(), as_of=AS_OF)
    after = con.execute(
        "SELECT cell_id, kommunekode, period_start, n_casualties, gi_z FROM marts.hotspot_grid ORDER BY ALL"
    ).fetchall()
    assert before == after
    assert again.rows == report.rows


def test_empty_core_gives_empty_marts():
    con = connect(":memory:")
    con.execute(GAZETTEER_DDL)
    report = build_hotspots(con, Settings(), as_of=AS_OF)
    assert report.periods == []
    assert report.rows["hotspot_grid"] == 0 and report.rows["casualty_point"] == 0


def test_street_only_placements_do_not_make_junction_or_segment_hotspots():
    """Street-only geocodes (quality C, point uncertain by hundreds of metres) stacked on
    one junction are no evidence about it: they stay out of the junction, segment and
    100 m layers, and count only in the 1 km grid (uncertainty at most half a cell)."""

    def totals(con) -> dict:
        w = "WHERE period_type = 'window'"
        return {
            "junction": con.execute(f"SELECT sum(n_casualties) FROM marts.hotspot_junction {w}").fetchone()[0],
            "segment": con.execute(f"SELECT sum(n_casualties) FROM marts.hotspot_segment {w}").fetchone()[0],
            "grid100": con.execute(
                f"SELECT sum(n_casualties) FROM marts.hotspot_grid {w} AND cell_size_m = 100").fetchone()[0],
            "grid1000": con.execute(
                f"SELECT sum(n_casualties) FROM marts.hotspot_grid {w} AND cell_size_m = 1000").fetchone()[0],
        }

    con, _ = make_warehouse()
    build_hotspots(con, Settings(), as_of=AS_OF)
    before = totals(con)
    frame = pd.DataFrame([
        _casualty(f"E-street{i}", "er", None, dt.date(2022, 3, 1 + i), "0561", J2[0] + 1, J2[1] + 1)
        for i in range(9)
    ])
    frame["geocode_quality"] = "C"
    frame["geocode_uncertainty_m"] = 400.0
    con.register("street_only", frame)
    con.execute("INSERT INTO core.casualty BY NAME SELECT * FROM street_only")
    build_hotspots(con, Settings(), as_of=AS_OF)
    after = totals(con)
    assert after == {**before, "grid1000": before["grid1000"] + 9}
    # Precise placements at the same spot do make J2 a hotspot.
    con.execute("UPDATE core.casualty SET geocode_uncertainty_m = 5 WHERE casualty_id LIKE 'E-street%'")
    build_hotspots(con, Settings(), as_of=AS_OF)
    n, flag = con.execute(
        "SELECT n_casualties, rule_flag FROM marts.hotspot_junction "
        "WHERE junction_id = 'J2' AND period_type = 'window'"
    ).fetchone()
    assert n >= 9 and flag


# --- observed versus expected (empirical Bayes) -------------------------------------------

from scipy.stats import nbinom  # noqa: E402

from skadestue.hotspots.expected import (  # noqa: E402
    MIN_SITES, benjamini_hochberg, dispersion_k, eb_columns, fit_groups, gi_fdr, pool_small_groups,
)


def test_benjamini_hochberg_by_hand():
    q = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.5]))
    np.testing.assert_allclose(q, [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    # 8 hypotheses of which the other 4 had p = 1: every q doubles (capped at 1)
    np.testing.assert_allclose(benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.5]), 8), [0.08, 0.32 / 3, 0.32 / 3, 1.0])


def test_gi_fdr_flags_only_clear_hot_cells():
    z = np.array([5.0, 3.5, 2.9, -4.0, np.nan] + [0.0] * 95)   # 2.9: p = 0.0019, q = 0.062
    q, hot = gi_fdr(z)
    assert hot.tolist()[:5] == [True, True, False, False, False]
    assert np.isnan(q[4]) and q[3] > 0.9


def test_fit_groups_recovers_class_times_area_rates():
    rate = {"A": 2.0, "B": 0.5}
    factor = {"x": 1.0, "y": 3.0}
    rows = [(c, a, n) for c in rate for a, n in zip(factor, (40, 25))]
    groups = pd.DataFrame(rows, columns=["road_class", "area", "n_sites"])
    groups["n_accidents"] = [n * rate[c] * factor[a] for c, a, n in rows]
    np.testing.assert_allclose(fit_groups(groups), [rate[c] * factor[a] for c, a, _ in rows], rtol=1e-8)


def test_dispersion_k_method_of_moments():
    rng = np.random.default_rng(3)
    mu, k, n = 4.0, 2.0, 40000
    x = nbinom.rvs(k, k / (k + mu), size=n, random_state=rng)
    groups = pd.DataFrame({"n_sites": [n], "n_sites_e2": [n]})
    sites = pd.DataFrame({"mu": mu, "x": x[x > 0]})
    assert dispersion_k(groups, np.array([mu]), sites) == pytest.approx(k, rel=0.1)
    # Poisson counts: no over-dispersion
    x = rng.poisson(mu, n)
    assert dispersion_k(groups, np.array([mu]), pd.DataFrame({"mu": mu, "x": x[x > 0]})) > 50


def test_eb_columns_by_hand():
    sites = pd.DataFrame({"mu": [4.0, 4.0], "x": [10, 4], "score": [30.0, 4.0]})
    out = eb_columns(sites, 2.0, n_hypotheses=2, rule_min=4)
    # w = k / (k + mu) = 1/3: eb = 4/3 + 2/3 * 10 = 8
    assert out.loc[0, "eb_accidents"] == pytest.approx(8.0)
    assert out.loc[0, "excess_accidents"] == pytest.approx(4.0)
    assert out.loc[0, "excess_score"] == pytest.approx(4.0 * 30 / 10)
    assert out.loc[0, "excess_p"] == pytest.approx(nbinom.sf(9, 2.0, 2 / 6))
    assert out.loc[1, "excess_accidents"] == pytest.approx(0.0)
    assert out.loc[0, "obs_exp_ratio"] == pytest.approx(2.5)


def test_pool_small_groups_widens_then_joins_the_nearest():
    n_big, n_small = MIN_SITES, MIN_SITES // 2
    keys = pd.DataFrame({"major": [6] * n_big + [3] * n_small + [3] * n_small + [4] * 3,
                         "legs": [4] * n_big + [4] * n_small + [3] * n_small + [4] * 3})
    fine = keys["major"].astype(str) + "/" + keys["legs"].astype(str)
    coarse = keys["major"].astype(str)
    out = pool_small_groups(keys, [fine, coarse], pd.Series(1.0, index=keys.index))
    assert out[:n_big].eq("6/4").all()
    assert out[n_big:n_big + 2 * n_small].eq("3").all()        # 3/4 and 3/3 together make a group
    assert out[n_big + 2 * n_small:].eq("3").all()             # 4/4 (3 sites) joins the nearest: 3


def _eb_warehouse() -> duckdb.DuckDBPyConnection:
    """30 junctions of two distributor roads, each with 8-12 accidents over 2020-2024, and 30
    residential junctions with 0-2; residential R7 has 7 injured cyclists, busy B0 has 14."""
    con = connect(":memory:")
    con.execute(GAZETTEER_DDL)
    con.execute("INSERT INTO gazetteer.municipality VALUES ('0561', 'Esbjerg', ST_MakeEnvelope(460000, 6140000, 490000, 6160000))")
    junctions, segments, casualties = [], [], []
    d = dt.date
    for i in range(60):
        busy = i < 30
        jid = f"B{i}" if busy else f"R{i - 30}"
        x, y = 461000.0 + 400 * (i % 30), 6141000.0 + (0 if busy else 5000)
        klasse = "Trafikvej-Fordeling" if busy else "Lokalvej-Tertiær"
        junctions.append((jid, x, y))
        for k, (dx, dy) in enumerate([(-100, 0), (100, 0), (0, -100), (0, 100)]):
            road = "H" if dy == 0 else "V"
            segments.append((f"{jid}-{k}", f"{road}{jid}", klasse, f"LINESTRING ({x} {y}, {x + dx} {y + dy})"))
        n = [8, 9, 10, 11, 12][i % 5] if busy else [0, 1, 2][i % 3]
        n = {"B0": 14, "R7": 7}.get(jid, n)
        for k in range(n):
            road_user = "cyclist" if jid == "R7" else "car"
            casualties.append(_casualty(f"{jid}-c{k}", "police", f"U{jid}-{k}", d(2020 + k % 5, 12, 1 + k),
                                        "0561", x + 3, y - 2, "serious" if jid == "R7" else "slight", road_user))
    for jid, x, y in junctions:
        con.execute("INSERT INTO gazetteer.junction (junction_id, kommunekode, x, y, vejnavne, vejkoder, n_roads) "
                    "VALUES (?, '0561', ?, ?, ['A', 'B'], ['0001', '0002'], 2)",
                    [jid, x, y])
    for sid, vejkode, klasse, wkt in segments:
        con.execute("INSERT INTO gazetteer.road_segment (segment_id, kommunekode, vejkode, vejnavn, vejklasse, "
                    "startknude, slutknude, length_m, geom) VALUES (?, '0561', ?, NULL, ?, NULL, NULL, 100, "
                    "ST_GeomFromText(?))", [sid, vejkode, klasse, wkt])
    frame = pd.DataFrame(casualties)[CASUALTY_COLUMNS]
    con.register("eb_casualty", frame)
    con.execute("INSERT INTO core.casualty BY NAME SELECT * FROM eb_casualty")
    con.unregister("eb_casualty")
    return con


def test_busy_junction_does_not_hide_a_small_one_with_many_cyclists():
    con = _eb_warehouse()
    build_hotspots(con, Settings(), as_of=AS_OF)
    rows = con.execute(
        "SELECT junction_id, road_class, n_accidents, score, expected_accidents, excess_accidents, excess_p, "
        "excess_flag, rank_in_kommune FROM marts.hotspot_junction WHERE period_type = 'window' ORDER BY junction_id"
    ).df().set_index("junction_id")
    assert rows.loc["B0", "road_class"] == "Trafikvej-Fordeling / Trafikvej-Fordeling / 4+"
    assert rows.loc["R7", "road_class"] == "Lokalvej-Tertiær / Lokalvej-Tertiær / 4+"
    # comparable sites: the busy class averages 10.2 accidents (B0 counts 14), the quiet one 1.2
    assert rows.loc["B0", "expected_accidents"] == pytest.approx((6 * 50 - 8 + 14) / 30)
    assert rows.loc["R7", "expected_accidents"] == pytest.approx((10 * 3 - 1 + 7) / 30)
    # by score the busy junction leads (14 slight vs 7 serious = 35); by excess the small one does
    assert rows.loc["B0", "n_accidents"] > rows.loc["R7", "n_accidents"]
    assert rows.loc["R7", "rank_in_kommune"] == 1 and bool(rows.loc["R7", "excess_flag"])
    assert not bool(rows.loc["B0", "excess_flag"])
    assert rows.loc["R7", "excess_p"] < 1e-3 < 0.05 < rows.loc["B0", "excess_p"]
    # the counts vary less than Poisson within each class: no over-dispersion, so EB puts all
    # weight on the class mean (excess 0) and the test of significance decides
    assert rows["excess_accidents"].abs().max() < 1e-9
    assert not rows.drop(index="R7")["excess_flag"].any()
    model = con.execute(
        "SELECT road_class, n_sites, n_accidents FROM marts.hotspot_expected_model "
        "WHERE layer = 'hotspot_junction' AND period_start = DATE '2020-01-01' AND period_end = DATE '2024-12-31' "
        "ORDER BY road_class"
    ).fetchall()
    assert model == [("Lokalvej-Tertiær / Lokalvej-Tertiær / 4+", 30.0, 36),
                     ("Trafikvej-Fordeling / Trafikvej-Fordeling / 4+", 30.0, 306)]
    con.close()
