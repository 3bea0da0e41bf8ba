"""The synthetic demo generator: deterministic, realistic volumes, the input contract, a truth
that matches the delivered rows, planted hotspots that stand out, and no personal data leaks.

Small runs only (scale 0.1, two years); synthetic people only.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.spatial import cKDTree

from skadestue.config import REGION_KOMMUNER
from skadestue.demo import generate_demo
from skadestue.demo.people import is_mod11, synthetic_name_regex
from skadestue.demo.towns import HOTSPOTS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DAGI = SHARED / "boundaries" / "dagi_kommuner.geojson"
YEARS = (2023, 2024)
ER_CONTRACT = {"kontakt_id", "sygehus", "ankomst", "ulykke_tid", "cpr", "koen", "alder", "transportmiddel",
               "modpart", "ulykkessted", "kommune", "diagnose", "bidiagnoser", "afslutning", "fritekst"}
UHELD_CONTRACT = ["UHELDS_ID", "UHELDSDATO", "KLOKKESLAET", "UHELDSART", "KODE_UHELDSSITUATION", "UHELDKOMMUNE",
                  "VEJNAVN", "HUSNR", "KRYDSENDE_VEJ", "VEJKODE", "KM", "X_KOORDINAT", "Y_KOORDINAT",
                  "ANTAL_DRAEBTE", "ANTAL_ALV_TILSKADEKOMNE", "ANTAL_LET_TILSKADEKOMNE", "SPRIT", "LYS",
                  "VEJRFORHOLD", "UHELDSTEKST"]
PERSON_CONTRACT = ["UHELDS_ID", "ELEMENTNR", "PERSONNR", "TRANSPORTMIDDEL", "PERSONART", "SKADESGRAD", "ALDER",
                   "KOEN", "CPR"]
CPR_LIKE = re.compile(r"(?<!\d)\d{6}-?\d{4}(?!\d)")


def _read_er(path: Path) -> pd.DataFrame:
    """An ER file as the contract allows it: UTF-8 (BOM or not) or cp1252, ';' or ','."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    sep = ";" if text.splitlines()[0].count(";") > text.splitlines()[0].count(",") else ","
    return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)


def _read_police(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """Scale 0.1, 2023-2024, real DAGI boundaries."""
    if not DAGI.exists():
        pytest.fail(f"shared test data missing: {DAGI}")
    return generate_demo(tmp_path_factory.mktemp("real"), scale=0.1, years=YEARS, seed=5,
                         municipalities_geojson=DAGI)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """Two runs with the same seed and one with another (synthetic boundaries)."""
    a = generate_demo(tmp_path_factory.mktemp("a"), scale=0.1, years=YEARS, seed=11)
    b = generate_demo(tmp_path_factory.mktemp("b"), scale=0.1, years=YEARS, seed=11)
    c = generate_demo(tmp_path_factory.mktemp("c"), scale=0.1, years=YEARS, seed=12)
    return a, b, c


@pytest.fixture(scope="module")
def er_rows(real) -> pd.DataFrame:
    """Every row of every ER file (without the duplicate copy), with file name and line."""
    frames = []
    for path in sorted(real.er_dir.glob("*.csv")):
        if path.name.endswith("_kopi.csv"):
            continue
        df = _read_er(path)
        df["file_name"] = f"skadestue/{path.name}"
        df["line_no"] = np.arange(len(df)) + 2
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def truth(real) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(real.truth_dir / f"{name}.parquet")
            for name in ("events", "er_truth", "police_truth", "police_accidents", "hotspots")}


@pytest.fixture(scope="module")
def police(real) -> tuple[pd.DataFrame, pd.DataFrame]:
    uheld = pd.concat([_read_police(p) for p in sorted(real.police_dir.glob("uheld_*.csv"))], ignore_index=True)
    personer = pd.concat([_read_police(p) for p in sorted(real.police_dir.glob("personer_*.csv"))], ignore_index=True)
    return uheld, personer


# --- determinism ---------------------------------------------------------------------------

