"""Police accident reports (vejman.dk-shaped) drawn from the truth.

The police register the accidents ``events.register_police`` picked, plus damage-only
accidents (Materielskadeuheld) and Ekstrauheld that have no casualties. Each accident has
one element per party (element 1 = the party that triggered it) and one person row per
person; uninjured drivers are added. The police code severity their own way (agreeing with
the hospital about 55 % of the time), record CPR for ~85 % of persons and place ~90 % of
the accidents with X/Y (5-20 m off); a couple have X and Y swapped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from skadestue.demo.events import accident_times, background_locations
from skadestue.demo.gazetteer import Gazetteer
from skadestue.demo.people import format_cpr, make_persons
from skadestue.demo.texts import fast_strftime, uheldstekst

#: Road user -> police TRANSPORTMIDDEL codes to choose from.
TRANSPORT_CODES: dict[str, tuple[int, ...]] = {
    "car": (11, 11, 11, 11, 12), "van": (22, 23), "truck": (31,), "bus": (34, 35), "motorcycle": (41,),
    "moped": (45, 51, 52), "cyclist": (61,), "e_bike": (62, 62, 61), "pedestrian": (71,), "other": (42, 99),
    "unknown": (99,),
}
DRIVER_PERSONART = {"moped": 40, "cyclist": 60, "e_bike": 60, "pedestrian": 80}
PARTY_ROAD_USERS = ("car", "van", "truck", "bus", "motorcycle", "moped", "cyclist", "e_bike", "pedestrian")
ROAD_USER_DA = {
    "car": "personbil", "van": "varebil", "truck": "lastbil", "bus": "bus", "motorcycle": "motorcykel",
    "moped": "knallert", "cyclist": "cyklist", "e_bike": "el-cyklist", "pedestrian": "fodgænger",
    "other": "et rådyr", "none": "rabatten", "fixed_object": "et træ", "unknown": "ukendt",
}
DAMAGE_ONLY_PER_INJURY = {"Materielskadeuheld": 0.6, "Ekstrauheld": 0.15}

UHELD_COLUMNS = [
    "UHELDS_ID", "UHELDSDATO", "KLOKKESLAET", "UHELDSART", "KODE_UHELDSSITUATION", "UHELDKOMMUNE",
    "VEJNAVN", "HUSNR", "KRYDSENDE_VEJ", "VEJKODE", "KM", "X_KOORDINAT", "Y_KOORDINAT", "ANTAL_DRAEBTE",
    "ANTAL_ALV_TILSKADEKOMNE", "ANTAL_LET_TILSKADEKOMNE", "SPRIT", "LYS", "VEJRFORHOLD", "UHELDSTEKST",
]
PERSON_COLUMNS = ["UHELDS_ID", "ELEMENTNR", "PERSONNR", "TRANSPORTMIDDEL", "PERSONART", "SKADESGRAD",
                  "ALDER", "KOEN", "CPR"]


def _codes(rng: np.random.Generator, road_user: np.ndarray) -> np.ndarray:
    out = np.zeros(len(road_user), dtype=int)
    for ru, codes in TRANSPORT_CODES.items():
        m = road_user == ru
        out[m] = np.array(codes)[rng.integers(0, len(codes), int(m.sum()))]
    return out


def _damage_only(gaz: Gazetteer, injury: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Accidents without casualties, in proportion to the injury accidents of each year."""
    frames = []
    for art, share in DAMAGE_ONLY_PER_INJURY.items():
        per_year = injury.groupby("year").size()
        n = rng.poisson(per_year.to_numpy() * share)
        loc = background_locations(gaz, rng, int(n.sum()))
        loc["year"] = np.repeat(per_year.index.to_numpy(), n)
        loc["uheldsart"] = art
        frames.append(loc)
    acc = pd.concat(frames, ignore_index=True)
    acc["ts"] = accident_times(rng, acc["year"].to_numpy())
    acc["road_user"] = np.where(rng.random(len(acc)) < 0.85, "car", "van")
    acc["counterpart"] = np.where(rng.random(len(acc)) < 0.6, "car", "none")
    acc["accident_id"] = -1 - np.arange(len(acc))
    return acc


def _situation(rng: np.random.Generator, acc: pd.DataFrame) -> np.ndarray:
    """KODE_UHELDSSITUATION from the parties and the place."""
    n = len(acc)
    ru, cp = acc["road_user"].to_numpy(), acc["counterpart"].to_numpy()

    def pick(options: tuple[str, ...]) -> np.ndarray:
        return np.array(options)[rng.integers(0, len(options), n)]

    out = pick(("110", "140", "210", "220", "710"))
    out = np.where(acc["kind"].to_numpy() == "junction", pick(("410", "411", "510", "511", "520", "610", "611")), out)
    out = np.where(np.isin(cp, ["none", "fixed_object"]), pick(("012", "013", "021", "031", "041")), out)
    out = np.where(cp == "other", pick(("912", "931", "940")), out)
    out = np.where((ru == "pedestrian") | (cp == "pedestrian"), pick(("810", "820", "830", "840", "870")), out)
    return np.where(rng.random(n) < 0.02, "999", out)


