"""The truth model: accidents, the people injured in them, and which of them the police see.

An *accident* happens at a place and time (a junction, an address, a rural road, a landmark,
or one of the planted hotspots). Each injures one or more people: an *event* is one person
injured in one accident (road user, counterpart, severity, person). Emergency-ward contacts
and police records are both drawn from the events, so every delivered row has a known truth.

Volumes at scale 1: ~3,800 ER contacts per year. The police register an accident with a
probability by road user and severity (cyclists ~12 %, pedestrians ~32 %, car occupants ~45 %,
motorcyclists ~35 %, killed 97 %; serious x1.5, slight x0.9), which gives ~25 % of the ER
casualties overall. With ~3,800 ER contacts a year that means ~750 police injury accidents a
year, more than the ~210 of the real district: the two published figures cannot both hold, and
the demo keeps the shares (what linkage and the dark-figure analysis depend on).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree
from shapely.ops import substring

from skadestue.demo.gazetteer import Gazetteer
from skadestue.demo.people import make_persons
from skadestue.demo.towns import HOTSPOTS, HotspotSpec

log = logging.getLogger(__name__)

ER_CONTACTS_PER_YEAR = 3800
#: ER contacts per accident (~1.14 injured, ~88 % of them in the ER, 1.11 contacts each).
CONTACTS_PER_ACCIDENT = 1.11
#: Share of the injured who reach an ER, whether or not the police registered the accident:
#: the two sources are independent given the person, so the casualties known to neither
#: (the true dark figure) are what a capture-recapture estimate should recover.
ER_SHARE = 0.88
ER_SHARE_KILLED = 0.6

ROAD_USER_MIX: dict[str, float] = {
    "cyclist": 0.40, "e_bike": 0.06, "pedestrian": 0.05, "car": 0.25, "van": 0.02, "truck": 0.01,
    "bus": 0.01, "moped": 0.08, "motorcycle": 0.04, "other": 0.08,
}
_MOTOR = ("car", "van", "truck", "bus")
COUNTERPART_MIX: dict[str, dict[str, float]] = {
    "cyclist": {"none": 0.58, "car": 0.24, "cyclist": 0.06, "pedestrian": 0.02, "fixed_object": 0.05,
                "van": 0.03, "truck": 0.01, "moped": 0.01},
    "pedestrian": {"car": 0.68, "cyclist": 0.14, "van": 0.06, "bus": 0.03, "truck": 0.03, "moped": 0.06},
    "car": {"car": 0.50, "none": 0.20, "fixed_object": 0.14, "truck": 0.05, "van": 0.06, "other": 0.05},
    "moped": {"none": 0.40, "car": 0.45, "cyclist": 0.05, "fixed_object": 0.10},
    "motorcycle": {"none": 0.35, "car": 0.50, "fixed_object": 0.15},
    "van": {"car": 0.50, "none": 0.20, "fixed_object": 0.20, "truck": 0.10},
    "truck": {"car": 0.50, "none": 0.25, "fixed_object": 0.15, "truck": 0.10},
    "bus": {"car": 0.50, "none": 0.30, "fixed_object": 0.10, "cyclist": 0.10},
    "other": {"none": 0.55, "car": 0.35, "cyclist": 0.10},
}
COUNTERPART_MIX["e_bike"] = COUNTERPART_MIX["cyclist"]
#: (killed, serious, slight, unknown) by road user.
SEVERITY_MIX: dict[str, tuple[float, float, float, float]] = {
    "cyclist": (0.002, 0.17, 0.79, 0.038), "e_bike": (0.004, 0.22, 0.74, 0.036),
    "pedestrian": (0.010, 0.30, 0.66, 0.030), "car": (0.004, 0.14, 0.81, 0.046),
    "van": (0.004, 0.14, 0.81, 0.046), "truck": (0.003, 0.12, 0.83, 0.047),
    "bus": (0.001, 0.10, 0.85, 0.049), "moped": (0.004, 0.22, 0.74, 0.036),
    "motorcycle": (0.015, 0.32, 0.63, 0.035), "other": (0.002, 0.15, 0.80, 0.048),
}
SEVERITIES = np.array(["killed", "serious", "slight", "unknown"])
POLICE_BASE: dict[str, float] = {
    "cyclist": 0.12, "e_bike": 0.12, "pedestrian": 0.32, "car": 0.45, "van": 0.45, "truck": 0.45,
    "bus": 0.30, "moped": 0.25, "motorcycle": 0.35, "other": 0.08,
}
SEVERITY_FACTOR = {"serious": 1.5, "slight": 0.9, "unknown": 0.6}
KILLED_POLICE_SHARE = 0.97
#: Where background accidents happen.
KIND_MIX = {"junction": 0.36, "address": 0.44, "rural": 0.15, "landmark": 0.05}
MONTH_WEIGHTS = np.array([0.80, 0.75, 0.85, 0.95, 1.10, 1.15, 1.05, 1.10, 1.15, 1.05, 1.00, 0.90])
HOUR_WEIGHTS = np.array([0.4, 0.3, 0.2, 0.2, 0.3, 0.6, 1.5, 3.2, 4.0, 2.6, 2.4, 2.8, 3.2, 3.3, 3.8,
                         4.8, 5.0, 4.2, 3.0, 2.2, 1.6, 1.2, 0.9, 0.6])

LOCATION_COLUMNS = ["kind", "hotspot", "town", "kommunekode", "postnr", "x", "y", "street", "husnr",
                    "cross", "roundabout", "landmark", "vejkode", "km_m"]


def _choice(rng: np.random.Generator, mix: dict[str, float], n: int) -> np.ndarray:
    keys = np.array(list(mix))
    p = np.array(list(mix.values()), dtype=float)
    return keys[rng.choice(len(keys), size=n, p=p / p.sum())]


def accident_times(rng: np.random.Generator, years: np.ndarray) -> pd.Series:
    """Timestamps with a summer bulge and morning/afternoon rush peaks."""
    n = len(years)
    month = rng.choice(12, size=n, p=MONTH_WEIGHTS / MONTH_WEIGHTS.sum()) + 1
    first = pd.to_datetime(pd.DataFrame({"year": years, "month": month, "day": 1}))
    days = first.dt.days_in_month.to_numpy()
    day = np.floor(rng.random(n) * days).astype(int)
    hour = rng.choice(24, size=n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    minute = rng.integers(0, 60, n)
    return first + pd.to_timedelta(day, unit="D") + pd.to_timedelta(hour * 60 + minute, unit="min")


def _nearest_on_street(gaz: Gazetteer, x: np.ndarray, y: np.ndarray, street: np.ndarray,
                       kommune: np.ndarray, max_m: float = 400.0) -> np.ndarray:
    """House number of the nearest address on the same street (kommune + name), '' if none near."""
    addr = gaz.addresses
    tree = cKDTree(addr[["x", "y"]].to_numpy())
    k = min(40, len(addr))
    dist, idx = tree.query(np.column_stack([x, y]), k=k)
    same = ((addr["vejnavn"].to_numpy()[idx] == street[:, None])
            & (addr["kommunekode"].to_numpy()[idx] == kommune[:, None]))
    same &= dist < max_m
    first = same.argmax(axis=1)
    found = same[np.arange(len(x)), first]
    nr = addr["husnr"].to_numpy()[idx[np.arange(len(x)), first]]
    return np.where(found, nr, "")


def _empty_locations(n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "kind": np.full(n, "", dtype=object), "hotspot": "", "town": "", "kommunekode": "", "postnr": "",
        "x": np.nan, "y": np.nan, "street": "", "husnr": "", "cross": "", "roundabout": False,
        "landmark": "", "vejkode": "", "km_m": np.nan,
    })


def _pick_in_town(rng: np.random.Generator, cand: pd.DataFrame, towns: np.ndarray) -> pd.DataFrame:
    """For each entry of ``towns``, a uniformly random row of ``cand`` in that town."""
    cand = cand.sort_values("town", kind="stable").reset_index(drop=True)
    bounds = cand.groupby("town").indices
    first = pd.Series({t: ix[0] for t, ix in bounds.items()})
    size = pd.Series({t: len(ix) for t, ix in bounds.items()})
    pos = first.reindex(towns).to_numpy() + np.floor(rng.random(len(towns)) * size.reindex(towns).to_numpy())
    return cand.iloc[pos.astype(int)]


def _pick_weighted_in_town(rng: np.random.Generator, cand: pd.DataFrame, towns: np.ndarray,
                           weight: str) -> pd.DataFrame:
    """Like ``_pick_in_town``, with rows drawn in proportion to ``cand[weight]`` (one uniform
    draw per pick, as there, so the random stream is the same)."""
    cand = cand.sort_values("town", kind="stable").reset_index(drop=True)
    w = cand[weight].to_numpy(dtype=float)
    cum = np.cumsum(w)
    bounds = cand.groupby("town").indices
    lo = pd.Series({t: (cum[ix[0]] - w[ix[0]]) for t, ix in bounds.items()})
    span = pd.Series({t: cum[ix[-1]] - (cum[ix[0]] - w[ix[0]]) for t, ix in bounds.items()})
    target = lo.reindex(towns).to_numpy() + rng.random(len(towns)) * span.reindex(towns).to_numpy()
    pos = np.minimum(np.searchsorted(cum, target, side="right"), len(cand) - 1)
    return cand.iloc[pos]


def _place_in_towns(gaz: Gazetteer, rng: np.random.Generator, loc: pd.DataFrame) -> None:
    """Junction, address and landmark accidents: a spot in a town picked by population."""
    towns = gaz.towns.set_index("name")
    in_town = loc["kind"].isin(["junction", "address", "landmark"]).to_numpy()
    w = towns["weight"].to_numpy()
    loc.loc[in_town, "town"] = towns.index.to_numpy()[rng.choice(len(towns), size=int(in_town.sum()), p=w / w.sum())]
    no_landmark = (loc["kind"] == "landmark") & ~loc["town"].isin(set(gaz.landmarks["town"]))
    loc.loc[no_landmark, "kind"] = "address"
    kind = loc["kind"].to_numpy()
    town = loc["town"].to_numpy()

    m = kind == "address"
    town_addr = gaz.addresses[gaz.addresses["kind"] != "rural"]
    a = _pick_in_town(rng, town_addr, town[m])
    loc.loc[m, "x"] = a["cx"].to_numpy() + rng.normal(0, 3, int(m.sum()))
    loc.loc[m, "y"] = a["cy"].to_numpy() + rng.normal(0, 3, int(m.sum()))
    loc.loc[m, "street"] = a["vejnavn"].to_numpy()
    loc.loc[m, "husnr"] = a["husnr"].to_numpy()
    loc.loc[m, "vejkode"] = a["vejkode"].to_numpy()

    m = kind == "junction"
    _set_junction(loc, np.flatnonzero(m), _pick_weighted_in_town(rng, gaz.junctions, town[m], "traffic"), rng,
                  spread=6.0)

    m = kind == "landmark"
    lm = _pick_in_town(rng, gaz.landmarks, town[m])
    loc.loc[m, "x"] = lm["x"].to_numpy() + rng.normal(0, 15, int(m.sum()))
    loc.loc[m, "y"] = lm["y"].to_numpy() + rng.normal(0, 15, int(m.sum()))
    loc.loc[m, "landmark"] = lm["name"].to_numpy()

    t = towns.loc[town[in_town]]
    loc.loc[in_town, "kommunekode"] = t["kommunekode"].to_numpy()
    loc.loc[in_town, "postnr"] = t["postnr"].to_numpy()


def _set_junction(loc: pd.DataFrame, idx: np.ndarray, j: pd.DataFrame, rng: np.random.Generator,
                  spread: float, names: tuple[str, str] | None = None) -> None:
    """Accidents at junction rows ``j``: the point, and two of the crossing street names."""
    idx = loc.index[idx]
    loc.loc[idx, "x"] = j["x"].to_numpy() + rng.normal(0, spread, len(idx))
    loc.loc[idx, "y"] = j["y"].to_numpy() + rng.normal(0, spread, len(idx))
    if names is None:
        lists = j["names"].to_list()
        width = max((len(ns) for ns in lists), default=2)
        table = np.array([list(ns) + [""] * (width - len(ns)) for ns in lists], dtype=object).reshape(len(lists), width)
        count = np.array([len(ns) for ns in lists])
        a = rng.integers(0, 1000, len(idx)) % np.maximum(count, 1)
        b = (a + 1 + rng.integers(0, 1000, len(idx)) % np.maximum(count - 1, 1)) % np.maximum(count, 1)
        rows = np.arange(len(idx))
        first, second = table[rows, a], table[rows, b]
    else:
        swap = rng.random(len(idx)) < 0.5
        first = np.where(swap, names[1], names[0])
        second = np.where(swap, names[0], names[1])
    loc.loc[idx, "street"] = first
    loc.loc[idx, "cross"] = second
    loc.loc[idx, "roundabout"] = j["roundabout"].to_numpy()


def _place_rural(gaz: Gazetteer, rng: np.random.Generator, loc: pd.DataFrame) -> None:
    """Rural accidents: a point on a rural road, chosen by length."""
    idx = loc.index[loc["kind"] == "rural"].to_numpy()
    if len(idx) == 0:
        return
    segs = gaz.segments[gaz.segments["kind"] == "rural"]
    lengths = segs.geometry.length.to_numpy()
    pick = rng.choice(len(segs), size=len(idx), p=lengths / lengths.sum())
    chosen = segs.iloc[pick]
    s = rng.random(len(idx)) * lengths[pick]
    pts = shapely.line_interpolate_point(chosen.geometry.values, s)
    loc.loc[idx, "x"] = shapely.get_x(pts)
    loc.loc[idx, "y"] = shapely.get_y(pts)
    loc.loc[idx, "street"] = chosen["VEJNAVN"].to_numpy()
    loc.loc[idx, "kommunekode"] = chosen["KOMMUNEKODE"].to_numpy()
    loc.loc[idx, "vejkode"] = chosen["VEJKODE"].to_numpy()
    loc.loc[idx, "km_m"] = np.round(chosen["s0"].to_numpy() + s)
    towns = gaz.towns
    near = np.empty(len(idx), dtype=object)
    for code in np.unique(chosen["KOMMUNEKODE"]):
        m = chosen["KOMMUNEKODE"].to_numpy() == code
        cand = towns[towns["kommunekode"] == code]
        d = np.hypot(loc.loc[idx[m], "x"].to_numpy()[:, None] - cand["x"].to_numpy()[None, :],
                     loc.loc[idx[m], "y"].to_numpy()[:, None] - cand["y"].to_numpy()[None, :])
        near[m] = cand["name"].to_numpy()[d.argmin(axis=1)]
    loc.loc[idx, "town"] = near
    loc.loc[idx, "postnr"] = towns.set_index("name").loc[near, "postnr"].to_numpy()


def background_locations(gaz: Gazetteer, rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Where ``n`` ordinary accidents happen."""
    loc = _empty_locations(n)
    loc["kind"] = _choice(rng, KIND_MIX, n)
    _place_in_towns(gaz, rng, loc)
    _place_rural(gaz, rng, loc)
    return loc