def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(synth):
    a, b, c = synth
    files_a = sorted(p.relative_to(a.out_dir) for p in a.out_dir.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b.out_dir) for p in b.out_dir.rglob("*") if p.is_file())
    assert files_a == files_b
    assert len(files_a) == 5 + 6 + 4 + 2 * 5 + 2 + 1  # geodata, truth, police, ER per year, fix + copy, plan
    for rel in files_a:
        assert (a.out_dir / rel).read_bytes() == (b.out_dir / rel).read_bytes(), rel
    assert a.counts == b.counts
    differs = [rel for rel in files_a if (c.out_dir / rel).exists()
               and (a.out_dir / rel).read_bytes() != (c.out_dir / rel).read_bytes()]
    assert Path("inbox/skadestue/svs_esbjerg_2024.csv") in differs
    assert Path("geodata/adgangsadresser.csv") in differs


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="scale"):
        generate_demo(tmp_path, scale=0)
    with pytest.raises(ValueError, match="years"):
        generate_demo(tmp_path, years=(2024, 2020))


# --- volumes and shares --------------------------------------------------------------------

def test_volumes_are_within_the_expected_bands(real, er_rows, police, truth):
    uheld, personer = police
    n_years = YEARS[1] - YEARS[0] + 1
    # ~3,800 ER contacts a year at scale 1 (+ the planted hotspots, which keep their scale-1 rate).
    assert 0.1 * 3800 * n_years * 0.85 < len(er_rows) < 0.1 * 3800 * n_years * 1.3
    assert real.counts["er_rows"] == len(er_rows) - real.counts["corrected_er_rows"]
    injury = uheld[uheld["UHELDSART"].isin(["Personskadeuheld", "Dødsuheld"])]
    assert 0.1 * 700 * n_years * 0.75 < len(injury) < 0.1 * 700 * n_years * 1.5
    assert {"Materielskadeuheld", "Ekstrauheld"} <= set(uheld["UHELDSART"])
    injured = personer[personer["SKADESGRAD"].isin(["D", "A", "L"])]
    assert 1.1 < len(injured) / len(injury) < 1.5
    assert (personer["SKADESGRAD"] == "U").sum() > 0.3 * len(injury)  # uninjured drivers
    # ~4 % without CPR (tourists), ~1 % malformed.
    blank = (er_rows["cpr"] == "").mean()
    assert 0.015 < blank < 0.09
    contacts = truth["er_truth"]
    kinds = contacts["contact_type"].value_counts(normalize=True)
    assert 0.04 < kinds["return"] < 0.11 and 0.005 < kinds["transfer"] < 0.06


def test_police_see_a_quarter_of_er_casualties_and_fewer_cyclists(truth):
    ev = truth["events"]
    er = ev[ev["in_er"]]
    share = er["police"].mean()
    assert 0.17 < share < 0.35
    by_user = er.groupby("road_user")["police"].mean()
    assert by_user["cyclist"] < share < by_user["car"]
    assert by_user["cyclist"] < 0.2 and by_user["car"] > 0.3
    by_sev = er.groupby("severity")["police"].mean()
    assert by_sev["serious"] > by_sev["slight"]
    # Some police casualties never reach an ER; the police see almost every death.
    police_cas = ev[ev["police"]]
    assert 0.04 < (~police_cas["in_er"]).mean() < 0.2
    killed = ev[ev["severity"] == "killed"]
    if len(killed) >= 3:
        assert killed["police"].mean() > 0.6


# --- hotspots -------------------------------------------------------------------------------

def _junction_nodes(roads: Path) -> pd.DataFrame:
    """Junctions from the published road file: end nodes shared by two different street names."""
    doc = json.loads(roads.read_text(encoding="utf-8"))
    rows = []
    for f in doc["features"]:
        c, p = f["geometry"]["coordinates"], f["properties"]
        rows.append((p["STARTKNUDE"], c[0][0], c[0][1], p["VEJNAVN"]))
        rows.append((p["SLUTKNUDE"], c[-1][0], c[-1][1], p["VEJNAVN"]))
    ends = pd.DataFrame(rows, columns=["node", "x", "y", "name"])
    grp = ends.groupby("node").agg(x=("x", "first"), y=("y", "first"), names=("name", "nunique"))
    return grp[grp["names"] >= 2]


