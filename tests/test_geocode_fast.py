"""The vectorised fast path gives exactly the answers of the per-text matcher (issue 4).

Both paths run on the accuracy set built from the real DAWA data (several seeds, right and
wrong kommune hints) and on a small synthetic national gazetteer from the benchmark (street
names repeated across kommuner, so ambiguity and 'found only outside' are exercised); every
result column must be equal, and the fast path must really carry most address texts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from geodata.importer import import_geodata
from skadestue.config import Settings
from skadestue.db import connect
from skadestue.geocode import Gazetteer, geocode_texts
from skadestue.geocode.fast import fast_match
from skadestue.geocode.match import normalise_hint
from skadestue.geocode.parse import DEFAULT_TOWNS, parse_location
from skadestue.geocode.testset import build_testset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_geocode import build_gazetteer, make_texts  # noqa: E402


@pytest.fixture(scope="module")
def real(shared_data):
    con = connect(":memory:")
    import_geodata(
        con,
        addresses=shared_data / "addresses" / "dawa_testdata_adgangsadresser_joined.csv",
        roads=shared_data / "roads" / "dawa_testdata_vejmidte_21kommuner_epsg25832_with_vejnavn.geojson",
        municipalities=shared_data / "boundaries" / "dagi_kommuner.geojson",
        postcodes=shared_data / "boundaries" / "dagi_postnumre.geojson")
    yield con, Gazetteer.load(con), shared_data / "addresses" / "dawa_testdata_dar10_adressebetegnelser.csv"
    con.close()


@pytest.fixture(scope="module")
def national():
    con = connect(":memory:")
    build_gazetteer(con, 400_000, seed=3)
    yield con, Gazetteer.load(con), make_texts(con, 6_000, seed=3)
    con.close()


def fast_share(gaz, texts: pd.DataFrame) -> float:
    """Share of the texts the fast path answers by itself."""
    towns = gaz.towns | DEFAULT_TOWNS
    parsed = [parse_location(t, towns) for t in texts["location_text"]]
    hints = [normalise_hint(h, gaz.kommune_names) for h in texts["kommunekode_hint"]]
    return len(fast_match(gaz, parsed, hints, Settings().geocode)) / len(texts)


def assert_same(con, gaz, texts: pd.DataFrame) -> pd.DataFrame:
    slow = geocode_texts(con, texts, gazetteer=gaz, fast=False)
    fast = geocode_texts(con, texts, gazetteer=gaz)
    pd.testing.assert_frame_equal(fast, slow)
    return fast


@pytest.mark.parametrize("kwargs, min_share", [
    (dict(seed=4), 0.6), (dict(seed=11), 0.6),
    # every hint a wrong kommune: names found only outside it go the per-text way
    (dict(seed=5, hint_share=0.0, wrong_hint_share=1.0), 0.4),
    (dict(seed=6, hint_share=0.0, wrong_hint_share=0.0), 0.6)])
def test_fast_path_equals_per_text_path_on_the_accuracy_set(real, kwargs, min_share):
    con, gaz, dar = real
    truth = build_testset(con, address_strings=str(dar), **kwargs)
    res = assert_same(con, gaz, truth)
    assert len(res) == len(truth) >= 1900
    # the fast path carries the bulk: exact/folded names with a known number
    share = fast_share(gaz, truth)
    assert share >= min_share, share
    assert res["quality"].isin(["A", "B", "C"]).mean() >= 0.9


def test_fast_path_equals_per_text_path_on_a_national_gazetteer(national):
    con, gaz, texts = national
    res = assert_same(con, gaz, texts[["location_text", "kommunekode_hint"]])
    share = fast_share(gaz, texts)
    assert share >= 0.6, share
    # names repeat across kommuner: without hint or town they are ambiguous, never A/B
    reasons = res["reason"].fillna("")
    assert reasons.str.startswith("ambiguous: the name is found").sum() >= 200
    # wrong or missing hint with a postcode/town in the text is still A/B/C from the text
    assert (res["quality"].isin(["A", "B"])).sum() >= 0.6 * len(res)


def test_fast_path_edge_cases_equal_per_text_path(national):
    con, gaz, _ = national
    row = con.execute("""SELECT a.vejnavn, a.husnr, a.postnr, a.postnrnavn, a.kommunekode
                         FROM gazetteer.address a WHERE a.husnr_bogstav = 'A'
                         ORDER BY a.id LIMIT 1""").fetchone()
    name, husnr, postnr, town, kom = row
    other = con.execute("SELECT min(kommunekode) FROM gazetteer.municipality WHERE kommunekode <> ?",
                        [kom]).fetchone()[0]
    texts = pd.DataFrame({"location_text": [
        f"{name} {husnr}, {postnr} {town}",            # exact: A
        f"{name.upper()} {husnr}",                     # case only, hint: A
        f"{name} {husnr[:-1]}",                        # number without the letter: slow path
        f"{name} {husnr[:-1]}B, {postnr}",             # unknown letter: slow path
        f"ud for {name} nr. {husnr}",                  # house_near
        f"{name} {husnr}, 9999 Nowhere",               # postcode unknown: capped C
        f"{name} {husnr}",                             # wrong hint: name elsewhere
        f"{name} 999",                                 # number not on the street
        f"{name}, {husnr}",
        f"{name} {husnr} {town}",
    ], "kommunekode_hint": [kom, kom, kom, "", "", "", other, kom, kom, ""]})
    res = assert_same(con, gaz, texts)
    assert res.loc[0, "quality"] == "A" and res.loc[0, "method"] == "address"
    assert res.loc[1, "quality"] == "A"
    assert res.loc[4, "method"] == "house_near" and res.loc[4, "uncertainty_m"] >= 20
    assert res.loc[5, "quality"] in ("C", "none")


def test_same_name_twice_close_by_and_number_on_one_street_only():
    """Hand-made kommune: 'Kirkevej' twice 300 m apart (both with no. 5, only one with no. 7),
    'Kirkevej' once more 30 km away in another kommune."""
    con = connect(":memory:")
    con.execute("""INSERT INTO gazetteer.municipality VALUES
        ('0101', 'Aby Kommune', ST_MakeEnvelope(500000, 6100000, 510000, 6110000)),
        ('0202', 'Bby Kommune', ST_MakeEnvelope(530000, 6100000, 540000, 6110000))""")
    con.execute("""INSERT INTO gazetteer.postcode VALUES
        ('1100', 'Aby', ST_MakeEnvelope(500000, 6100000, 510000, 6110000)),
        ('2200', 'Bby', ST_MakeEnvelope(530000, 6100000, 540000, 6110000))""")
    con.execute("""INSERT INTO gazetteer.address VALUES
        ('a1', '0101', '0001', 'Kirkevej', '5', 5, '', '1100', 'Aby', NULL, 501000, 6101000),
        ('a2', '0101', '0001', 'Kirkevej', '7', 7, '', '1100', 'Aby', NULL, 501020, 6101000),
        ('a3', '0101', '0002', 'Kirkevej', '5', 5, '', '1100', 'Aby', NULL, 501300, 6101000),
        ('a4', '0202', '0001', 'Kirkevej', '5', 5, '', '2200', 'Bby', NULL, 531000, 6101000),
        ('a5', '0101', '0003', 'Skolegade', '2', 2, 'B', '1100', 'Aby', NULL, 502000, 6102000)""")
    con.execute("""INSERT INTO gazetteer.street
        SELECT kommunekode, vejkode, any_value(vejnavn), '', list(DISTINCT postnr), avg(x), avg(y),
               50, count(*), NULL FROM gazetteer.address GROUP BY ALL""")
    gaz = Gazetteer.load(con)
    texts = pd.DataFrame({"location_text": [
        "Kirkevej 5", "Kirkevej 5", "Kirkevej 7", "Kirkevej 5, 1100 Aby", "Kirkevej 5",
        "Skolegade 2B", "skolegade 2 b, aby", "Skolegade 2", "Kirkevej 5, 2200",
    ], "kommunekode_hint": ["0101", "", "0101", "0202", "0202", "", "", "", "0101"]})
    assert fast_share(gaz, texts) >= 7 / 9
    r = assert_same(con, gaz, texts)
    # two streets 300 m apart carry no. 5: C, both candidates, the uncertainty covers both
    assert r.loc[0, "quality"] == "C" and r.loc[0, "reason"] == "2 candidates"
    assert r.loc[0, "uncertainty_m"] == 150.0 and (r.loc[0, "x"], r.loc[0, "y"]) == (501000, 6101000)
    # no hint: three streets, one 30 km away: not placed, with the reason
    assert r.loc[1, "quality"] == "none" and r.loc[1, "reason"].startswith(
        "ambiguous: the name is found 3 places (kommuner 0101, 0202) up to 30000 m apart")
    # no. 7 exists on one of the two: C (the name exists on another street too)
    assert r.loc[2, "quality"] == "C" and r.loc[2, "x"] == 501020
    # the postcode beats a wrong hint
    assert r.loc[3, "quality"] == "C" and r.loc[3, "kommunekode"] == "0101"
    assert r.loc[4, "quality"] == "A" and r.loc[4, "kommunekode"] == "0202"
    assert r.loc[5, "quality"] == "A" and r.loc[5, "matched"] == "Skolegade 2B, 1100 Aby"
    assert r.loc[6, "quality"] == "A"
    assert r.loc[7, "method"] == "nearest_number"
    con.close()


def test_batched_fuzzy_equals_per_name_fuzzy(national):
    """prefill_fuzzy (one rapidfuzz cdist per scope, numpy-built scope keys) gives the very
    answer of _fuzzy (extract per name) for typos, ties, short names, unknown names, in the
    whole country, a kommune and a postcode."""
    import random

    from skadestue.geocode.normalise import compact
    _, gaz, _ = national
    s = Settings().geocode
    rng = random.Random(7)
    keys = sorted(set(gaz.col["key_b"]))
    queries = set()
    for k in rng.sample(keys, 400):
        i = rng.randrange(len(k))
        queries |= {k[:i] + k[i + 1:],                                 # dropped letter
                    k[:i] + rng.choice("aeiknrst") + k[i + 1:],         # wrong letter
                    k[:i] + k[i + 1:i + 2] + k[i:i + 1] + k[i + 2:],    # swapped letters
                    k + "x", k[:4], compact("zzq" + k)}                 # longer, short, none
    kom = sorted(gaz.by_kommune)[3]
    postnr = sorted(gaz.by_postnr)[5]
    scopes = [("everywhere", None), (f"kommune {kom}", gaz.by_kommune[kom]),
              (f"postnr {postnr}", gaz.by_postnr[postnr])]
    answers = {"match": 0, "str": 0, "none": 0}
    for label, scope in scopes:
        gaz.prefill_fuzzy({(q, label): scope for q in queries if q}, s)
        for q in sorted(x for x in queries if x):
            want = gaz._fuzzy(q, label, scope, s)
            assert gaz._batch_cache[(q, label)] == want, (q, label)
            answers["match" if want is not None and not isinstance(want, str)
                    else "str" if want else "none"] += 1
    # the comparison covered every kind of answer
    assert answers["match"] >= 1000 and answers["str"] >= 10 and answers["none"] >= 1000, answers


@pytest.mark.parametrize("text, kind, street, street2, husnr, km", [
    # the parser's literal pre-checks must not hide upper-case or unusual splitters
    ("Rute 11 KM 23", "road_km", None, None, None, 23.0),
    ("Vestervej OG Søndergade", "junction", "Vestervej", "Søndergade", None, None),
    ("Vestervej MOD Søndergade", "junction", "Vestervej", "Søndergade", None, None),
    ("Vestervej X Søndergade", "junction", "Vestervej", "Søndergade", None, None),
    ("Vestervej \u2013 Søndergade", "junction", "Vestervej", "Søndergade", None, None),
    ("Vestervej & Søndergade", "junction", "Vestervej", "Søndergade", None, None),
    ("Vestervej UDFOR NR. 12", "house_near", "Vestervej", None, 12, None),
    ("Vestervej Nummer 7", "address", "Vestervej", None, 7, None),
    ("Vestervej 12", "address", "Vestervej", None, 12, None),
])
def test_parser_pre_checks_keep_every_phrasing(text, kind, street, street2, husnr, km):
    p = parse_location(text)
    assert (p.kind, p.street, p.street2, p.husnr, p.km) == (kind, street, street2, husnr, km)