def hotspot_junction(gaz: Gazetteer, spec: HotspotSpec) -> pd.Series:
    """The junction of a planted hotspot (the one nearest the town centre if several)."""
    j = gaz.junctions
    m = (j["town"] == spec.town) & j["names"].map(lambda ns: all(r in ns for r in spec.roads))
    if not m.any():
        raise RuntimeError(f"planted hotspot {spec.name}: no junction of {spec.roads} in {spec.town}")
    town = gaz.towns.set_index("name").loc[spec.town]
    cand = j[m]
    return cand.loc[np.hypot(cand["x"] - town["x"], cand["y"] - town["y"]).idxmin()]


def hotspot_stretch(gaz: Gazetteer, spec: HotspotSpec):
    """The line of a planted stretch hotspot (a piece of the named radial)."""
    st = gaz.streets[(gaz.streets["town"] == spec.town) & (gaz.streets["name"] == spec.roads[0])]
    if st.empty:
        raise RuntimeError(f"planted hotspot {spec.name}: no street {spec.roads[0]} in {spec.town}")
    line = st.geometry.iloc[0]
    return substring(line, spec.stretch_from_m, spec.stretch_from_m + spec.stretch_length_m)


def hotspot_locations(gaz: Gazetteer, rng: np.random.Generator, n_years: int, scale: float) -> pd.DataFrame:
    """Accidents at the planted hotspots. They keep at least their scale-1 rate, so they stand
    out on small demos too."""
    frames = []
    towns = gaz.towns.set_index("name")
    for spec in HOTSPOTS:
        n = max(3, int(round(spec.casualties_per_5y / 1.2 * n_years / 5 * max(scale, 1.0))))
        loc = _empty_locations(n)
        loc["kind"], loc["hotspot"], loc["town"] = spec.kind, spec.name, spec.town
        loc["kommunekode"] = towns.loc[spec.town, "kommunekode"]
        loc["postnr"] = towns.loc[spec.town, "postnr"]
        idx = loc.index.to_numpy()
        if spec.kind == "junction":
            j = hotspot_junction(gaz, spec)
            _set_junction(loc, idx, pd.DataFrame([j] * n), rng, spread=7.0, names=spec.roads[:2])
            loc["kind"] = "junction"
        else:
            line = hotspot_stretch(gaz, spec)
            pts = shapely.line_interpolate_point(np.full(n, line, dtype=object), rng.random(n) * line.length)
            loc["x"] = shapely.get_x(pts) + rng.normal(0, 3, n)
            loc["y"] = shapely.get_y(pts) + rng.normal(0, 3, n)
            loc["street"] = spec.roads[0]
            loc["kind"] = "address"
        frames.append(loc)
    return pd.concat(frames, ignore_index=True)


