"""An accuracy test set for the geocoder, built from a loaded gazetteer (issue 4).

True locations come from the gazetteer's own sources - the access addresses and the road
segments' shared end nodes (junctions of exactly two named roads, meeting once) - and are
turned into messy ward texts of every kind the parser knows (seeded, reproducible). Texts
that cannot be placed (blank, town, road/km, unknown street or landmark) are included with
``placeable = False``: they must come back ``none`` (or at worst C), never A/B.

:func:`evaluate` scores a geocoder answer against the truth: placed rate, median error,
share within 50 m, share of A/B answers more than 100 m wrong. Street-only texts have no
point truth; their error is the distance from the answer to the street's centre line.
"""

from __future__ import annotations

import random

import duckdb
import numpy as np
import pandas as pd
import shapely

from skadestue.geocode.normalise import fold

#: How a street name is commonly abbreviated or misspelt at a ward.
_SUFFIX_ABBREV = (("gade", "g."), ("gade", "gd."), ("vej", "v."), ("allé", "alle"),
                  ("Allé", "Alle"))

TRUE_JUNCTIONS_SQL = """
WITH ends AS (
    SELECT kommunekode, vejnavn, startknude AS knude, ST_X(ST_StartPoint(geom)) AS x,
           ST_Y(ST_StartPoint(geom)) AS y FROM gazetteer.road_segment
    UNION ALL
    SELECT kommunekode, vejnavn, slutknude, ST_X(ST_EndPoint(geom)), ST_Y(ST_EndPoint(geom))
    FROM gazetteer.road_segment
), nodes AS (
    SELECT knude, min(kommunekode) AS kommunekode, avg(x) AS x, avg(y) AS y,
           list(DISTINCT vejnavn ORDER BY vejnavn) AS names
    FROM ends WHERE knude IS NOT NULL AND vejnavn IS NOT NULL GROUP BY knude
    HAVING count(DISTINCT vejnavn) = 2
), pairs AS (
    SELECT kommunekode, names[1] AS a, names[2] AS b, count(*) AS n, avg(x) AS x, avg(y) AS y,
           max(x) - min(x) + max(y) - min(y) AS extent
    FROM nodes GROUP BY ALL
)
SELECT kommunekode, a, b, x, y FROM pairs
WHERE n = 1 OR extent < 20
ORDER BY kommunekode, a, b
"""


def _typo(name: str, rng: random.Random) -> str:
    """One keyboard slip inside a long word: a dropped, doubled or swapped letter."""
    words = name.split(" ")
    longest = max(range(len(words)), key=lambda i: len(words[i]))
    w = words[longest]
    if len(w) < 8:
        return name
    i = rng.randrange(2, len(w) - 2)
    kind = rng.choice(("drop", "double", "swap"))
    if kind == "drop":
        w = w[:i] + w[i + 1:]
    elif kind == "double":
        w = w[:i] + w[i] + w[i:]
    else:
        w = w[:i] + w[i + 1] + w[i] + w[i + 2:]
    words[longest] = w
    return " ".join(words)


def _messy_name(name: str, rng: random.Random) -> tuple[str, str]:
    """A street name as typed: (text, variation label)."""
    r = rng.random()
    if r < 0.30:
        return name, "exact"
    if r < 0.42:
        return name.lower(), "lower"
    if r < 0.50:
        return name.upper(), "upper"
    if r < 0.62 and any(c in name.lower() for c in "æøå"):
        return fold(name.lower()), "folded"
    if r < 0.76:
        for full, short in _SUFFIX_ABBREV:
            if name.endswith(full):
                return name[: -len(full)] + short, "abbrev"
        return name.replace(" ", "") if " " in name else name.lower(), "spacing"
    if r < 0.88:
        t = _typo(name, rng)
        return t, "typo" if t != name else "exact"
    return name + rng.choice((".", " ,", "  ")), "punct"


def _address_text(row, rng: random.Random) -> tuple[str, str, str]:
    """A messy text for one access address: (text, kind, variation)."""
    name, var = _messy_name(row.vejnavn, rng)
    nr, post, town = row.husnr, row.postnr, row.postnrnavn
    t = rng.randrange(11)
    if t == 0:
        return f"{name} {nr}, {post} {town}", "address", var
    if t == 1:
        return f"{name} {nr} {town}", "address", var
    if t == 2:
        return f"{name} {nr}", "address", var
    if t == 3:
        return f"{name} {nr}, {rng.choice(('2. th', 'st. tv', '1.', 'kl.'))}, {post} {town}", "address", var
    if t == 4:
        return f"ud for {name} nr. {nr}", "house_near", var
    if t == 5:
        return f"{name} ved nr. {nr}", "house_near", var
    if t == 6:
        return f"cykelstien ud for {name} {nr}", "house_near", var
    if t == 7:
        return f"{name} {str(nr).lower()},{post}", "address", var
    if t == 8:
        return f"fortovet foran {name} {nr}, {town}", "house_near", var
    if t == 9:
        return f"{name} nr {nr} i {town}", "address", var
    return f"{name}  {nr} ,  {post}", "address", var