def test_planted_hotspots_have_many_more_events_than_other_junctions(real, truth):
    hot = truth["hotspots"]
    assert set(hot["name"]) == {h.name for h in HOTSPOTS}
    assert set(hot["kind"]) == {"junction", "stretch"}
    ev = truth["events"]
    junctions = _junction_nodes(real.roads_geojson)
    tree = cKDTree(ev[["x", "y"]].to_numpy())
    away = np.ones(len(junctions), dtype=bool)
    for h in hot.itertuples():  # junctions of and next to the planted spots do not count as typical
        away &= np.hypot(junctions["x"] - h.x, junctions["y"] - h.y).to_numpy() > 600
    near = np.array([len(i) for i in tree.query_ball_point(junctions.loc[away, ["x", "y"]].to_numpy(), 50.0)])
    typical = np.quantile(near, 0.99)
    assert np.median(near) <= 1
    for h in hot.itertuples():
        assert h.n_events == (ev["hotspot"] == h.name).sum()
        assert h.kommunekode in REGION_KOMMUNER
        if h.kind == "junction":
            count = len(tree.query_ball_point([h.x, h.y], 50.0))
            assert count >= h.n_events * 0.9, h.name
            assert count >= 6 and count >= 2 * typical, (h.name, count, typical)
            # The planted spot is a real junction of the published road network.
            d = np.hypot(junctions["x"] - h.x, junctions["y"] - h.y).min()
            assert d < 1.0, h.name
        else:
            line = shapely.from_wkt(h.wkt)
            assert 400 < line.length < 500
            on = shapely.distance(line, shapely.points(ev[["x", "y"]].to_numpy())) < 15
            assert on.sum() >= h.n_events >= 6


# --- geography ------------------------------------------------------------------------------

def test_every_address_and_street_lies_inside_its_real_municipality(real):
    kom = gpd.read_file(DAGI)
    kom = kom[kom["KOMKODE"].isin(REGION_KOMMUNER)].to_crs(25832)
    kom["geometry"] = shapely.make_valid(shapely.force_2d(kom.geometry.values))
    polys = kom.dissolve("KOMKODE").geometry
    addr = pd.read_csv(real.addresses_csv, dtype=str, keep_default_na=False)
    x, y = addr["etrs89_oest"].astype(float).to_numpy(), addr["etrs89_nord"].astype(float).to_numpy()
    assert set(addr["kommunekode"]) == set(REGION_KOMMUNER)
    for code, poly in polys.items():
        m = (addr["kommunekode"] == code).to_numpy()
        assert m.sum() > 100, code
        assert shapely.contains_xy(poly, x[m], y[m]).all(), code
    roads = gpd.read_file(real.roads_geojson)
    assert roads.crs.to_epsg() == 25832
    mid = shapely.line_interpolate_point(roads.geometry.values, 0.5, normalized=True)
    for code, poly in polys.items():
        m = (roads["KOMMUNEKODE"] == code).to_numpy()
        assert shapely.contains(poly.buffer(1.0), mid[m]).all(), code
    # The published boundaries are the eight DAGI kommuner, copied as they were (CRS84).
    out = json.loads(real.municipalities_geojson.read_text(encoding="utf-8"))
    assert "CRS84" in out["crs"]["properties"]["name"]
    assert {f["properties"]["KOMKODE"] for f in out["features"]} == set(REGION_KOMMUNER)