def _sample_severity(rng: np.random.Generator, road_user: np.ndarray) -> np.ndarray:
    out = np.empty(len(road_user), dtype=object)
    for ru, p in SEVERITY_MIX.items():
        m = road_user == ru
        out[m] = SEVERITIES[rng.choice(4, size=int(m.sum()), p=np.array(p) / sum(p))]
    return out


def make_accidents(gaz: Gazetteer, rng: np.random.Generator, years: tuple[int, int], scale: float) -> pd.DataFrame:
    """Every injury accident: place, time, the first casualty's road user and counterpart."""
    year_list = np.arange(years[0], years[1] + 1)
    per_year = ER_CONTACTS_PER_YEAR * scale / CONTACTS_PER_ACCIDENT
    n_bg = rng.poisson(per_year, len(year_list))
    bg = background_locations(gaz, rng, int(n_bg.sum()))
    bg["year"] = np.repeat(year_list, n_bg)
    hot = hotspot_locations(gaz, rng, len(year_list), scale)
    hot["year"] = year_list[rng.integers(0, len(year_list), len(hot))]
    acc = pd.concat([bg, hot], ignore_index=True)
    acc["ts"] = accident_times(rng, acc["year"].to_numpy())
    n = len(acc)
    ru = _choice(rng, ROAD_USER_MIX, n)
    # Planted junction hotspots see more cyclists (right-turning lorries, roundabouts).
    hot_cycl = (acc["hotspot"] != "").to_numpy() & (rng.random(n) < 0.25)
    ru[hot_cycl] = "cyclist"
    acc["road_user"] = ru
    cp = np.empty(n, dtype=object)
    for r, mix in COUNTERPART_MIX.items():
        m = ru == r
        cp[m] = _choice(rng, mix, int(m.sum()))
    acc["counterpart"] = cp
    need_nr = (acc["husnr"] == "") & (acc["kind"].isin(["address", "rural"]))
    acc.loc[need_nr, "husnr"] = _nearest_on_street(
        gaz, acc.loc[need_nr, "x"].to_numpy(), acc.loc[need_nr, "y"].to_numpy(),
        acc.loc[need_nr, "street"].to_numpy(), acc.loc[need_nr, "kommunekode"].to_numpy())
    acc = acc.sort_values("ts", kind="stable").reset_index(drop=True)
    acc.insert(0, "accident_id", np.arange(len(acc)))
    return acc