def _persons(acc: pd.DataFrame, ev: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """One row per person of every police accident (injured from ``ev``, uninjured drivers added)."""
    has_party2 = acc["counterpart"].isin(PARTY_ROAD_USERS).to_numpy()
    trigger_other = np.where(acc["road_user"] == "pedestrian", True,
                             np.where(acc["counterpart"] == "pedestrian", False, rng.random(len(acc)) < 0.5))
    trigger_other &= has_party2
    el = pd.DataFrame({"accident_id": acc["accident_id"].to_numpy(),
                       "el_primary": np.where(trigger_other, 2, 1),
                       "el_other": np.where(has_party2, np.where(trigger_other, 1, 2), 0)})
    inj = ev[ev["police"]].merge(el, on="accident_id")
    inj["ELEMENTNR"] = np.where(inj["role"] == "counterpart", inj["el_other"], inj["el_primary"])
    inj["PERSONNR"] = inj.groupby(["accident_id", "ELEMENTNR"]).cumcount() + 1
    # Uninjured drivers: the other party when it was not hurt, and the cars of damage-only accidents.
    hurt = pd.MultiIndex.from_frame(inj[["accident_id", "ELEMENTNR"]])
    cand = pd.concat([
        pd.DataFrame({"accident_id": el["accident_id"], "ELEMENTNR": el["el_other"],
                      "road_user": acc["counterpart"].to_numpy()}),
        pd.DataFrame({"accident_id": el["accident_id"], "ELEMENTNR": el["el_primary"],
                      "road_user": acc["road_user"].to_numpy()}),
    ])
    cand = cand[(cand["ELEMENTNR"] > 0)]
    cand = cand[~pd.MultiIndex.from_frame(cand[["accident_id", "ELEMENTNR"]]).isin(hurt)].copy()
    ts = acc.set_index("accident_id").loc[cand["accident_id"], "ts"].reset_index(drop=True)
    people = make_persons(rng, ts, cand["road_user"].to_numpy(), 0.03)
    cand = cand.reset_index(drop=True)
    cand["PERSONNR"] = 1
    cand["severity"] = "uninjured"
    cand["role"] = "driver"
    cand["event_id"] = pd.NA
    cand["person_key"] = pd.NA
    cand["age"], cand["sex"], cand["cpr"] = people["age"], people["sex"], people["cpr"]
    cols = ["accident_id", "ELEMENTNR", "PERSONNR", "event_id", "person_key", "role", "road_user", "severity",
            "age", "sex", "cpr"]
    per = pd.concat([inj[cols], cand[cols]], ignore_index=True)
    per = per.sort_values(["accident_id", "ELEMENTNR", "PERSONNR"], kind="stable").reset_index(drop=True)
    n = len(per)
    ru = per["road_user"].to_numpy()
    per["TRANSPORTMIDDEL"] = _codes(rng, ru)
    driver_art = pd.Series(ru).map(DRIVER_PERSONART).fillna(10).astype(int)
    per["PERSONART"] = np.where(per["role"] == "passenger", 70, driver_art)
    sev = per["severity"].to_numpy()
    r = rng.random(n)
    per["SKADESGRAD"] = np.select(
        [sev == "killed", sev == "serious", sev == "slight", sev == "unknown", sev == "uninjured"],
        [np.full(n, "D"), np.where(r < 0.55, "A", "L"), np.where(r < 0.6, "L", "A"), np.full(n, "L"),
         np.full(n, "U")], "L")
    off = rng.random(n) < 0.05
    per["ALDER"] = np.where(off, per["age"] + rng.choice([-2, -1, 1, 2], n), per["age"]).clip(0)
    flip = rng.random(n) < 0.01
    per["KOEN"] = np.where(flip, np.where(per["sex"] == "M", "K", "M"), per["sex"])
    recorded = (rng.random(n) < 0.85) & (per["cpr"].str.len() == 10)
    per["CPR"] = np.where(recorded, format_cpr(rng, per["cpr"].to_numpy(), 0.2), "")
    return per


def police_records(gaz: Gazetteer, acc: pd.DataFrame, ev: pd.DataFrame, rng: np.random.Generator,
                   years: tuple[int, int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The uheld and personer rows (delivered strings plus truth columns)."""
    injury = acc[acc["police"]].copy()
    injury["uheldsart"] = "Personskadeuheld"
    other = _damage_only(gaz, injury, rng)
    allacc = pd.concat([injury, other], ignore_index=True).sort_values("ts", kind="stable").reset_index(drop=True)
    seq = allacc.groupby("year").cumcount() + 1
    allacc["UHELDS_ID"] = allacc["year"].astype(str) + seq.map("{:05d}".format)
    per = _persons(allacc, ev, rng)
    per = per.merge(allacc[["accident_id", "UHELDS_ID"]], on="accident_id")
    counts = per.groupby("UHELDS_ID")["SKADESGRAD"].value_counts().unstack(fill_value=0)
    counts = counts.reindex(columns=["D", "A", "L"], fill_value=0).reindex(allacc["UHELDS_ID"], fill_value=0)
    allacc["ANTAL_DRAEBTE"] = counts["D"].to_numpy()
    allacc["ANTAL_ALV_TILSKADEKOMNE"] = counts["A"].to_numpy()
    allacc["ANTAL_LET_TILSKADEKOMNE"] = counts["L"].to_numpy()
    killed = allacc["ANTAL_DRAEBTE"] > 0
    allacc.loc[killed, "uheldsart"] = "Dødsuheld"
    _accident_fields(gaz, allacc, rng, years)
    per["UHELDS_ID"] = per["UHELDS_ID"].astype(str)
    return allacc, per


def _accident_fields(gaz: Gazetteer, acc: pd.DataFrame, rng: np.random.Generator, years: tuple[int, int]) -> None:
    """The delivered accident columns: date, place as the police write it, X/Y, conditions."""
    n = len(acc)
    ts = acc["ts"]
    danish = (acc["year"] < (years[0] + years[1] + 1) / 2).to_numpy()
    acc["UHELDSDATO"] = np.where(danish, fast_strftime(ts, "%d-%m-%Y"), fast_strftime(ts, "%Y-%m-%d"))
    acc["KLOKKESLAET"] = fast_strftime(ts, "%H:%M")
    acc["UHELDSART"] = acc["uheldsart"]
    acc["KODE_UHELDSSITUATION"] = _situation(rng, acc)
    acc["UHELDKOMMUNE"] = np.where(rng.random(n) < 0.6, acc["kommunekode"].str[1:], acc["kommunekode"])
    # Landmark accidents: the police write the nearest address instead.
    addr = gaz.addresses
    _, near = cKDTree(addr[["x", "y"]].to_numpy()).query(acc[["x", "y"]].to_numpy())
    lm = (acc["kind"] == "landmark").to_numpy()
    street = np.where(lm, addr["vejnavn"].to_numpy()[near], acc["street"].to_numpy())
    husnr = np.where(lm, addr["husnr"].to_numpy()[near], acc["husnr"].to_numpy())
    has_xy = rng.random(n) < 0.9
    junction = (acc["kind"] == "junction").to_numpy()
    r = rng.random(n)
    acc["VEJNAVN"] = np.where(has_xy & (r < 0.05), "", street)
    acc["HUSNR"] = np.where(~junction & (~has_xy | (r < 0.8)), husnr, "")
    acc["KRYDSENDE_VEJ"] = np.where(junction & (~has_xy | (r < 0.8)), acc["cross"], "")
    rural = (acc["kind"] == "rural").to_numpy()
    acc["VEJKODE"] = np.where(rural | (rng.random(n) < 0.5), acc["vejkode"].fillna(""), "")
    km = acc["km_m"].fillna(0).to_numpy().astype(int)
    acc["KM"] = np.where(rural, pd.Series(km // 1000).astype(str) + "/" + pd.Series(km % 1000).map("{:04d}".format), "")
    radius, angle = rng.uniform(5, 20, n), rng.uniform(0, 2 * np.pi, n)
    x = acc["x"].to_numpy() + radius * np.cos(angle)
    y = acc["y"].to_numpy() + radius * np.sin(angle)
    acc["xy_swapped"] = False
    placed = np.flatnonzero(has_xy)
    swap = rng.choice(placed, size=min(len(placed), max(2, int(0.002 * n))), replace=False)
    acc.loc[swap, "xy_swapped"] = True
    x[swap], y[swap] = y[swap].copy(), x[swap].copy()
    acc["X_KOORDINAT"] = np.where(has_xy, pd.Series(x).map("{:.2f}".format), "")
    acc["Y_KOORDINAT"] = np.where(has_xy, pd.Series(y).map("{:.2f}".format), "")
    acc["police_has_xy"] = has_xy
    acc["SPRIT"] = np.where(rng.random(n) < 0.06, "J", "N")
    hour = ts.dt.hour.to_numpy()
    acc["LYS"] = np.select([(hour >= 8) & (hour < 16), (hour >= 6) & (hour < 20)],
                           ["Dagslys", "Tusmørke"], np.where(rural, "Mørke", "Mørke, vejbelysning tændt"))
    weather = np.array(["Tørvejr", "Tørvejr", "Tørvejr", "Regn", "Regn", "Tåge", "Sne", "Slud/hagl"])
    acc["VEJRFORHOLD"] = weather[rng.integers(0, len(weather), n)]
    r1 = acc["road_user"].map(ROAD_USER_DA)
    r2 = acc["counterpart"].map(ROAD_USER_DA)
    single = acc["counterpart"].isin(["none", "fixed_object", "other"]).to_numpy()
    acc["UHELDSTEKST"] = np.where(rng.random(n) < 0.7, uheldstekst(r1, r2, single, rng), "")