def test_gazetteer_is_shaped_like_dawa_and_geodanmark(real):
    addr = pd.read_csv(real.addresses_csv, dtype=str, keep_default_na=False)
    assert list(addr.columns) == ["id", "kommunekode", "vejkode", "vejnavn", "husnr", "postnr", "postnrnavn",
                                  "supplerendebynavn", "etrs89_oest", "etrs89_nord"]
    assert addr["id"].is_unique
    assert addr["vejkode"].str.fullmatch(r"\d{4}").all()
    assert addr["husnr"].str.fullmatch(r"[1-9]\d*[A-Z]?").all()
    assert addr["husnr"].str.contains("[AB]$").mean() > 0.01
    assert not addr.duplicated(["kommunekode", "vejkode", "husnr"]).any()
    # Storegade exists in several towns and municipalities; Fanø addresses carry Nordby/Sønderho.
    store = addr[addr["vejnavn"] == "Storegade"]
    assert store["kommunekode"].nunique() >= 3 and store["postnr"].nunique() >= 3
    assert {"6700", "6760", "6100", "6500", "6400", "6300", "6270", "6780", "6800", "6840", "6600", "6630",
            "6200", "6230", "6720"} <= set(addr["postnr"])
    assert {"Nordby", "Sønderho"} <= set(addr.loc[addr["postnr"] == "6720", "supplerendebynavn"])
    # One vejkode per street within a kommune; a named road keeps its vejkode across blocks.
    roads = json.loads(real.roads_geojson.read_text(encoding="utf-8"))["features"]
    props = pd.DataFrame([f["properties"] for f in roads])
    assert {"KOMMUNEKODE", "VEJKODE", "VEJKLASSE", "VEJNAVN", "STARTKNUDE", "SLUTKNUDE"} <= set(props.columns)
    assert props.groupby(["KOMMUNEKODE", "VEJKODE"])["VEJNAVN"].nunique().max() == 1
    assert {"Rute 11", "Ribevej", "Haderslevvej", "Ringvejen"} <= set(props["VEJNAVN"])
    node_use = pd.concat([props["STARTKNUDE"], props["SLUTKNUDE"]]).value_counts()
    assert (node_use >= 3).sum() > 300  # blocks meet at shared junction nodes
    # The addresses' streets exist in the road file.
    assert set(zip(addr["kommunekode"], addr["vejkode"])) <= set(zip(props["KOMMUNEKODE"], props["VEJKODE"]))
    places = pd.read_csv(real.places_csv, dtype=str)
    assert (places["name"] == "Bilka").sum() == 2
    post = json.loads(real.postcodes_geojson.read_text(encoding="utf-8"))
    assert {"6700", "6720", "6400"} <= {f["properties"]["POSTNR_TXT"] for f in post["features"]}


# --- the input contract ---------------------------------------------------------------------

def test_er_files_follow_the_contract_in_each_hospitals_dialect(real):
    files = {p.name: p for p in real.er_dir.glob("*.csv")}
    hospitals = {"svs_esbjerg", "shs_aabenraa", "shs_soenderborg", "slb_kolding", "ouh_odense"}
    assert {n.rsplit("_", 1)[0] for n in files if re.fullmatch(r"[a-z_]+_\d{4}\.csv", n)} == hospitals
    for name, path in files.items():
        df = _read_er(path)
        extra = set(df.columns) - ER_CONTRACT
        assert ER_CONTRACT <= set(df.columns), name
        assert extra == ({"afdeling"} if name.startswith("slb_") else set()), name
    aab = files["shs_aabenraa_2024.csv"].read_bytes()
    with pytest.raises(UnicodeDecodeError):
        aab.decode("utf-8")
    text = aab.decode("cp1252")
    assert "ø" in text or "æ" in text or "å" in text
    assert text.splitlines()[0].count(";") == 14 and b"\r\n" in aab
    assert re.search(r"\n[^;]*;[^;]*;\d{2}-\d{2}-\d{4} \d{2}:\d{2};", text.replace("\r", ""))
    assert files["shs_soenderborg_2023.csv"].read_bytes().startswith(b"\xef\xbb\xbf")
    assert re.search(r"\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}", files["shs_soenderborg_2023.csv"].read_text("utf-8-sig"))
    svs = _read_er(files["svs_esbjerg_2023.csv"])
    good = svs["ankomst"].str.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")
    assert good.mean() > 0.98
    bare = svs["ulykke_tid"].str.fullmatch(r"\d{2}:\d{2}").mean()
    assert 0.2 < bare < 0.5 and 0.2 < (svs["ulykke_tid"] == "").mean() < 0.5
    assert list(_read_er(files["ouh_odense_2024.csv"]).columns)[0] == "sygehus"