def make_events(acc: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The injured people of every accident: the first casualty, passengers, the other party."""
    n = len(acc)
    ru = acc["road_user"].to_numpy()
    cp = acc["counterpart"].to_numpy()
    motor = np.isin(ru, _MOTOR)
    n_pass = np.where(motor, rng.choice(3, size=n, p=[0.80, 0.15, 0.05]), 0)
    n_pass[ru == "bus"] = rng.integers(0, 4, int((ru == "bus").sum()))
    vulnerable_cp = np.isin(cp, ["cyclist", "e_bike", "pedestrian", "moped", "motorcycle"])
    p_cp = np.where(vulnerable_cp, 0.35, np.where(np.isin(cp, _MOTOR) & motor, 0.15, 0.02))
    p_cp[np.isin(cp, ["none", "fixed_object", "other"])] = 0.0
    cp_injured = rng.random(n) < p_cp

    acc_idx = np.concatenate([np.arange(n), np.repeat(np.arange(n), n_pass), np.flatnonzero(cp_injured)])
    role = np.concatenate([np.full(n, "primary"), np.full(int(n_pass.sum()), "passenger"),
                           np.full(int(cp_injured.sum()), "counterpart")]).astype(object)
    ev = pd.DataFrame({"accident_id": acc["accident_id"].to_numpy()[acc_idx], "role": role})
    is_cp = role == "counterpart"
    ev["road_user"] = np.where(is_cp, cp[acc_idx], ru[acc_idx])
    ev["counterpart"] = np.where(is_cp, ru[acc_idx], cp[acc_idx])
    ev["severity"] = _sample_severity(rng, ev["road_user"].to_numpy())
    ev = ev.sort_values(["accident_id", "role"], key=lambda s: s.map({"primary": 0, "passenger": 1, "counterpart": 2})
                        if s.name == "role" else s, kind="stable").reset_index(drop=True)
    ev.insert(0, "event_id", np.arange(len(ev)))
    return ev


def register_police(
    acc: pd.DataFrame, ev: pd.DataFrame, rng: np.random.Generator, reporting: float = 1.0
) -> None:
    """Which accidents the police register, and which of their casualties reach an ER."""
    worst = ev.assign(rank=ev["severity"].map({"killed": 0, "serious": 1, "slight": 2, "unknown": 3}))
    worst = worst.groupby("accident_id")["rank"].min()
    sev = SEVERITIES[worst.reindex(acc["accident_id"]).to_numpy()]
    p = reporting * acc["road_user"].map(POLICE_BASE).to_numpy() * pd.Series(sev).map(SEVERITY_FACTOR).fillna(1).to_numpy()
    p = np.where(sev == "killed", KILLED_POLICE_SHARE, np.minimum(p, 0.95))
    acc["police"] = rng.random(len(acc)) < p
    police = acc.set_index("accident_id").loc[ev["accident_id"], "police"].to_numpy()
    p_er = np.where(ev["severity"] == "killed", ER_SHARE_KILLED, ER_SHARE)
    ev["police"] = police
    ev["in_er"] = rng.random(len(ev)) < p_er


def age_on(born: pd.Series, on: pd.Series) -> np.ndarray:
    """Completed years of age on a date (calendar rule)."""
    born, on = pd.to_datetime(born), pd.to_datetime(on)
    before = (on.dt.month < born.dt.month) | ((on.dt.month == born.dt.month) & (on.dt.day < born.dt.day))
    return (on.dt.year - born.dt.year - before.astype(int)).to_numpy()


def attach_persons(acc: pd.DataFrame, ev: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """A synthetic person per event; ~2 % are people injured again in a later accident."""
    a = acc.set_index("accident_id").loc[ev["accident_id"]]
    tourist_share = np.where(a["kommunekode"].isin(["0563", "0550"]).to_numpy(), 0.08, 0.035)
    persons = make_persons(rng, a["ts"].reset_index(drop=True), ev["road_user"].to_numpy(), tourist_share)
    persons.insert(0, "person_key", np.arange(len(persons)))
    key = persons["person_key"].to_numpy().copy()
    n = len(ev)
    again = np.flatnonzero(rng.random(n) < 0.02)
    again = again[again > 50]
    donor = (rng.random(len(again)) * again).astype(int)
    ok = ev["accident_id"].to_numpy()[donor] != ev["accident_id"].to_numpy()[again]
    key[again[ok]] = key[donor[ok]]
    ev["person_key"] = key
    p = persons.set_index("person_key").loc[key]
    ev["sex"] = p["sex"].to_numpy()
    ev["birth_date"] = p["birth_date"].to_numpy()
    ev["cpr"] = p["cpr"].to_numpy()
    ev["age"] = age_on(pd.Series(p["birth_date"].to_numpy()), a["ts"].reset_index(drop=True))
    return persons


def build_truth(gaz: Gazetteer, rng: np.random.Generator, years: tuple[int, int], scale: float,
                police_reporting: float = 1.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accidents and events with persons and police registration."""
    acc = make_accidents(gaz, rng, years, scale)
    ev = make_events(acc, rng)
    register_police(acc, ev, rng, police_reporting)
    attach_persons(acc, ev, rng)
    cols = ["accident_id", "ts", "year", "kommunekode", "x", "y", "kind", "hotspot", "town"]
    ev = ev.merge(acc[cols], on="accident_id", how="left")
    log.info("demo truth: %d accidents, %d injured (%d police-registered accidents)",
             len(acc), len(ev), int(acc["police"].sum()))
    return acc, ev