def _junction_text(a: str, b: str, rng: random.Random) -> tuple[str, str]:
    """A messy text for a junction of two named roads: (text, variation)."""
    if rng.random() < 0.5:
        a, b = b, a
    na, va = _messy_name(a, rng)
    nb, vb = _messy_name(b, rng)
    var = va if va != "exact" else vb
    tpl = rng.choice(("krydset {a}/{b}", "{a} og {b}", "hjørnet af {a} og {b}",
                      "rundkørslen {a}/{b}", "{a} / {b}", "{a} ved {b}", "Krydset {a} - {b}",
                      "lyskrydset {a} x {b}", "{a}/{b}"))
    return tpl.format(a=na, b=nb), var


UNPLACEABLE = (
    ("", "blank"), ("   ", "blank"), ("ukendt", "blank"), ("?", "blank"), ("uoplyst", "blank"),
    ("Odense", "town"), ("5000 Odense C", "town"), ("i Dragør", "town"), ("Greve", "town"),
    ("Rute 9 km 12", "road_km"), ("motorvej E20 km 201,4", "road_km"),
    ("p-pladsen ved Netto", "landmark"), ("skolen", "landmark"), ("hjemme", "landmark"),
    ("Fantasivej 12", "unknown"), ("Qwxyzgade 3, 5000 Odense C", "unknown"),
    ("Blåbærstien 1000", "unknown"), ("krydset Fantasivej/Opdigtet Allé", "unknown"),
)


def build_testset(con: duckdb.DuckDBPyConnection, *, seed: int = 4,
                  kommuner: tuple[str, ...] | None = None, n_addresses: int | None = None,
                  n_junctions: int | None = None, n_streets: int = 60,
                  hint_share: float = 0.6, wrong_hint_share: float = 0.1,
                  address_strings: str | None = None, n_address_strings: int = 400
                  ) -> pd.DataFrame:
    """Messy texts with their true locations from ``gazetteer.*`` in ``con`` (see module doc).

    Columns: location_text, kommunekode_hint, kind, variation, placeable, true_x, true_y,
    true_kommunekode, true_vejnavn (street-only texts: scored against the street line).
    ``wrong_hint_share`` of the address texts carry another kommune as hint (a hospital's
    catchment, not the accident's kommune): the text must win. ``address_strings`` is a CSV
    with real DAR ``adressebetegnelse`` strings (floor, door, supplerende bynavn), matched to
    their access address by street, number and postcode.
    """
    rng = random.Random(seed)
    where = ""
    if kommuner:
        where = "WHERE kommunekode IN (" + ", ".join(f"'{k}'" for k in kommuner) + ")"
    addr = con.execute(f"""SELECT kommunekode, vejnavn, husnr, postnr, postnrnavn, x, y
                           FROM gazetteer.address {where} ORDER BY id""").df()
    addr = addr[addr["vejnavn"].notna()]
    if n_addresses is not None and n_addresses < len(addr):
        addr = addr.sample(n_addresses, random_state=seed)
    rows = []

    all_koms = sorted(addr["kommunekode"].unique())

    def hint(kom: str) -> str:
        r = rng.random()
        if r < wrong_hint_share and len(all_koms) > 1:
            return rng.choice([k for k in all_koms if k != kom])
        return kom if r < wrong_hint_share + hint_share else ""

    for r in addr.itertuples(index=False):
        text, kind, var = _address_text(r, rng)
        rows.append((text, hint(r.kommunekode), kind, var, True, r.x, r.y, r.kommunekode, r.vejnavn))
    if address_strings:
        rows += _real_address_rows(con, address_strings, n_address_strings, seed)
    junc = con.execute(TRUE_JUNCTIONS_SQL).df()
    if kommuner:
        junc = junc[junc["kommunekode"].isin(kommuner)]
    if n_junctions is not None and n_junctions < len(junc):
        junc = junc.sample(n_junctions, random_state=seed)
    for r in junc.itertuples(index=False):
        text, var = _junction_text(r.a, r.b, rng)
        # a junction text names no town: the hint is what places it in the right kommune
        h = r.kommunekode if rng.random() < 0.85 else ""
        rows.append((text, h, "junction", var, True, r.x, r.y, r.kommunekode, None))
    streets = con.execute(f"""SELECT kommunekode, vejnavn FROM gazetteer.street {where}
                              ORDER BY kommunekode, vejkode""").df()
    streets = streets.sample(min(n_streets, len(streets)), random_state=seed)
    for r in streets.itertuples(index=False):
        name, var = _messy_name(r.vejnavn, rng)
        tpl = rng.choice(("cykelstien langs {a}", "{a}", "på {a}", "fortovet på {a}"))
        rows.append((tpl.format(a=name), r.kommunekode, "street", var, True, None, None,
                     r.kommunekode, r.vejnavn))
    for text, kind in UNPLACEABLE:
        rows.append((text, rng.choice(("0461", "")), kind, "exact", False, None, None, None, None))
    return pd.DataFrame(rows, columns=["location_text", "kommunekode_hint", "kind", "variation",
                                       "placeable", "true_x", "true_y", "true_kommunekode",
                                       "true_vejnavn"])