def test_ward_texts_and_codes_are_as_messy_as_real_ones(er_rows):
    mode = er_rows["transportmiddel"].str.strip().str.lower()
    assert {"1", "2", "5", "cykel", "el-cykel", "bil"} <= set(mode)
    assert {"fodgænger", "til fods"} & (set(mode) | set(er_rows["modpart"].str.lower()))
    assert {"0"} <= set(er_rows["modpart"]) and (er_rows["modpart"] == "fast genstand").any()
    sted = er_rows["ulykkessted"]
    assert 0.06 < (sted == "").mean() < 0.25
    for pattern in (r"^krydset .+/.+", r" og ", r"^hjørnet af ", r"^rundkørslen ", r"^ud for nr\. \d+",
                    r"^cykelstien langs ", r" ved ", r"^p-pladsen ved ", r"\d{4} \w+", r"g\. \d+"):
        assert sted.str.contains(pattern, regex=True).any(), pattern
    assert sted.str.contains("aa|oe|ae").any() and sted.str.contains("[a-zæøå]+gade \\d", regex=True).any()
    kommune = er_rows["kommune"].str.strip()
    assert 0.45 < (kommune != "").mean() < 0.75
    assert {"Esbjerg", "561", "0561"} <= set(kommune)
    assert er_rows["diagnose"].str.fullmatch(r"(D[STZ]\d{3,4})?").all()
    endings = set(er_rows["afslutning"].str.strip())
    assert {"hjem", "indlagt", "overflyttet"} <= endings <= {"hjem", "indlagt", "overflyttet", "død"}


def test_police_files_follow_the_contract_and_agree_with_their_persons(real, police, truth):
    for path in real.police_dir.glob("uheld_*.csv"):
        assert list(_read_police(path).columns) == UHELD_CONTRACT
    for path in real.police_dir.glob("personer_*.csv"):
        assert list(_read_police(path).columns) == PERSON_CONTRACT
    uheld, personer = police
    assert uheld["UHELDS_ID"].is_unique and set(personer["UHELDS_ID"]) <= set(uheld["UHELDS_ID"])
    counts = personer.groupby("UHELDS_ID")["SKADESGRAD"].value_counts().unstack(fill_value=0)
    counts = counts.reindex(columns=["D", "A", "L"], fill_value=0).reindex(uheld["UHELDS_ID"], fill_value=0)
    assert (uheld["ANTAL_DRAEBTE"].astype(int).to_numpy() == counts["D"].to_numpy()).all()
    assert (uheld["ANTAL_ALV_TILSKADEKOMNE"].astype(int).to_numpy() == counts["A"].to_numpy()).all()
    assert (uheld["ANTAL_LET_TILSKADEKOMNE"].astype(int).to_numpy() == counts["L"].to_numpy()).all()
    assert ((uheld["UHELDSART"] == "Dødsuheld") == (uheld["ANTAL_DRAEBTE"].astype(int) > 0)).all()
    assert set(uheld["UHELDKOMMUNE"].str.zfill(4)) <= set(REGION_KOMMUNER)
    assert {3, 4} == set(uheld["UHELDKOMMUNE"].str.len())
    assert uheld["KODE_UHELDSSITUATION"].str.fullmatch(r"\d{3}").all()
    assert uheld["UHELDSDATO"].str.fullmatch(r"\d{2}-\d{2}-\d{4}|\d{4}-\d{2}-\d{2}").all()
    # ~90 % placed with X/Y 5-20 m from the truth; the others by road name and number/crossing.
    acc = truth["police_accidents"].set_index("uheld_id").loc[uheld["UHELDS_ID"]]
    placed = (uheld["X_KOORDINAT"] != "").to_numpy()
    assert 0.82 < placed.mean() < 0.96
    assert (acc["has_xy"].to_numpy() == placed).all()
    x = uheld["X_KOORDINAT"].replace("", "nan").astype(float).to_numpy()
    y = uheld["Y_KOORDINAT"].replace("", "nan").astype(float).to_numpy()
    swapped = acc["xy_swapped"].to_numpy()
    assert swapped.sum() >= 2 and (x[swapped] > 6_000_000).all()
    ok = placed & ~swapped
    d = np.hypot(x[ok] - acc["x"].to_numpy()[ok], y[ok] - acc["y"].to_numpy()[ok])
    assert d.min() >= 4.9 and d.max() <= 20.1
    unplaced = uheld[~placed]
    assert (unplaced["VEJNAVN"] != "").all()
    assert ((unplaced["HUSNR"] != "") | (unplaced["KRYDSENDE_VEJ"] != "") | (unplaced["KM"] != "")).all()
    assert (unplaced["KRYDSENDE_VEJ"] != "").any() and (unplaced["HUSNR"] != "").any()
    # CPR recorded for ~85 % of the persons.
    assert 0.75 < (personer["CPR"] != "").mean() < 0.92


