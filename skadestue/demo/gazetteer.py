"""Synthetic gazetteer: street networks, addresses, road centre lines and boundaries.

Each town (``towns.TOWNS``) gets a perturbed, rotated street grid, radial roads towards the
towns it is connected with, and a ring road for the larger towns; rural roads join the
radials of neighbouring towns. Road segments run block by block between junctions and share
node ids there (STARTKNUDE/SLUTKNUDE), as GeoDanmark's do. Access addresses sit every
15-25 m, odd numbers on the left and even on the right, numbered away from where the street
starts. Everything is clipped to the municipality polygons (real DAGI ones when given), so
no street or address lies outside its kommune.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import LineString, MultiPoint, Point, box, mapping
from shapely.ops import substring

from skadestue.config import REGION_KOMMUNER
from skadestue.demo.towns import (
    LANDMARKS,
    RING_NAME,
    RURAL_ROADS,
    STREET_POOL,
    THROUGH_ROUTES,
    TOWNS,
    VILLAGES,
    TownSpec,
    radial_name,
)

log = logging.getLogger(__name__)

#: Bounding box of the synthetic municipalities (EPSG:25832).
REGION_BBOX = (440000.0, 6065000.0, 575000.0, 6195000.0)
FIRST_NODE_ID = 5_100_000


@dataclass
class Gazetteer:
    """The synthetic reference data, in EPSG:25832 (x = easting, y = northing)."""

    towns: pd.DataFrame  # name, kommunekode, postnr, postnrnavn, supplerendebynavn, x, y, weight
    segments: gpd.GeoDataFrame  # one row per block: KOMMUNEKODE, VEJKODE, VEJNAVN, nodes, ...
    addresses: pd.DataFrame  # DAWA columns + street_uid, s, cx, cy (centreline point), town
    junctions: pd.DataFrame  # node_id, x, y, kommunekode, town, names, roundabout, traffic
    streets: pd.DataFrame  # street_uid, name, town, kind, kommunekode, geometry (whole street)
    landmarks: pd.DataFrame  # name, town, kommunekode, postnr, x, y
    kommuner: gpd.GeoDataFrame  # KOMKODE, KOMNAVN, geometry (dissolved, EPSG:25832)
    kommune_features: list[dict]  # the GeoJSON features to publish (CRS84)
    postcodes: gpd.GeoDataFrame  # POSTNR_TXT, POSTBYNAVN, geometry (EPSG:25832)


class _Network:
    """Nodes and street polylines while the towns are laid out."""

    def __init__(self) -> None:
        self.node_xy: list[tuple[float, float]] = []
        self.node_town: list[str] = []
        self.roundabout: set[int] = set()
        #: street_uid -> dict(name, town, kind, vejklasse, nodes=[ids], coords=[[x,y],...] per piece)
        self.streets: list[dict] = []
        #: (town, to_town) -> node id at the outer end of the radial towards ``to_town``
        self.radial_end: dict[tuple[str, str], int] = {}
        #: (town, radial name) -> street_uid
        self.radial_uid: dict[tuple[str, str], int] = {}

    def node(self, x: float, y: float, town: str) -> int:
        self.node_xy.append((float(x), float(y)))
        self.node_town.append(town)
        return FIRST_NODE_ID + len(self.node_xy) - 1

    def xy(self, node_id: int) -> tuple[float, float]:
        return self.node_xy[node_id - FIRST_NODE_ID]

    def street(self, name: str, town: str, kind: str, vejklasse: str, nodes: list[int],
               pieces: list[list[tuple[float, float]]] | None = None) -> int:
        """Add a street through ``nodes``; ``pieces`` optionally gives each block's shape."""
        if pieces is None:
            pieces = [[self.xy(a), self.xy(b)] for a, b in zip(nodes[:-1], nodes[1:])]
        self.streets.append(dict(name=name, town=town, kind=kind, vejklasse=vejklasse,
                                 nodes=nodes, pieces=pieces))
        return len(self.streets) - 1


# --------------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------------

def _town_radials(town: TownSpec) -> list[tuple[str, str, float]]:
    """(radial name, the town it leads to or '', compass angle) for every radial of ``town``."""
    by_name = {t.name: t for t in TOWNS}
    out = []
    for a, b, road in RURAL_ROADS:
        if town.name not in (a, b):
            continue
        other = by_name[b if town.name == a else a]
        name = radial_name(road, b) if town.name == a else f"{a}vej"
        angle = float(np.degrees(np.arctan2(other.y - town.y, other.x - town.x)))
        out.append((name, other.name, angle))
    out += [(name, "", angle) for name, angle in town.dangling]
    return out


