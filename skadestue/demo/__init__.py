"""Synthetic demo data with a known truth: a gazetteer, ER and police deliveries, truth tables.

Real emergency-ward data can never ship, so ``generate_demo`` writes deliveries shaped like
the real ones (inputs.md §1-3) around the real towns of the eight municipalities, plus the
truth they were drawn from (``out_dir/truth/*.parquet``, never in the inbox):

- ``events``: one injured person in one accident (x, y, road user, severity, police or not);
- ``er_truth``: every delivered ER row -> its event, person, and police person if any;
- ``police_truth``: every police person row -> its event (NULL for the uninjured);
- ``police_accidents``: every police accident -> true place, whether X/Y were given/swapped;
- ``hotspots``: the planted junction and stretch hotspots;
- ``busy_safe``: busy junctions with only the accidents expected for their kind (nothing
  planted), which a good ranking must not put at the top;
- apart from the truth, ``plan/trafiksikkerhedsplan.geojson``: a small traffic-safety plan
  (measures with id, name, type, status, year) for ``skadestue plan import``.

Deterministic for a seed (same bytes twice). No CPR number is written to the truth files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from skadestue.demo import contacts, deliveries, events, gazetteer, police
from skadestue.demo import plan as demo_plan
from skadestue.demo.towns import BUSY_SAFE, HOTSPOTS

log = logging.getLogger(__name__)

__all__ = ["DemoPaths", "generate_demo"]


@dataclass(frozen=True)
class DemoPaths:
    """Where ``generate_demo`` put everything, and how much of it there is."""

    out_dir: Path
    inbox: Path
    er_dir: Path
    police_dir: Path
    geodata_dir: Path
    addresses_csv: Path
    roads_geojson: Path
    municipalities_geojson: Path
    postcodes_geojson: Path | None
    places_csv: Path
    truth_dir: Path
    events_truth: Path
    er_truth: Path
    police_truth: Path
    police_accidents_truth: Path
    hotspots_truth: Path
    busy_safe_truth: Path
    plan_geojson: Path
    er_files: list[Path] = field(default_factory=list)
    police_files: list[Path] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def _paths(out_dir: Path) -> DemoPaths:
    inbox, geo, truth = out_dir / "inbox", out_dir / "geodata", out_dir / "truth"
    return DemoPaths(
        out_dir=out_dir, inbox=inbox, er_dir=inbox / "skadestue", police_dir=inbox / "politi", geodata_dir=geo,
        addresses_csv=geo / "adgangsadresser.csv", roads_geojson=geo / "vejmidte.geojson",
        municipalities_geojson=geo / "kommuner.geojson", postcodes_geojson=geo / "postnumre.geojson",
        places_csv=geo / "stednavne.csv", truth_dir=truth, events_truth=truth / "events.parquet",
        er_truth=truth / "er_truth.parquet", police_truth=truth / "police_truth.parquet",
        police_accidents_truth=truth / "police_accidents.parquet", hotspots_truth=truth / "hotspots.parquet",
        busy_safe_truth=truth / "busy_safe.parquet", plan_geojson=out_dir / "plan" / "trafiksikkerhedsplan.geojson",
    )


def _clear_old_deliveries(paths: DemoPaths) -> None:
    """Remove CSVs of an earlier demo run in the same folder (a stale year would linger)."""
    for folder in (paths.er_dir, paths.police_dir):
        if folder.exists():
            for old in folder.glob("*.csv"):
                old.unlink()


def _write_gazetteer(gaz: gazetteer.Gazetteer, paths: DemoPaths) -> None:
    paths.geodata_dir.mkdir(parents=True, exist_ok=True)
    gazetteer.write_addresses(gaz, paths.addresses_csv)
    gazetteer.write_roads(gaz, paths.roads_geojson)
    gazetteer.write_kommuner(gaz, paths.municipalities_geojson)
    gazetteer.write_postcodes(gaz, paths.postcodes_geojson)
    gazetteer.write_landmarks(gaz, paths.places_csv)


def _hotspot_truth(gaz: gazetteer.Gazetteer, ev: pd.DataFrame) -> pd.DataFrame:
    """The planted hotspots with their true casualty counts."""
    rows = []
    for spec in HOTSPOTS:
        mine = ev[ev["hotspot"] == spec.name]
        if spec.kind == "junction":
            j = events.hotspot_junction(gaz, spec)
            x, y, length, wkt = float(j["x"]), float(j["y"]), 0.0, f"POINT ({j['x']:.2f} {j['y']:.2f})"
        else:
            line = events.hotspot_stretch(gaz, spec)
            mid = line.interpolate(0.5, normalized=True)
            x, y, length, wkt = mid.x, mid.y, line.length, shapely.to_wkt(line, rounding_precision=2)
        town = gaz.towns.set_index("name").loc[spec.town]
        rows.append(dict(
            name=spec.name, kind=spec.kind, kommunekode=town["kommunekode"], town=spec.town, x=x, y=y,
            road_a=spec.roads[0], road_b=spec.roads[1] if len(spec.roads) > 1 else None,
            roundabout=spec.roundabout, length_m=length, wkt=wkt, n_events=len(mine),
            n_er_events=int(mine["in_er"].sum()), n_police_events=int(mine["police"].sum()),
        ))
    return pd.DataFrame(rows)


def _busy_safe_truth(gaz: gazetteer.Gazetteer, ev: pd.DataFrame, radius_m: float = 30.0) -> pd.DataFrame:
    """The busy-but-safe junctions with their traffic weight and true events within ``radius_m``."""
    rows = []
    j_all = gaz.junctions
    for spec in BUSY_SAFE:
        j = events.hotspot_junction(gaz, spec)
        town = j_all[j_all["town"] == spec.town]
        near = np.hypot(ev["x"] - j["x"], ev["y"] - j["y"]) <= radius_m
        rows.append(dict(
            name=spec.name, kind=spec.kind, kommunekode=j["kommunekode"], town=spec.town,
            x=float(j["x"]), y=float(j["y"]), road_a=spec.roads[0], road_b=spec.roads[1],
            roundabout=bool(j["roundabout"]), traffic=float(j["traffic"]),
            town_median_traffic=float(town["traffic"].median()), n_events=int(near.sum()),
            n_planted_events=int((ev.loc[near, "hotspot"] != "").sum()),
        ))
    return pd.DataFrame(rows)


def _er_truth(con: pd.DataFrame, placed: pd.DataFrame, bad: pd.Series, per: pd.DataFrame) -> pd.DataFrame:
    """Every delivered ER row with its truth (no CPR)."""
    link = per.dropna(subset=["event_id"])[["event_id", "UHELDS_ID", "ELEMENTNR", "PERSONNR"]]
    link = link.astype({"event_id": "int64"}).rename(columns={
        "UHELDS_ID": "police_uheld_id", "ELEMENTNR": "police_elementnr", "PERSONNR": "police_personnr"})
    out = pd.DataFrame({
        "sygehus": con["sygehus"], "kontakt_id": con["kontakt_id"], "file_name": placed["file_name"],
        "line_no": placed["line_no"].astype("int64"), "event_id": con["event_id"].astype("int64"),
        "accident_id": con["accident_id"].astype("int64"), "person_key": con["person_key"].astype("int64"),
        "contact_type": con["contact_type"], "x": con["x"], "y": con["y"], "kommunekode": con["kommunekode"],
        "location_kind": con["kind"], "hotspot": con["hotspot"], "road_user": con["road_user"],
        "counterpart": con["counterpart"], "severity": con["severity"],
        "severity_er": deliveries.final_er_severity(placed, con), "diagnose": placed["diagnose"],
        "afslutning": con["afslutning"], "age": con["age"].astype("int64"), "sex": con["sex"],
        "has_cpr": con["cpr"].fillna("") != "", "is_bad_row": bad != "", "bad_reason": bad,
        "corrected": placed["corrected"],
    })
    out = out.merge(link, on="event_id", how="left")
    out["police_elementnr"] = out["police_elementnr"].astype("Int64")
    out["police_personnr"] = out["police_personnr"].astype("Int64")
    return out.sort_values(["file_name", "line_no"], kind="stable").reset_index(drop=True)


def _police_truth(per: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "uheld_id": per["UHELDS_ID"], "elementnr": per["ELEMENTNR"].astype("int64"),
        "personnr": per["PERSONNR"].astype("int64"), "event_id": per["event_id"].astype("Int64"),
        "person_key": per["person_key"].astype("Int64"), "accident_id": per["accident_id"].astype("int64"),
        "role": per["role"], "road_user": per["road_user"], "severity": per["severity"],
        "skadesgrad": per["SKADESGRAD"], "has_cpr": per["CPR"] != "",
    }).sort_values(["uheld_id", "elementnr", "personnr"]).reset_index(drop=True)


def _police_accident_truth(acc: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "uheld_id": acc["UHELDS_ID"], "accident_id": acc["accident_id"].astype("int64"),
        "uheldsart": acc["UHELDSART"], "kommunekode": acc["kommunekode"], "x": acc["x"], "y": acc["y"],
        "location_kind": acc["kind"], "hotspot": acc["hotspot"].fillna(""), "has_xy": acc["police_has_xy"],
        "xy_swapped": acc["xy_swapped"],
    }).sort_values("uheld_id").reset_index(drop=True)


def _events_truth(ev: pd.DataFrame, per: pd.DataFrame) -> pd.DataFrame:
    uheld = per.dropna(subset=["event_id"]).astype({"event_id": "int64"}).set_index("event_id")["UHELDS_ID"]
    cols = ["event_id", "accident_id", "person_key", "role", "road_user", "counterpart", "severity", "age", "sex",
            "ts", "year", "kommunekode", "town", "x", "y", "kind", "hotspot", "police", "in_er"]
    out = ev[cols].rename(columns={"ts": "accident_time", "kind": "location_kind"}).copy()
    out["uheld_id"] = out["event_id"].map(uheld)
    return out


def generate_demo(
    out_dir: Path,
    *,
    scale: float = 1.0,
    years: tuple[int, int] = (2020, 2024),
    seed: int = 7,
    municipalities_geojson: Path | None = None,
    police_reporting: float = 1.0,
) -> DemoPaths:
    """Write a synthetic gazetteer, inbox deliveries and their truth under ``out_dir``.

    ``scale`` multiplies the yearly volumes (1 = the region: ~3,800 ER contacts a year);
    ``municipalities_geojson`` (a DAGI kommuner file) gives real boundaries, else Voronoi
    cells of the towns are used. ``police_reporting`` scales how often the police register
    a non-fatal accident: 1 gives the overlap the issue asks for (police know ~25 % of ER
    casualties, ~750 injury accidents a year); about 0.3 gives the region's real police
    volume (~210 injury accidents a year, ~7 % of ER casualties). Deaths stay ~97 % known.
    """
    if police_reporting <= 0:
        raise ValueError(f"police_reporting must be positive, got {police_reporting}")
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if years[0] > years[1]:
        raise ValueError(f"years must be (first, last), got {years}")
    out_dir = Path(out_dir)
    paths = _paths(out_dir)
    _clear_old_deliveries(paths)
    gaz = gazetteer.build_gazetteer(seed, municipalities_geojson)
    _write_gazetteer(gaz, paths)

    acc, ev = events.build_truth(gaz, np.random.default_rng([seed, 2]), years, scale, police_reporting)
    rng = np.random.default_rng([seed, 3])
    con = contacts.er_contacts(ev, rng)
    p_acc, per = police.police_records(gaz, acc, ev, rng, years)

    rows = deliveries.render_er(con, acc, rng)
    corrected = deliveries.pick_corrections(rows, con, rng)
    bad = deliveries.plant_bad_rows(rows, con, rng, exclude=rows.index.isin(corrected))
    placed, er_files = deliveries.write_er_files(rows, con, paths.er_dir, rng, corrected)
    police_files = deliveries.write_police_files(p_acc, per, paths.police_dir)

    paths.truth_dir.mkdir(parents=True, exist_ok=True)
    hot = _hotspot_truth(gaz, ev)
    tables = {
        paths.events_truth: _events_truth(ev, per),
        paths.er_truth: _er_truth(con, placed, bad, per),
        paths.police_truth: _police_truth(per),
        paths.police_accidents_truth: _police_accident_truth(p_acc),
        paths.hotspots_truth: hot,
        paths.busy_safe_truth: _busy_safe_truth(gaz, ev),
    }
    for path, table in tables.items():
        table.to_parquet(path, index=False)
    demo_plan.write_plan(gaz, paths.plan_geojson)

    counts = {
        "addresses": len(gaz.addresses), "road_segments": len(gaz.segments), "junctions": len(gaz.junctions),
        "events": len(ev), "er_events": int(ev["in_er"].sum()), "er_rows": len(rows), "er_files": len(er_files),
        "bad_er_rows": int((bad != "").sum()), "corrected_er_rows": len(corrected),
        "police_accidents": len(p_acc), "police_injury_accidents": int(p_acc["UHELDSART"].isin(
            ["Personskadeuheld", "Dødsuheld"]).sum()), "police_persons": len(per),
        "hotspot_events": int(hot["n_events"].sum()),
    }
    log.info("demo data in %s: %s", out_dir, counts)
    return DemoPaths(**{**paths.__dict__, "er_files": er_files, "police_files": police_files, "counts": counts})