# --- planted problems -----------------------------------------------------------------------

def test_bad_rows_correction_and_duplicate_are_planted(real, er_rows, truth):
    et = truth["er_truth"]
    bad = et[et["is_bad_row"]]
    assert set(bad["bad_reason"]) == {"impossible_date", "age_140", "unknown_transport_code", "blank_kontakt_id"}
    assert len(bad) <= max(4, 0.006 * len(et))
    rows = er_rows.set_index(["file_name", "line_no"])
    for b in bad.itertuples():
        row = rows.loc[(b.file_name, b.line_no)]
        if b.bad_reason == "impossible_date":
            assert re.search(r"31[-.]02[-.]\d{4}|\d{4}-02-31", row["ankomst"]), row["ankomst"]
        elif b.bad_reason == "age_140":
            assert row["alder"] == "140" and row["cpr"] == ""
        elif b.bad_reason == "unknown_transport_code":
            assert row["transportmiddel"] == "14"
        else:
            assert row["kontakt_id"] == ""
    # The correction re-delivers ~20 rows with another diagnosis, everything else unchanged.
    fix_path = next(real.er_dir.glob("*_rettelse.csv"))
    fix = _read_er(fix_path)
    assert 10 <= len(fix) <= 20
    orig = er_rows[er_rows["file_name"] != f"skadestue/{fix_path.name}"].set_index(["sygehus", "kontakt_id"])
    before = orig.loc[list(zip(fix["sygehus"], fix["kontakt_id"]))]
    assert (before["diagnose"].to_numpy() != fix["diagnose"].to_numpy()).all()
    same = [c for c in ER_CONTRACT if c not in ("diagnose", "sygehus", "kontakt_id")]
    assert (before[same].to_numpy() == fix[same].to_numpy()).all()
    corrected = et[et["corrected"]].set_index("kontakt_id").loc[fix["kontakt_id"]]
    assert (corrected["diagnose"].to_numpy() == fix["diagnose"].to_numpy()).all()
    # An exact copy of one delivery under another name.
    copies = list(real.er_dir.glob("*_kopi.csv"))
    assert len(copies) == 1
    original = copies[0].with_name(copies[0].name.replace("_kopi", ""))
    assert copies[0].read_bytes() == original.read_bytes()


# --- truth ----------------------------------------------------------------------------------

def test_truth_points_at_the_delivered_rows(er_rows, truth, police):
    et = truth["er_truth"]
    assert len(et) == len(er_rows) - et["corrected"].sum()  # the correction file repeats rows
    rows = er_rows.set_index(["file_name", "line_no"]).loc[list(zip(et["file_name"], et["line_no"]))]
    assert (rows["sygehus"].to_numpy() == et["sygehus"].to_numpy()).all()
    ok = ~et["is_bad_row"].to_numpy()
    assert (rows["kontakt_id"].to_numpy()[ok] == et["kontakt_id"].to_numpy()[ok]).all()
    # Transfers: same event, another hospital, the first contact ended 'overflyttet'.
    tr = et[et["contact_type"] == "transfer"]
    first = et[et["contact_type"] == "primary"].set_index("event_id").loc[tr["event_id"]]
    assert (first["sygehus"].to_numpy() != tr["sygehus"].to_numpy()).all()
    assert (first["afslutning"] == "overflyttet").all()
    rv = et[et["contact_type"] == "return"]
    first = et[et["contact_type"] == "primary"].set_index("event_id").loc[rv["event_id"]]
    assert (first["sygehus"].to_numpy() == rv["sygehus"].to_numpy()).all()
    assert et.groupby("event_id")["contact_type"].apply(lambda s: (s == "primary").sum()).eq(1).all()
    # ER contacts of police-registered events point at a police person row of that event.
    uheld, personer = police
    pt = truth["police_truth"]
    linked = et.dropna(subset=["police_uheld_id"])
    keys = set(zip(personer["UHELDS_ID"], personer["ELEMENTNR"].astype(int), personer["PERSONNR"].astype(int)))
    assert set(zip(linked["police_uheld_id"], linked["police_elementnr"], linked["police_personnr"])) <= keys
    assert pt["event_id"].notna().eq(pt["severity"] != "uninjured").all()
    assert len(pt) == len(personer)
    assert (pt.set_index(["uheld_id", "elementnr", "personnr"]).loc[list(zip(
        personer["UHELDS_ID"], personer["ELEMENTNR"].astype(int), personer["PERSONNR"].astype(int)))]
        ["skadesgrad"].to_numpy() == personer["SKADESGRAD"].to_numpy()).all()
    # Police severity agrees with the hospital's about half of the time.
    both = linked[linked["contact_type"] == "primary"].merge(
        pt, left_on=["police_uheld_id", "police_elementnr", "police_personnr"],
        right_on=["uheld_id", "elementnr", "personnr"])
    agree = (both["skadesgrad"].map({"D": "killed", "A": "serious", "L": "slight"}) == both["severity_er"]).mean()
    assert 0.4 < agree < 0.75