def _grid_names(town: TownSpec, reserved: set[str], rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """Names of the vertical and horizontal grid streets, fixed names around the centre."""
    n = town.n
    order = [n // 2]
    for k in range(1, n):
        for c in (n // 2 + k, n // 2 - k):
            if 0 <= c < n and c not in order:
                order.append(c)
    fixed = set(town.fixed_vertical) | set(town.fixed_horizontal)
    pool = [s for s in STREET_POOL if s not in fixed and s not in reserved]
    rest = list(rng.permutation(pool))
    names = []
    for fixed_names in (town.fixed_vertical, town.fixed_horizontal):
        slot: list[str | None] = [None] * n
        for idx, name in zip(order, fixed_names):
            slot[idx] = name
        for i in range(n):
            if slot[i] is None:
                slot[i] = str(rest.pop())
        names.append([str(s) for s in slot])
    return names[0], names[1]


def _lay_out_town(net: _Network, town: TownSpec, rng: np.random.Generator) -> None:
    """Grid, radials and ring road of one town."""
    n, sp = town.n, town.spacing
    half = (n - 1) * sp / 2
    theta = rng.uniform(-0.35, 0.35)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    u = np.arange(n) * sp - half
    local = np.stack(np.meshgrid(u, u, indexing="ij"), axis=-1) + rng.normal(0, 9, (n, n, 2))
    world = local @ rot.T + np.array([town.x, town.y])
    grid = np.array([[net.node(*world[i, j], town.name) for j in range(n)] for i in range(n)])

    radials = _town_radials(town)
    reserved = {r[0] for r in radials} | {RING_NAME}
    vertical, horizontal = _grid_names(town, reserved, rng)
    for i in range(n):
        klasse = "Lokalvej-Primær" if i == n // 2 else "Lokalvej-Tertiær"
        net.street(vertical[i], town.name, "grid", klasse, list(grid[i, :]))
    for j in range(n):
        klasse = "Lokalvej-Primær" if j == n // 2 else "Lokalvej-Tertiær"
        net.street(horizontal[j], town.name, "grid", klasse, list(grid[:, j]))

    boundary = [grid[i, j] for i in range(n) for j in range(n) if i in (0, n - 1) or j in (0, n - 1)]
    bxy = np.array([net.xy(b) for b in boundary]) - np.array([town.x, town.y])
    radius = half * np.sqrt(2) + 250
    with_ring = town.ring and len(radials) >= 2
    ring_nodes: list[tuple[float, int]] = []
    for name, to_town, angle in radials:
        d = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
        start = boundary[int(np.argmax(bxy @ d))]
        centre = np.array([town.x, town.y])
        reach = radius + (400 if to_town else 1300)
        end = net.node(*(centre + reach * d), town.name)
        nodes = [start]
        if with_ring:
            ring_node = net.node(*(centre + radius * d), town.name)
            net.roundabout.add(ring_node)
            ring_nodes.append((angle % 360, ring_node))
            nodes.append(ring_node)
        nodes.append(end)
        uid = net.street(name, town.name, "radial", "Trafikvej-Fordeling", nodes)
        net.radial_uid[(town.name, name)] = uid
        if to_town:
            net.radial_end[(town.name, to_town)] = end
    if with_ring:
        _lay_out_ring(net, town, sorted(ring_nodes), radius)


def _lay_out_ring(net: _Network, town: TownSpec, ring_nodes: list[tuple[float, int]], radius: float) -> None:
    """A ring road through the radials' ring nodes, as arcs between them."""
    pieces, nodes = [], [ring_nodes[0][1]]
    for k, (a0, node0) in enumerate(ring_nodes):
        a1, node1 = ring_nodes[(k + 1) % len(ring_nodes)]
        if a1 <= a0:
            a1 += 360
        steps = max(2, int((a1 - a0) / 12))
        angles = np.radians(np.linspace(a0, a1, steps + 1))[1:-1]
        arc = [net.xy(node0)] + [(town.x + radius * np.cos(a), town.y + radius * np.sin(a)) for a in angles]
        pieces.append(arc + [net.xy(node1)])
        nodes.append(node1)
    net.street(RING_NAME, town.name, "ring", "Trafikvej-Fordeling", nodes, pieces)


def _lay_out_rural(net: _Network, road: tuple[str, str, str], rng: np.random.Generator) -> None:
    """A gently winding rural road between the radial ends of two towns (split later)."""
    a, b, name = road
    start, end = net.radial_end[(a, b)], net.radial_end[(b, a)]
    p0, p1 = np.array(net.xy(start)), np.array(net.xy(end))
    length = float(np.linalg.norm(p1 - p0))
    t = np.linspace(0, 1, max(3, int(length / 100)) + 1)
    normal = np.array([-(p1 - p0)[1], (p1 - p0)[0]]) / length
    amp = min(250.0, 0.04 * length) * rng.uniform(0.5, 1.0)
    wiggle = amp * np.sin(np.pi * t * rng.integers(1, 4) + 0) * rng.choice([-1, 1])
    coords = p0 + np.outer(t, p1 - p0) + np.outer(wiggle, normal)
    klasse = "Trafikvej-Gennemfart" if name in THROUGH_ROUTES else "Lokalvej-Primær"
    net.street(name, a, "rural", klasse, [start, end], [[tuple(c) for c in coords]])


# --------------------------------------------------------------------------------------------
# Boundaries
# --------------------------------------------------------------------------------------------

def _real_kommuner(path: Path) -> tuple[gpd.GeoDataFrame, list[dict]]:
    """The eight region kommuner from a DAGI GeoJSON: dissolved (25832) and as published."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    features = [f for f in raw["features"] if f["properties"].get("KOMKODE") in REGION_KOMMUNER]
    if {f["properties"]["KOMKODE"] for f in features} != set(REGION_KOMMUNER):
        raise ValueError(f"{path}: does not hold all eight region kommuner {sorted(REGION_KOMMUNER)}")
    frame = gpd.GeoDataFrame.from_features(features, crs="OGC:CRS84")
    frame["geometry"] = shapely.force_2d(shapely.make_valid(frame.geometry.values))
    dissolved = frame.to_crs(25832).dissolve("KOMKODE", as_index=False)[["KOMKODE", "KOMNAVN", "geometry"]]
    return dissolved.sort_values("KOMKODE").reset_index(drop=True), features


def _synthetic_kommuner() -> tuple[gpd.GeoDataFrame, list[dict]]:
    """Voronoi cells of the town centres, merged per kommune and clipped to the region box."""
    points = MultiPoint([(t.x, t.y) for t in TOWNS])
    cells = shapely.voronoi_polygons(points, extend_to=box(*REGION_BBOX), ordered=True)
    frame = gpd.GeoDataFrame(
        {"KOMKODE": [t.kommunekode for t in TOWNS]},
        geometry=[c.intersection(box(*REGION_BBOX)) for c in cells.geoms], crs=25832,
    )
    dissolved = frame.dissolve("KOMKODE", as_index=False)
    dissolved["KOMNAVN"] = dissolved["KOMKODE"].map(REGION_KOMMUNER)
    dissolved = dissolved[["KOMKODE", "KOMNAVN", "geometry"]].sort_values("KOMKODE").reset_index(drop=True)
    return dissolved, _features(dissolved, ["KOMKODE", "KOMNAVN"])


def _features(frame: gpd.GeoDataFrame, props: list[str]) -> list[dict]:
    """GeoJSON features in CRS84, coordinates rounded to ~1 cm."""
    wgs = frame.to_crs("OGC:CRS84")
    geoms = shapely.set_precision(wgs.geometry.values, 1e-7)
    return [
        {"type": "Feature", "properties": {p: str(row[p]) for p in props}, "geometry": mapping(g)}
        for (_, row), g in zip(wgs.iterrows(), geoms)
    ]


def _postcodes(kommuner: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Postcode areas: per kommune, the Voronoi cells of its towns, merged per postnr."""
    rows = []
    for kom in kommuner.itertuples():
        towns = [t for t in TOWNS if t.kommunekode == kom.KOMKODE]
        if len(towns) == 1:
            cells = [kom.geometry]
        else:
            vor = shapely.voronoi_polygons(MultiPoint([(t.x, t.y) for t in towns]),
                                           extend_to=kom.geometry.envelope, ordered=True)
            cells = [c.intersection(kom.geometry) for c in vor.geoms]
        rows += [dict(POSTNR_TXT=t.postnr, POSTBYNAVN=t.postnrnavn, geometry=c) for t, c in zip(towns, cells)]
    frame = gpd.GeoDataFrame(rows, crs=25832).dissolve(["POSTNR_TXT", "POSTBYNAVN"], as_index=False)
    return frame.sort_values("POSTNR_TXT").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Segments, vejkoder, addresses
# --------------------------------------------------------------------------------------------

def _split_positions(line: LineString, borders, every: float = 500.0) -> list[float]:
    """Where a rural road is cut into segments: every ~500 m and at kommune borders."""
    cuts = list(np.arange(every, line.length - every / 3, every))
    hit = line.intersection(borders)
    if not hit.is_empty:
        pts = [g for g in getattr(hit, "geoms", [hit]) if g.geom_type == "Point"]
        cuts += [line.project(p) for p in pts]
    cuts = sorted(c for c in cuts if 25 < c < line.length - 25)
    keep: list[float] = []
    for c in cuts:
        if not keep or c - keep[-1] > 25:
            keep.append(c)
    return keep


def _segment_rows(net: _Network, kommuner: gpd.GeoDataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Blocks of every street with their kommune and ``keep`` (inside it), and each street's line."""
    by_code = dict(zip(kommuner["KOMKODE"], kommuner.geometry))
    borders = shapely.union_all(kommuner.boundary.values)
    town_kom = {t.name: t.kommunekode for t in TOWNS}
    seg_rows, street_rows = [], []
    for uid, st in enumerate(net.streets):
        if st["kind"] == "rural":
            line = LineString(st["pieces"][0])
            cuts = _split_positions(line, borders)
            bounds = [0.0] + cuts + [line.length]
            nodes = [st["nodes"][0]] + [net.node(*line.interpolate(c).coords[0], "") for c in cuts] + [st["nodes"][1]]
            pieces = [list(substring(line, s0, s1).coords) for s0, s1 in zip(bounds[:-1], bounds[1:])]
        else:
            nodes, pieces = st["nodes"], st["pieces"]
        s0 = 0.0
        for k, piece in enumerate(pieces):
            geom = LineString(piece)
            seg_rows.append(dict(street_uid=uid, VEJNAVN=st["name"], town=st["town"], kind=st["kind"],
                                 VEJKLASSE=st["vejklasse"], STARTKNUDE=nodes[k], SLUTKNUDE=nodes[k + 1],
                                 s0=s0, s1=s0 + geom.length, geometry=geom))
            s0 += geom.length
        whole = LineString([c for k, p in enumerate(pieces) for c in (p if k == 0 else p[1:])])
        street_rows.append(dict(street_uid=uid, name=st["name"], town=st["town"], kind=st["kind"],
                                geometry=whole))
    segs = gpd.GeoDataFrame(seg_rows, crs=25832)
    mid = shapely.line_interpolate_point(segs.geometry.values, 0.5, normalized=True)
    segs["KOMMUNEKODE"] = None
    for code, poly in by_code.items():
        inside = shapely.contains(poly, mid)
        segs.loc[inside & segs["KOMMUNEKODE"].isna(), "KOMMUNEKODE"] = code
    town_seg = (segs["kind"] != "rural").to_numpy()
    own = segs["town"].map(town_kom)
    # Town streets must lie wholly inside their own kommune; rural pieces inside some kommune.
    covered = np.zeros(len(segs), dtype=bool)
    for code, poly in by_code.items():
        m = (own == code).to_numpy() & town_seg
        shapely.prepare(poly)
        covered[m] = shapely.covers(poly, segs.geometry.values[m])
    segs["keep"] = np.where(town_seg, covered, segs["KOMMUNEKODE"].notna())
    segs.loc[town_seg, "KOMMUNEKODE"] = own[town_seg]
    dropped = int((~segs["keep"]).sum())
    if dropped:
        log.info("demo gazetteer: %d road segments outside their kommune dropped", dropped)
    return segs, pd.DataFrame(street_rows)


def _assign_vejkoder(segs: gpd.GeoDataFrame, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """A 4-digit vejkode per street and kommune: town streets per town, through roads per name."""
    through = segs["kind"].isin(["radial", "rural"])
    segs["street_key"] = np.where(through, segs["VEJNAVN"], segs["VEJNAVN"] + "|" + segs["town"])
    segs["VEJKODE"] = ""
    for code in sorted(segs["KOMMUNEKODE"].dropna().unique()):
        m = segs["KOMMUNEKODE"] == code
        keys = sorted(segs.loc[m, "street_key"].unique())
        codes = rng.choice(np.arange(100, 9900), size=len(keys), replace=False)
        segs.loc[m, "VEJKODE"] = segs.loc[m, "street_key"].map(dict(zip(keys, (f"{c:04d}" for c in codes))))
    return segs


def _points_along(streets: pd.DataFrame, rng: np.random.Generator, rural: bool) -> pd.DataFrame:
    """Address positions along streets: s (m from the start), side (+1 left/odd, -1 right/even)."""
    lo, hi = (150, 600) if rural else (15, 25)
    uids, ss, sides = [], [], []
    for uid, length in zip(streets["street_uid"], shapely.length(streets.geometry.values)):
        for side in (1, -1):
            steps = rng.uniform(lo, hi, int(length / lo) + 2)
            s = np.cumsum(steps) - steps[0] * rng.uniform(0.3, 0.9)
            s = s[(s > 4) & (s < length - 4)]
            uids.append(np.full(len(s), uid))
            ss.append(s)
            sides.append(np.full(len(s), side))
    return pd.DataFrame({"street_uid": np.concatenate(uids), "s": np.concatenate(ss),
                         "side": np.concatenate(sides)})


def _address_points(streets: pd.DataFrame, pts: pd.DataFrame, rng: np.random.Generator,
                    rural: bool) -> pd.DataFrame:
    """Centreline point, tangent and offset access point of every address position."""
    geom = streets.set_index("street_uid").geometry
    lines = geom.loc[pts["street_uid"]].values
    s = pts["s"].to_numpy()
    c = shapely.line_interpolate_point(lines, s)
    ahead = shapely.line_interpolate_point(lines, s + 1.0)
    back = shapely.line_interpolate_point(lines, np.maximum(s - 1.0, 0))
    cx, cy = shapely.get_x(c), shapely.get_y(c)
    tx, ty = shapely.get_x(ahead) - shapely.get_x(back), shapely.get_y(ahead) - shapely.get_y(back)
    norm = np.hypot(tx, ty)
    norm[norm == 0] = 1
    offset = rng.uniform(20, 60, len(pts)) if rural else rng.uniform(8, 14, len(pts))
    side = pts["side"].to_numpy()
    out = pts.copy()
    out["cx"], out["cy"] = cx, cy
    out["x"] = cx - side * offset * ty / norm
    out["y"] = cy + side * offset * tx / norm
    return out


def _number_addresses(addr: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """House numbers per (kommune, vejkode): odd left, even right, increasing along the road."""
    addr = addr.sort_values(["kommunekode", "vejkode", "side", "street_uid", "s"], kind="stable")
    rank = addr.groupby(["kommunekode", "vejkode", "side"]).cumcount().to_numpy()
    left = addr["side"].to_numpy() == 1
    addr["nr"] = np.where(left, 2 * rank + 1, 2 * rank + 2)
    addr["husnr"] = addr["nr"].astype(str)
    # A few numbers are split into letters: 12A / 12B (the B a few metres further on).
    town = addr["kind"] != "rural"
    pick = town.to_numpy() & (rng.random(len(addr)) < 0.03)
    extra = addr[pick].copy()
    extra["husnr"] = extra["nr"].astype(str) + "B"
    extra["s"] = extra["s"] + 6
    extra["x"] = extra["x"] + rng.uniform(4, 7, len(extra)) * rng.choice([-1, 1], len(extra))
    rename_a = rng.random(len(extra)) < 0.5
    addr.loc[addr.index[pick][rename_a], "husnr"] = addr.loc[addr.index[pick][rename_a], "nr"].astype(str) + "A"
    return pd.concat([addr, extra]).sort_values(["kommunekode", "vejkode", "side", "street_uid", "s"], kind="stable")


def _addresses(streets: pd.DataFrame, segs: gpd.GeoDataFrame, kommuner: gpd.GeoDataFrame,
               rng: np.random.Generator) -> pd.DataFrame:
    """DAWA-style access addresses on the surviving segments, inside their kommune."""
    town_specs = {t.name: t for t in TOWNS}
    parts = []
    for rural in (False, True):
        sel = streets[(streets["kind"] == "rural") == rural]
        pts = _points_along(sel, rng, rural)
        parts.append(_address_points(sel, pts, rng, rural))
    addr = pd.concat(parts, ignore_index=True)
    # Which segment each position is on (gives kommune and vejkode); drop those on dropped ones.
    order = np.lexsort((segs["s0"].to_numpy(), segs["street_uid"].to_numpy()))
    seg_key = segs["street_uid"].to_numpy()[order] * 1e7 + segs["s0"].to_numpy()[order]
    pos = np.searchsorted(seg_key, addr["street_uid"].to_numpy() * 1e7 + addr["s"].to_numpy(), side="right") - 1
    seg_index = segs.index.to_numpy()[order][pos]
    seg = segs.loc[seg_index, ["KOMMUNEKODE", "VEJKODE", "VEJNAVN", "kind", "town", "keep"]].reset_index(drop=True)
    addr = pd.concat([addr.reset_index(drop=True), seg], axis=1)
    addr["seg_index"] = seg_index
    addr = addr[addr.pop("keep").to_numpy()].rename(
        columns={"KOMMUNEKODE": "kommunekode", "VEJKODE": "vejkode", "VEJNAVN": "vejnavn"})
    inside = np.zeros(len(addr), dtype=bool)
    for kom in kommuner.itertuples():
        m = addr["kommunekode"].to_numpy() == kom.KOMKODE
        inside[m] = shapely.contains_xy(kom.geometry, addr["x"].to_numpy()[m], addr["y"].to_numpy()[m])
    addr = addr[inside].copy()
    # Postcode: the town's own; on rural roads the nearest town of the same kommune.
    towns = pd.DataFrame([vars(t) for t in TOWNS])
    rural = addr["kind"] == "rural"
    addr["town"] = addr["town"].where(~rural, _nearest_town(addr.loc[rural], towns))
    spec = addr["town"].map(town_specs)
    addr["postnr"] = spec.map(lambda t: t.postnr)
    addr["postnrnavn"] = spec.map(lambda t: t.postnrnavn)
    addr["supplerendebynavn"] = spec.map(lambda t: t.supplerendebynavn)
    village = rural & (rng.random(len(addr)) < 0.6)
    pick = rng.integers(0, 1000, len(addr))
    addr.loc[village, "supplerendebynavn"] = [
        VILLAGES[k][p % len(VILLAGES[k])] for k, p in zip(addr.loc[village, "kommunekode"], pick[village.to_numpy()])]
    addr = _number_addresses(addr, rng)
    addr["id"] = uuid4_strings(rng, len(addr))
    cols = ["id", "kommunekode", "vejkode", "vejnavn", "husnr", "postnr", "postnrnavn", "supplerendebynavn",
            "x", "y", "street_uid", "seg_index", "s", "side", "cx", "cy", "town", "kind"]
    return addr[cols].reset_index(drop=True)


def uuid4_strings(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random version-4 UUID strings drawn from ``rng`` (deterministic for a seed)."""
    hexes = np.frombuffer(rng.bytes(16 * n).hex().encode("ascii"), dtype=np.uint8).reshape(n, 32).copy()
    hexes[:, 12] = ord("4")
    hexes[:, 16] = np.frombuffer(b"89ab", dtype=np.uint8)[hexes[:, 16] % 4]
    dash = np.full((n, 1), ord("-"), dtype=np.uint8)
    out = np.hstack([hexes[:, :8], dash, hexes[:, 8:12], dash, hexes[:, 12:16], dash, hexes[:, 16:20], dash,
                     hexes[:, 20:]])
    return np.ascontiguousarray(out).view("S36").ravel().astype(str)


def _nearest_town(points: pd.DataFrame, towns: pd.DataFrame) -> pd.Series:
    """Name of the nearest town centre in the same kommune as each point."""
    out = pd.Series(index=points.index, dtype=object)
    for code, grp in points.groupby("kommunekode"):
        cand = towns[towns["kommunekode"] == code]
        d = np.hypot(grp["x"].to_numpy()[:, None] - cand["x"].to_numpy()[None, :],
                     grp["y"].to_numpy()[:, None] - cand["y"].to_numpy()[None, :])
        out.loc[grp.index] = cand["name"].to_numpy()[d.argmin(axis=1)]
    return out


#: How much traffic a road of each VEJKLASSE carries, relative to a residential street.
CLASS_TRAFFIC = {"Trafikvej-Gennemfart": 4.0, "Trafikvej-Fordeling": 3.0, "Lokalvej-Primær": 1.8,
                 "Lokalvej-Sekundær": 1.3, "Lokalvej-Tertiær": 1.0}


def _junctions(segs: gpd.GeoDataFrame, net: _Network) -> pd.DataFrame:
    """Nodes where at least two differently named streets meet.

    ``traffic``: how busy the junction is, from the classes of its two busiest roads
    (w_major + w_minor - 1: 1 for two residential streets, 5 for two distributor roads);
    background junction accidents are drawn in proportion to it within a town.
    """
    cols = ["VEJNAVN", "KOMMUNEKODE", "town", "VEJKLASSE"]
    ends = pd.concat([
        segs[["STARTKNUDE", *cols]].rename(columns={"STARTKNUDE": "node_id"}),
        segs[["SLUTKNUDE", *cols]].rename(columns={"SLUTKNUDE": "node_id"}),
    ])
    ends["w"] = ends["VEJKLASSE"].map(CLASS_TRAFFIC).fillna(1.0)
    road_w = ends.groupby(["node_id", "VEJNAVN"])["w"].max().sort_values(ascending=False, kind="stable")
    top2 = road_w.groupby(level="node_id").head(2).groupby(level="node_id")
    traffic = (top2.max() + top2.min() - 1.0).where(top2.size() >= 2, 1.0)
    grp = ends.groupby("node_id").agg(names=("VEJNAVN", lambda s: tuple(sorted(set(s)))),
                                      kommunekode=("KOMMUNEKODE", "first"), town=("town", "first"))
    grp = grp[grp["names"].map(len) >= 2].reset_index()
    xy = np.array([net.xy(int(n)) for n in grp["node_id"]])
    grp["x"], grp["y"] = xy[:, 0], xy[:, 1]
    grp["roundabout"] = grp["node_id"].isin(net.roundabout)
    grp["traffic"] = grp["node_id"].map(traffic).fillna(1.0).to_numpy()
    return grp[["node_id", "x", "y", "kommunekode", "town", "names", "roundabout", "traffic"]]


#: A landmark sits this far off the middle of a block: far enough from every junction
#: (> 60 m) and off the street, so its accidents (a car park, a hospital drive) do not make
#: the neighbouring junction or road window look dangerous.
LANDMARK_SETBACK_M = 38.0


def _landmarks(junctions: pd.DataFrame, segs: gpd.GeoDataFrame, kommuner: gpd.GeoDataFrame) -> pd.DataFrame:
    """Landmarks set back from the middle of a block next to the junction nearest their
    nominal spot (not at the junction itself)."""
    specs = {t.name: t for t in TOWNS}
    polys = dict(zip(kommuner["KOMKODE"], kommuner.geometry))
    rows = []
    for name, town, fx, fy in LANDMARKS:
        t = specs[town]
        half = (t.n - 1) * t.spacing / 2
        cand = junctions[junctions["town"] == town]
        d = np.hypot(cand["x"] - (t.x + fx * half), cand["y"] - (t.y + fy * half))
        j = cand.loc[d.idxmin()]
        blocks = segs[((segs["STARTKNUDE"] == j["node_id"]) | (segs["SLUTKNUDE"] == j["node_id"]))
                      & (segs["kind"] == "grid")]
        if blocks.empty:
            continue
        line = blocks.geometry.iloc[int(np.argmax(blocks.geometry.length.to_numpy()))]
        mid, ahead = line.interpolate(0.5, normalized=True), line.interpolate(0.5 * line.length + 1.0)
        tx, ty = ahead.x - mid.x, ahead.y - mid.y
        norm = np.hypot(tx, ty) or 1.0
        x, y = mid.x - LANDMARK_SETBACK_M * ty / norm, mid.y + LANDMARK_SETBACK_M * tx / norm
        if polys[t.kommunekode].contains(Point(x, y)):
            rows.append(dict(name=name, town=town, kommunekode=t.kommunekode, postnr=t.postnr, x=x, y=y))
    return pd.DataFrame(rows)


def build_gazetteer(seed: int, municipalities_geojson: Path | None = None) -> Gazetteer:
    """Lay out every town and rural road, clip to the kommuner, number the addresses."""
    rng = np.random.default_rng([seed, 1])
    net = _Network()
    for town in TOWNS:
        _lay_out_town(net, town, rng)
    for road in RURAL_ROADS:
        _lay_out_rural(net, road, rng)
    if municipalities_geojson is not None:
        kommuner, features = _real_kommuner(municipalities_geojson)
    else:
        kommuner, features = _synthetic_kommuner()
    segs, streets = _segment_rows(net, kommuner)
    segs = _assign_vejkoder(segs, rng)
    addresses = _addresses(streets, segs, kommuner, rng)
    segs = segs[segs.pop("keep").to_numpy()]
    addresses["seg_index"] = addresses["seg_index"].map(pd.Series(np.arange(len(segs)), index=segs.index))
    segs = segs.reset_index(drop=True)
    junctions = _junctions(segs, net)
    towns = pd.DataFrame([vars(t) for t in TOWNS])[
        ["name", "kommunekode", "postnr", "postnrnavn", "supplerendebynavn", "x", "y", "weight", "n", "spacing"]]
    streets["kommunekode"] = streets["town"].map(dict(zip(towns["name"], towns["kommunekode"])))
    log.info("demo gazetteer: %d segments, %d addresses, %d junctions", len(segs), len(addresses), len(junctions))
    return Gazetteer(
        towns=towns, segments=segs, addresses=addresses, junctions=junctions, streets=streets,
        landmarks=_landmarks(junctions, segs, kommuner), kommuner=kommuner, kommune_features=features,
        postcodes=_postcodes(kommuner),
    )


# --------------------------------------------------------------------------------------------
# Writers (the published formats, inputs.md §3)
# --------------------------------------------------------------------------------------------

def write_addresses(gaz: Gazetteer, path: Path) -> None:
    """DAWA adgangsadresser CSV (comma-separated, UTF-8)."""
    out = gaz.addresses.rename(columns={"x": "etrs89_oest", "y": "etrs89_nord"})
    out = out.sort_values(["kommunekode", "vejkode", "street_uid", "s", "husnr"], kind="stable")
    cols = ["id", "kommunekode", "vejkode", "vejnavn", "husnr", "postnr", "postnrnavn", "supplerendebynavn",
            "etrs89_oest", "etrs89_nord"]
    out[cols].to_csv(path, index=False, float_format="%.2f", lineterminator="\n")


def write_roads(gaz: Gazetteer, path: Path) -> None:
    """GeoDanmark-style vejmidte GeoJSON in EPSG:25832, one feature per block."""
    coords = [np.round(np.asarray(g.coords), 2).tolist() for g in gaz.segments.geometry]
    feats = [
        {"type": "Feature",
         "properties": {"OBJECTID": str(i + 1), "KOMMUNEKODE": r.KOMMUNEKODE, "VEJKODE": r.VEJKODE,
                        "VEJNAVN": r.VEJNAVN, "VEJKLASSE": r.VEJKLASSE, "VEJMIDTETYPE": "Vej",
                        "STARTKNUDE": str(r.STARTKNUDE), "SLUTKNUDE": str(r.SLUTKNUDE)},
         "geometry": {"type": "LineString", "coordinates": c}}
        for i, (r, c) in enumerate(zip(gaz.segments.itertuples(), coords))
    ]
    _write_geojson(path, "vejmidte", "EPSG:25832", feats)


def write_kommuner(gaz: Gazetteer, path: Path) -> None:
    """DAGI kommuner GeoJSON (CRS84): the eight region kommuner."""
    _write_geojson(path, "kommuner", "urn:ogc:def:crs:OGC:1.3:CRS84", gaz.kommune_features)


def write_postcodes(gaz: Gazetteer, path: Path) -> None:
    """DAGI-style postnumre GeoJSON (CRS84): POSTNR_TXT, POSTBYNAVN."""
    _write_geojson(path, "postnumre", "urn:ogc:def:crs:OGC:1.3:CRS84",
                   _features(gaz.postcodes, ["POSTNR_TXT", "POSTBYNAVN"]))


def write_landmarks(gaz: Gazetteer, path: Path) -> None:
    """Place names CSV: name, x, y (EPSG:25832), kommunekode."""
    gaz.landmarks[["name", "x", "y", "kommunekode"]].to_csv(path, index=False, float_format="%.2f",
                                                           lineterminator="\n")


def _write_geojson(path: Path, name: str, crs: str, features: list[dict]) -> None:
    doc = {"type": "FeatureCollection", "name": name,
           "crs": {"type": "name", "properties": {"name": crs}}, "features": features}
    Path(path).write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
