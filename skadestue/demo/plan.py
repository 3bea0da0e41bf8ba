"""A small, real-looking municipal traffic-safety plan for the demo (``skadestue plan import``).

Measures as a municipality's *trafiksikkerhedsplan* lists them: an id, a name, a type, a
status (``udført``, ``igang``, ``planlagt``) and a year, with a point (a junction
rebuild), a line (a cycle track) or a polygon (a 40 km/h zone). Placed relative to the
demo's planted hotspots, so the plan join has something to find: two planted hotspots
are covered by a measure (one done in 2022, with years before and after), one stretch
has a measure under way, and two planted junctions have none (the gaps).
"""

from __future__ import annotations

import json
from pathlib import Path

import shapely
from shapely.geometry import Point, mapping

from skadestue.demo import events
from skadestue.demo.gazetteer import Gazetteer
from skadestue.demo.towns import HOTSPOTS


def _spec(name_start: str):
    return next(h for h in HOTSPOTS if h.name.startswith(name_start))


def plan_features(gaz: Gazetteer) -> list[dict]:
    """The plan's measures as GeoJSON features in EPSG:25832."""
    had = events.hotspot_junction(gaz, _spec("Gåskærgade/Bispebrovej"))
    aab = events.hotspot_junction(gaz, _spec("H.P. Hanssens Gade/Nygade"))
    stretch = events.hotspot_stretch(gaz, _spec("Haderslevvej"))
    towns = gaz.towns.set_index("name")
    j = gaz.junctions
    # a quiet residential junction in Vejen, rebuilt in 2021
    vejen = j[(j["town"] == "Vejen") & (j["traffic"] == j.loc[j["town"] == "Vejen", "traffic"].min())]
    vejen = vejen.loc[(vejen["x"] - towns.loc["Vejen", "x"]).abs().add((vejen["y"] - towns.loc["Vejen", "y"]).abs()).idxmax()]
    varde = towns.loc["Varde"]
    zone = Point(varde["x"] + 250, varde["y"] - 200).buffer(220, quad_segs=4)
    measures = [
        ("TS-0510-2019-03", "Ombygning af krydset Gåskærgade/Bispebrovej med signalregulering og cykelbokse",
         "Krydsombygning", "udført", 2022, "0510", Point(had["x"] + 6, had["y"] - 4)),
        ("TS-0580-2024-01", "Hævet flade og forsætning i krydset H.P. Hanssens Gade/Nygade", "Hævet flade",
         "planlagt", 2026, "0580", Point(aab["x"] - 8, aab["y"] + 5)),
        ("TS-0580-2023-07", "Dobbeltrettet cykelsti langs Haderslevvej", "Cykelsti", "igang", 2025, "0580",
         shapely.offset_curve(stretch, 9.0)),
        ("TS-0575-2020-02", f"Rundkørsel i krydset {' / '.join(vejen['names'][:2])}", "Rundkørsel", "udført",
         2021, "0575", Point(vejen["x"] + 3, vejen["y"] + 3)),
        ("TS-0573-2022-05", "40 km/t-zone omkring Varde midtby", "Hastighedszone", "udført", 2023, "0573", zone),
    ]
    feats = []
    for tid, navn, typ, status, year, kode, geom in measures:
        geom = shapely.set_precision(geom, 0.01)
        feats.append({
            "type": "Feature",
            "properties": {"tiltag_id": tid, "navn": navn, "type": typ, "status": status, "aar": year,
                           "kommunekode": kode},
            "geometry": mapping(geom),
        })
    return feats


def write_plan(gaz: Gazetteer, path: Path) -> Path:
    """The plan as GeoJSON (EPSG:25832, as the municipalities' GIS exports it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"type": "FeatureCollection", "name": "trafiksikkerhedsplan",
           "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::25832"}},
           "features": plan_features(gaz)}
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return path
