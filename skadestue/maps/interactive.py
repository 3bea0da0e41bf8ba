"""The interactive HTML map (folium/Leaflet) of one kommune and period, usable offline.

folium loads Leaflet, jQuery, Bootstrap and Font Awesome from CDNs by default. This map uses
none of them but Leaflet, and carries Leaflet (1.9.4, BSD-2-Clause, vendored in
``static/leaflet``) inline, with its images as data URIs, so the file works when opened from
disk without internet. Only the background tiles (OpenStreetMap) come from the net: when they
cannot load, the page says "Baggrundskort ikke tilgængeligt offline" and shows the road
network from the gazetteer, the boundary and the hotspot layers all the same.

Every feature layer has its own CSS class on its SVG paths (``sk-boundary``, ``sk-road``,
``sk-cell``, ``sk-junction``) so a browser test can count what was drawn.
"""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import Element, MacroElement
from jinja2 import Template
from matplotlib import colors

from skadestue.maps.data import SOURCE_LINE, Background, Period
from skadestue.maps.labels import ROAD_USER_COLUMNS
from skadestue.maps.static import CMAP, HIDDEN_FILL
from skadestue.maps.suppress import HIDDEN, fmt_int

WGS84 = "EPSG:4326"
OFFLINE_NOTE = "Baggrundskort ikke tilgængeligt offline"


class OfflineMap(folium.Map):
    """A folium Map that links no CDN: Leaflet is inlined by ``_inline_leaflet``."""

    default_js: list = []
    default_css: list = []


@dataclass
class HtmlMapResult:
    path: Path
    n_cells: int
    n_junctions: int
    n_roads: int
    n_boundary: int


def _leaflet_assets() -> tuple[str, str]:
    """(leaflet.js, leaflet.css with its images inlined as data URIs)."""
    base = resources.files("skadestue.maps") / "static" / "leaflet"
    js = (base / "leaflet.js").read_text(encoding="utf-8")
    css = (base / "leaflet.css").read_text(encoding="utf-8")

    def data_uri(match: re.Match) -> str:
        data = (base / "images" / match.group(1)).read_bytes()
        return f"url(data:image/png;base64,{base64.b64encode(data).decode('ascii')})"

    css = re.sub(r"url\(images/([\w.-]+\.png)\)", data_uri, css)
    return js, css


class _OfflineCheck(MacroElement):
    """Shows the offline note when the tile layer fails (or the browser is offline)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function () {
            var note = document.getElementById("sk-offline-note");
            function showNote() { if (note) { note.style.display = "block"; } }
            if (navigator.onLine === false) { showNote(); }
            {{ this.tiles }}.on("tileerror", showNote);
        })();
        {% endmacro %}
    """)

    def __init__(self, tiles: folium.TileLayer):
        super().__init__()
        self._name = "OfflineCheck"
        self.tiles = tiles.get_name()


def _hex(value: float | None, norm) -> str:
    if value is None or pd.isna(value):
        return HIDDEN_FILL
    return colors.to_hex(CMAP(norm(value)))


def _num(row, col: str) -> str:
    v = row.get(col)
    return HIDDEN if v is None or pd.isna(v) else fmt_int(v)


def _popup(row, kind: str, period: Period, plan: pd.DataFrame | None, buffer_m: float) -> str:
    """The pop-up HTML of one junction or cell (suppressed counts shown as 'skjult')."""
    esc = html.escape
    if kind == "junction":
        title = f"{int(row['rank_in_kommune'])}. {esc(str(row.get('vejnavne') or row['junction_id']))}"
    else:
        title = f"Celle {esc(row['cell_id'])} (100 m)"
    users = [f"{label} {_num(row, col)}" for col, label in ROAD_USER_COLUMNS.items()
             if pd.isna(row.get(col)) or row.get(col, 0) > 0]
    score = HIDDEN if pd.isna(row.get("score")) else f"{row['score']:.0f}"
    parts = [
        f"<b>{title}</b>",
        f"Periode: {period.label}; rang i kommunen: {int(row['rank_in_kommune'])}",
        f"Uheld: {_num(row, 'n_accidents')}; tilskadekomne: {_num(row, 'n_casualties')}",
        f"Dræbte {_num(row, 'n_killed')}, alvorligt {_num(row, 'n_serious')}, "
        f"lettere {_num(row, 'n_slight')}, ukendt {_num(row, 'n_unknown')}",
        f"Kendt af politiet: {_num(row, 'n_police')}; kun fra skadestue: {_num(row, 'n_er_only')}",
        "Trafikanter: " + (", ".join(users) if users else "–"),
        f"Alvorlighedsvægtet score: {score}",
    ]
    if kind == "junction" and plan is not None and row["junction_id"] in plan.index:
        measure = plan.loc[row["junction_id"]]  # only hotspots are checked against the plan
        if not pd.isna(measure["tiltag_id"]):
            year = "" if pd.isna(measure["tiltag_year"]) else f", {int(measure['tiltag_year'])}"
            parts.append(
                f"Tiltag i planen: {esc(str(measure['tiltag_navn'] or measure['tiltag_id']))} "
                f"({esc(str(measure['tiltag_type'] or ''))}, {esc(str(measure['tiltag_status'] or ''))}{year}; "
                f"{measure['distance_m']:.0f} m)"
            )
        else:
            parts.append(f"<b>Intet tiltag i planen inden for {buffer_m:g} m</b>")
    return "<br>".join(parts)


