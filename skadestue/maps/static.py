"""The static map (A4 portrait, PNG at 200 dpi and PDF) of one kommune and period.

Layers: the road network from the gazetteer (grey, main roads darker), the municipal
boundary, the junctions of the lokalråd tier as circles coloured by the severity-weighted
score (a sequential colormap monotone in lightness, so it reads in grey-scale print) and
sized by the number of casualties, numbered labels for the top-ranked places, an inset of the
area around them, a Danish legend, title, period, scale bar, north arrow and the source line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import matplotlib
import numpy as np
import pandas as pd
from matplotlib import colors, patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from skadestue.maps.data import SOURCE_LINE, Background, Period
from skadestue.maps.suppress import HIDDEN, fmt_int

log = logging.getLogger(__name__)

A4_PORTRAIT = (8.27, 11.69)
DPI = 200
#: Light (low score) to dark (high score); monotone in lightness, so grey-scale keeps the order.
CMAP = colors.LinearSegmentedColormap.from_list(
    "skadestue_score", matplotlib.colormaps["magma_r"](np.linspace(0.12, 0.92, 256))
)
TOP_N = 10
HIDDEN_FILL = "#e4e4e4"
#: Places whose score is suppressed: a grey diamond, told apart from the circles by shape too.
HIDDEN_MARKER = "D"
HALO = [patheffects.withStroke(linewidth=2.5, foreground="white")]


@dataclass
class MapLayers:
    """Everything one map draws."""

    kommunekode: str
    navn: str
    period: Period
    background: Background
    junctions: gpd.GeoDataFrame  # lokalråd rows of the kommune and period
    k: int

    @property
    def title(self) -> str:
        return f"Trafikskader {self.period.label}, {self.navn} Kommune"


def top_places(junctions: gpd.GeoDataFrame, n: int = TOP_N) -> gpd.GeoDataFrame:
    """The ``n`` best-ranked junctions with casualties."""
    mine = junctions[junctions["n_accidents"].isna() | (junctions["n_accidents"] > 0)]
    return mine.sort_values(["rank_in_kommune", "junction_id"]).head(n)


def short_place_line(row) -> str:
    """'Jernbanegade / Storegade: 29 tilskadekomne, score 90' (cut to fit the A4 column)."""
    name = str(row["vejnavne"] or row["junction_id"])
    if len(name) > 34:
        name = name[:33] + "…"
    n = HIDDEN if pd.isna(row["n_casualties"]) else fmt_int(row["n_casualties"])
    score = HIDDEN if pd.isna(row["score"]) else f"{row['score']:.0f}"
    return f"{name}: {n} tilskadekomne, score {score}"


def render_static(layers: MapLayers, png: Path, pdf: Path | None = None) -> list[Path]:
    """Draw the map; write ``png`` (200 dpi) and ``pdf``. Returns the paths written."""
    fig = Figure(figsize=A4_PORTRAIT, dpi=DPI)
    FigureCanvasAgg(fig)
    bg = layers.background
    jn = layers.junctions
    jn = jn[jn["n_accidents"].isna() | (jn["n_accidents"] > 0)]
    scores = jn["score"].astype(float)
    vmax = max(float(np.nanmax(scores)) if scores.notna().any() else 1.0, 1.0)
    norm = colors.Normalize(vmin=0.0, vmax=vmax)
    top = top_places(jn)

    fig.text(0.05, 0.965, layers.title, fontsize=17, weight="bold", va="top")
    fig.text(0.05, 0.937, f"Tilskadekomne ved vejkryds {layers.period.label}, politiets og skadestuernes "
             "registreringer tilsammen.\nFarve: alvorlighedsvægtet score. Størrelse: antal tilskadekomne. "
             "Tal: rang i kommunen.", fontsize=8.5, va="top", linespacing=1.4)

    main = fig.add_axes((0.05, 0.40, 0.90, 0.505))
    inset_bounds = _inset_bounds(top.head(5), bg)
    _draw(main, bg, jn, norm, top, bg.boundary.bounds, label_size=8, skip_labels_in=inset_bounds)
    _scale_bar(main)
    _north_arrow(main)

    if inset_bounds is not None:
        inset = fig.add_axes((0.05, 0.085, 0.46, 0.29))
        _draw(inset, bg, jn, norm, top, inset_bounds, label_size=9, detail=True)
        _scale_bar(inset)
        inset.set_title("Udsnit: de højest rangerede steder", fontsize=9, loc="left")
        x0, y0, x1, y1 = inset_bounds
        main.add_patch(matplotlib.patches.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.0,
                                                    ls="--", ec="black", zorder=6))

    _legend(fig, norm, jn, layers.k)
    _top_list(fig, top, layers.k)
    fig.text(0.05, 0.03, f"{SOURCE_LINE}.\nVejnet og kommunegrænse: gazetteer (DAGI/GeoDanmark). "
             f"Tal fra 1 til {layers.k - 1}, hvor skadestuedata indgår, er skjult (lokalrådsudgaven).",
             fontsize=7, color="#333333", va="bottom", linespacing=1.4)
    fig.text(0.95, 0.03, "ETRS89 / UTM zone 32N", fontsize=7, color="#333333", ha="right", va="bottom")

    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=DPI)
    written = [png]
    if pdf is not None:
        fig.savefig(pdf)
        written.append(pdf)
    return written


def _draw(ax, bg: Background, jn: gpd.GeoDataFrame, norm, top: gpd.GeoDataFrame, bounds, *,
          label_size: float, detail: bool = False, skip_labels_in=None) -> None:
    x0, y0, x1, y1 = bounds
    pad = 0.03 * max(x1 - x0, y1 - y0)
    ax.set_xlim(x0 - pad, x1 + pad)
    ax.set_ylim(y0 - pad, y1 + pad)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_linewidth(0.6)
    for major, color, width in ((False, "#c8c8c8", 0.5 if not detail else 0.8),
                                (True, "#8a8a8a", 0.9 if not detail else 1.4)):
        lines = bg.roads.geometry[bg.roads["major"] == major]
        segs = _segments(lines)
        if segs:
            ax.add_collection(LineCollection(segs, colors=color, linewidths=width, zorder=1))
    for poly in _polygons(bg.boundary):
        xs, ys = poly.exterior.xy
        ax.plot(xs, ys, color="black", lw=1.2, zorder=2)

    sizes = _sizes(jn["n_casualties"], detail)
    shown = jn["score"].notna()
    order = np.argsort(jn["score"].fillna(-1).to_numpy())  # highest on top
    xy = np.column_stack([jn.geometry.x.to_numpy(), jn.geometry.y.to_numpy()])
    hidden_idx = [i for i in order if not shown.iloc[i]]
    shown_idx = [i for i in order if shown.iloc[i]]
    if hidden_idx:
        ax.scatter(xy[hidden_idx, 0], xy[hidden_idx, 1], s=sizes[hidden_idx], marker=HIDDEN_MARKER,
                   facecolors=HIDDEN_FILL, edgecolors="black", linewidths=0.6, zorder=3)
    if shown_idx:
        ax.scatter(xy[shown_idx, 0], xy[shown_idx, 1], s=sizes[shown_idx],
                   c=jn["score"].to_numpy()[shown_idx], cmap=CMAP, norm=norm, edgecolors="black",
                   linewidths=0.5, zorder=4)
    for rank, row in enumerate(top.itertuples(), start=1):
        x, y = row.geometry.x, row.geometry.y
        if not (x0 - pad <= x <= x1 + pad and y0 - pad <= y <= y1 + pad):
            continue
        if skip_labels_in is not None and _inside(x, y, skip_labels_in):
            continue  # labelled in the inset
        ax.annotate(str(rank), (x, y), xytext=(6, 6), textcoords="offset points", fontsize=label_size,
                    weight="bold", zorder=7, path_effects=HALO)


def _inside(x: float, y: float, bounds) -> bool:
    return bounds[0] <= x <= bounds[2] and bounds[1] <= y <= bounds[3]


def _sizes(n: pd.Series, detail: bool) -> np.ndarray:
    v = n.astype(float).fillna(1.0).clip(lower=1.0).to_numpy()
    return (9.0 if detail else 5.0) * np.sqrt(v) ** 2 / 2.0 + 6.0


def _segments(lines: gpd.GeoSeries) -> list[np.ndarray]:
    segs: list[np.ndarray] = []
    for geom in lines:
        if geom is None or geom.is_empty:
            continue
        parts = geom.geoms if hasattr(geom, "geoms") else [geom]
        segs.extend(np.asarray(p.coords)[:, :2] for p in parts if len(p.coords) > 1)
    return segs


def _polygons(geom) -> list:
    if geom is None:
        return []
    return list(geom.geoms) if hasattr(geom, "geoms") else [geom]


def _inset_bounds(top: gpd.GeoDataFrame, bg: Background):
    """A square around the top places (at least 2.5 km across), None when there are none."""
    if top.empty:
        return None
    x0, y0, x1, y1 = top.total_bounds
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = max(x1 - x0, y1 - y0, 2500.0) / 2 * 1.15
    return (cx - half * 1.35, cy - half, cx + half * 1.35, cy + half)


def _nice_length(span: float) -> float:
    target = span / 5
    for v in (50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 25000, 50000):
        if v >= target:
            return float(v)
    return 100000.0


def _scale_bar(ax) -> None:
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    length = _nice_length(x1 - x0)
    bx, by = x0 + 0.04 * (x1 - x0), y0 + 0.04 * (y1 - y0)
    h = 0.012 * (y1 - y0)
    for i in range(2):
        ax.add_patch(matplotlib.patches.Rectangle(
            (bx + i * length / 2, by), length / 2, h, facecolor="black" if i == 0 else "white",
            edgecolor="black", lw=0.6, zorder=8))
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.text(bx, by + 1.6 * h, "0", fontsize=7, ha="center", zorder=8, path_effects=HALO)
    ax.text(bx + length, by + 1.6 * h, label, fontsize=7, ha="center", zorder=8, path_effects=HALO)


def _north_arrow(ax) -> None:
    ax.annotate("N", xy=(0.95, 0.95), xytext=(0.95, 0.86), xycoords="axes fraction", ha="center",
                va="center", fontsize=11, weight="bold", zorder=8,
                arrowprops=dict(arrowstyle="-|>", color="black", lw=1.5))


def _legend(fig: Figure, norm, jn: gpd.GeoDataFrame, k: int) -> None:
    cax = fig.add_axes((0.56, 0.345, 0.36, 0.012))
    cb = fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=CMAP), cax=cax, orientation="horizontal")
    cb.ax.tick_params(labelsize=7)
    cb.set_label("Alvorlighedsvægtet score (dræbt ×10, alvorligt ×5, let ×1)", fontsize=7.5)
    lax = fig.add_axes((0.56, 0.255, 0.38, 0.06))
    lax.axis("off")
    n_max = jn["n_casualties"].astype(float).max()
    steps = [v for v in (3, 10, 25, 50, 100) if not np.isnan(n_max) and v <= max(n_max, 3)][-3:]
    handles = [
        Line2D([], [], ls="", marker="o", markersize=np.sqrt(_sizes(pd.Series([v]), False)[0]),
               markerfacecolor="#bbbbbb", markeredgecolor="black", label=f"{v} tilskadekomne")
        for v in steps
    ]
    handles += [
        Line2D([], [], ls="", marker=HIDDEN_MARKER, markersize=5.5, markerfacecolor=HIDDEN_FILL,
               markeredgecolor="black", label="Score skjult (små tal)"),
        Line2D([], [], color="#8a8a8a", lw=1.2, label="Hovedvej"),
        Line2D([], [], color="#c8c8c8", lw=0.8, label="Anden vej"),
        Line2D([], [], color="black", lw=1.2, label="Kommunegrænse"),
    ]
    lax.legend(handles=handles, loc="upper left", ncol=2, fontsize=7, frameon=False, title="Signaturforklaring",
               title_fontsize=8, alignment="left")


def _top_list(fig: Figure, top: gpd.GeoDataFrame, k: int) -> None:
    y = 0.225
    fig.text(0.56, y, "De højest rangerede vejkryds", fontsize=8.5, weight="bold", va="top")
    if top.empty:
        fig.text(0.56, y - 0.02, "Ingen vejkryds med tilskadekomne i perioden.", fontsize=7.5, va="top")
        return
    for rank, (_, row) in enumerate(top.iterrows(), start=1):
        y -= 0.0145
        fig.text(0.56, y, f"{rank}.", fontsize=7, va="top", weight="bold")
        fig.text(0.58, y, short_place_line(row), fontsize=7, va="top")