def _real_address_rows(con: duckdb.DuckDBPyConnection, path: str, n: int, seed: int) -> list:
    """Real DAR address strings with the coordinates of their access address."""
    df = con.execute("""
        WITH b AS (
            SELECT adressebetegnelse AS t,
                   regexp_extract(adressebetegnelse, '^(.*?) (\\d+[A-Z]?),', 1) AS vejnavn,
                   regexp_extract(adressebetegnelse, '^(.*?) (\\d+[A-Z]?),', 2) AS husnr,
                   regexp_extract(adressebetegnelse, '(\\d{4}) [^,]+$', 1) AS postnr
            FROM read_csv(?, header = true, all_varchar = true))
        SELECT b.t, a.kommunekode, a.vejnavn, a.x, a.y FROM b
        JOIN gazetteer.address a USING (vejnavn, husnr, postnr)
        QUALIFY count(*) OVER (PARTITION BY b.t) = 1
        ORDER BY b.t""", [str(path)]).df()
    if n < len(df):
        df = df.sample(n, random_state=seed)
    return [(t, "", "address", "real", True, x, y, k, v)
            for t, k, v, x, y in df[["t", "kommunekode", "vejnavn", "x", "y"]].itertuples(index=False)]


def _street_distance(con: duckdb.DuckDBPyConnection, df: pd.DataFrame) -> np.ndarray:
    """Distance from each answer to its true street's centre line (street-only texts)."""
    lines = con.execute("""SELECT kommunekode, vejnavn, ST_AsWKB(ST_Union_Agg(geom)) AS wkb
                           FROM gazetteer.road_segment GROUP BY ALL""").df()
    geom = {(k, v): shapely.from_wkb(bytes(w)) for k, v, w in lines.itertuples(index=False)}
    out = np.full(len(df), np.nan)
    for i, (k, v, x, y) in enumerate(zip(df["true_kommunekode"], df["true_vejnavn"],
                                         df["x"], df["y"])):
        g = geom.get((k, v))
        if g is not None and x == x and x is not None:
            out[i] = g.distance(shapely.Point(x, y))
    return out


def evaluate(con: duckdb.DuckDBPyConnection, truth: pd.DataFrame,
             result: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """Score geocoder ``result`` (same index as ``truth``): metrics and the joined frame."""
    df = truth.join(result[["x", "y", "quality", "uncertainty_m", "method", "matched", "reason"]])
    placed = df["quality"].isin(["A", "B", "C"])
    err = np.hypot(df["x"] - df["true_x"], df["y"] - df["true_y"]).to_numpy(dtype=float)
    street = (df["kind"] == "street").to_numpy()
    if street.any():
        err[street] = _street_distance(con, df[street])
    df["error_m"] = err
    p = df[df["placeable"]]
    pp = p[p["quality"].isin(["A", "B", "C"])]
    ab = pp[pp["quality"].isin(["A", "B"])]
    unplaceable = df[~df["placeable"]]
    metrics = {
        "texts": len(df),
        "placeable": len(p),
        "placed_rate": float(len(pp) / len(p)) if len(p) else 0.0,
        "median_error_m": float(np.nanmedian(pp["error_m"])) if len(pp) else float("nan"),
        "within_50m": float((p["error_m"] <= 50).sum() / len(p)) if len(p) else 0.0,
        "ab_answers": len(ab),
        "ab_wrong_100m_share": float((ab["error_m"] > 100).sum() / len(ab)) if len(ab) else 0.0,
        "quality_counts": {q: int((df["quality"] == q).sum()) for q in ("A", "B", "C", "none")},
        "unplaceable_given_ab": int(unplaceable["quality"].isin(["A", "B"]).sum()),
        "placed": int(placed.sum()),
    }
    return metrics, df