def _features(frame: gpd.GeoDataFrame, props: dict[str, list]) -> dict:
    """A GeoJSON FeatureCollection (WGS84, 6 decimals) with the given properties."""
    geo = frame.geometry.to_crs(WGS84)
    features = []
    for i, geom in enumerate(geo):
        features.append({
            "type": "Feature",
            "geometry": json.loads(json.dumps(geom.__geo_interface__, default=float),
                                   parse_float=lambda s: round(float(s), 6)),
            "properties": {k: v[i] for k, v in props.items()},
        })
    return {"type": "FeatureCollection", "features": features}


def render_html(*, bg: Background, period: Period, title: str, junctions: gpd.GeoDataFrame,
                cells: gpd.GeoDataFrame, plan: pd.DataFrame | None, buffer_m: float, k: int,
                out: Path) -> HtmlMapResult:
    """Write the interactive map of one kommune and period to ``out``."""
    jn = junctions[junctions["n_accidents"].isna() | (junctions["n_accidents"] > 0)].reset_index(drop=True)
    cells = cells[cells["n_accidents"].isna() | (cells["n_accidents"] > 0)].reset_index(drop=True)
    norm_j = colors.Normalize(0.0, max(float(jn["score"].max()) if jn["score"].notna().any() else 1.0, 1.0))
    norm_c = colors.Normalize(0.0, max(float(cells["score"].max()) if cells["score"].notna().any() else 1.0, 1.0))

    bounds = gpd.GeoSeries([bg.boundary], crs=bg.roads.crs).to_crs(WGS84).total_bounds
    fmap = OfflineMap(location=[(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2], zoom_start=11,
                      tiles=None, control_scale=True)
    tiles = folium.TileLayer("OpenStreetMap", name="Baggrundskort (OpenStreetMap, kræver internet)",
                             control=True)
    tiles.add_to(fmap)

    # Road network from the gazetteer: one multi-line per class, so it is there offline.
    roads = bg.roads.copy()
    roads["geometry"] = roads.geometry.simplify(2.0)
    road_groups = roads.dissolve(by="major").reset_index()
    road_fc = _features(road_groups, {"major": [bool(v) for v in road_groups["major"]]})
    folium.GeoJson(
        road_fc, name="Vejnet (gazetteer)", interactive=False,
        style_function=lambda f: {"color": "#777777" if f["properties"]["major"] else "#aaaaaa",
                                  "weight": 2.5 if f["properties"]["major"] else 1.0, "opacity": 0.9,
                                  "className": "sk-road"},
    ).add_to(fmap)

    boundary = gpd.GeoDataFrame(geometry=gpd.GeoSeries([bg.boundary], crs=bg.roads.crs))
    folium.GeoJson(
        _features(boundary, {"navn": [bg.navn]}), name="Kommunegrænse", interactive=False,
        style_function=lambda f: {"color": "#000000", "weight": 2, "fill": False, "className": "sk-boundary"},
    ).add_to(fmap)

    if len(cells):
        cell_fc = _features(cells, {
            "popup": [_popup(r, "cell", period, None, buffer_m) for _, r in cells.iterrows()],
            "fill": [_hex(v, norm_c) for v in cells["score"]],
        })
        folium.GeoJson(
            cell_fc, name="100 m-celler (score)",
            style_function=lambda f: {"color": "#444444", "weight": 0.4, "fill": True,
                                      "fillColor": f["properties"]["fill"], "fillOpacity": 0.65, "className": "sk-cell"},
            popup=folium.GeoJsonPopup(fields=["popup"], labels=False, max_width=360),
            show=False,
        ).add_to(fmap)

    if len(jn):
        n = jn["n_casualties"].astype(float).fillna(1.0).clip(lower=1.0)
        jn_fc = _features(jn, {
            "popup": [_popup(r, "junction", period, plan, buffer_m) for _, r in jn.iterrows()],
            "name": [str(v or "") for v in jn["vejnavne"]],
            "fill": [_hex(v, norm_j) for v in jn["score"]],
            "radius": [float(r) for r in np.round(3.0 + 1.6 * np.sqrt(n), 1)],
        })
        folium.GeoJson(
            jn_fc, name="Vejkryds (score og antal)",
            marker=folium.CircleMarker(radius=5),
            style_function=lambda f: {"radius": f["properties"]["radius"], "color": "#000000", "weight": 1,
                                      "fill": True, "fillColor": f["properties"]["fill"], "fillOpacity": 0.9,
                                      "className": "sk-junction"},
            popup=folium.GeoJsonPopup(fields=["popup"], labels=False, max_width=360),
            tooltip=folium.GeoJsonTooltip(fields=["name"], labels=False),
        ).add_to(fmap)

    top = jn.sort_values("rank_in_kommune").head(10)
    if len(top):  # open on the top places; zoom out for the whole kommune
        tb = top.geometry.buffer(400).to_crs(WGS84).total_bounds
        fmap.fit_bounds([[tb[1], tb[0]], [tb[3], tb[2]]])
    else:
        fmap.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.add_child(_OfflineCheck(tiles))

    root = fmap.get_root()
    js, css = _leaflet_assets()
    root.header.add_child(Element(f"<style>{css}</style>\n<script>{js}</script>"), name="leaflet_inline", index=0)
    root.header.add_child(Element(f"<title>{html.escape(title)}</title>"), name="sk_title")
    gradient = ", ".join(colors.to_hex(CMAP(v)) for v in np.linspace(0, 1, 6))
    root.header.add_child(Element(_PAGE_CSS.replace("GRADIENT", gradient)), name="sk_css")
    root.html.add_child(Element(
        f'<div class="sk-panel"><b>{html.escape(title)}</b><br>'
        f"Vejkryds farvet efter alvorlighedsvægtet score (dræbt ×10, alvorligt ×5, let ×1), "
        f"størrelse efter antal tilskadekomne; grå: score skjult (små tal). Klik for detaljer.<br>"
        f'<span class="sk-grad"></span> 0 – {norm_j.vmax:.0f} (score)<br>'
        f"<small>{SOURCE_LINE}. Tal fra 1 til {k - 1}, hvor skadestuedata indgår, er skjult.</small></div>"
        f'<div id="sk-offline-note" class="sk-note">{OFFLINE_NOTE}: vejnet, kommunegrænse og '
        f"skadesteder vises uden baggrund.</div>"
    ), name="sk_panel")
    out.parent.mkdir(parents=True, exist_ok=True)
    fmap.save(str(out))
    text = out.read_text(encoding="utf-8")
    remote = re.findall(r"<(?:script|link)[^>]+(?:src|href)=\"(https?://[^\"]+)\"", text)
    if remote:
        raise RuntimeError(f"the HTML map links resources from the net ({remote}); it must work offline")
    return HtmlMapResult(path=out, n_cells=len(cells), n_junctions=len(jn), n_roads=len(road_groups),
                         n_boundary=1)


_PAGE_CSS = """<style>
.sk-panel { position: absolute; bottom: 28px; right: 10px; z-index: 1000; background: rgba(255,255,255,0.92);
  padding: 6px 9px; max-width: 420px; font: 12px/1.35 sans-serif; border: 1px solid #999; border-radius: 4px; }
.sk-note { display: none; position: absolute; top: 10px; left: 55px; z-index: 1000; background: #fff3cd;
  color: #333; padding: 6px 10px; font: bold 13px sans-serif; border: 1px solid #c9a227; border-radius: 4px; }
.sk-grad { display: inline-block; width: 120px; height: 10px; border: 1px solid #666; vertical-align: middle;
  background: linear-gradient(to right, GRADIENT); }
</style>"""