def test_cprs_follow_the_century_rule_and_ages_match(er_rows, truth):
    et = truth["er_truth"]
    rows = er_rows.set_index(["file_name", "line_no"]).loc[list(zip(et["file_name"], et["line_no"]))]
    cpr = rows["cpr"].str.replace("-", "", regex=False).to_numpy()
    ten = pd.Series(cpr).str.fullmatch(r"\d{10}").to_numpy()
    assert 0.85 < ten.mean() < 0.99
    dd, mm, yy = (pd.Series(cpr[ten]).str[i:i + 2].astype(int) for i in (0, 2, 4))
    d7 = pd.Series(cpr[ten]).str[6].astype(int)
    century = np.where(d7 <= 3, 1900, np.where(np.isin(d7, [4, 9]), np.where(yy <= 36, 2000, 1900),
                                                   np.where(yy <= 57, 2000, 1800)))
    born = pd.to_datetime(pd.DataFrame({"year": century + yy, "month": mm, "day": dd}), errors="coerce")
    valid = born.notna().to_numpy()
    assert valid.mean() > 0.98  # the rest are some of the ~1 % typed wrong on purpose
    arrival = pd.Series(et["age"].to_numpy()[ten][valid])
    approx = ((pd.Timestamp(f"{YEARS[0]}-07-01") - born[valid]).dt.days / 365.25).to_numpy()
    assert np.abs(approx - arrival.to_numpy()).max() < 2.6
    male = pd.Series(cpr[ten]).str[9].astype(int) % 2 == 1
    assert ((male.to_numpy() == (et["sex"].to_numpy()[ten] == "M"))[valid]).all()
    mod11 = np.array([is_mod11(c) for c in cpr[ten]])
    assert 0.8 < mod11.mean() < 0.99
    malformed = (rows["cpr"] != "").to_numpy() & ~ten
    assert malformed.sum() >= 1


def test_no_cpr_in_the_truth_and_only_made_up_names_in_narratives(real, er_rows, police):
    for path in real.truth_dir.glob("*.parquet"):
        df = pd.read_parquet(path)
        for col in df.columns:
            if df[col].dtype == object:
                assert not df[col].astype(str).str.contains(CPR_LIKE).any(), (path.name, col)
    # The ward narratives carry adversarial personal details for the ingest to redact...
    text = er_rows["fritekst"]
    assert text.str.contains(CPR_LIKE).sum() >= 3
    assert text.str.contains(r"tlf\.? \d{2} ?\d{2}", regex=True).sum() >= 5
    # ...and every name in them (and in the police narratives) is a made-up one.
    name = synthetic_name_regex()
    mentions = pd.concat([
        text.str.extractall(r"(?:Pårørende|Ledsaget af|Ring til) ([A-ZÆØÅ]\w+ [A-ZÆØÅ]\w+)")[0],
        police[0]["UHELDSTEKST"].str.extractall(r"(?:\(|Vidne )([A-ZÆØÅ]\w+ [A-ZÆØÅ]\w+)")[0],
    ])
    assert len(mentions) > 20
    assert mentions.str.fullmatch(name).all(), mentions[~mentions.str.fullmatch(name)].head()
