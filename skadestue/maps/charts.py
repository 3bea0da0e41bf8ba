"""Small report charts as PNG data URIs (grey-scale readable: dark/light greys, hatching)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

LIGHT, DARK, HATCH_FILL = "#b8b8b8", "#2b2b2b", "#f0f0f0"
DPI = 110


def _fig(width: float = 6.4, height: float = 2.8) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _style(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)
    ax.grid(axis="y", color="#dddddd", lw=0.6)
    ax.set_axisbelow(True)


def bars(labels: list[str], total: pd.Series, part: pd.Series | None, *, title: str,
         total_label: str, part_label: str | None, rotate: int = 0, width: float = 6.4) -> str:
    """Bars of ``total`` with the dark ``part`` inside; hidden (NaN) values hatched + 'skjult'."""
    fig = _fig(width)
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    t = total.to_numpy(dtype=float)
    hidden = np.isnan(t)
    top = np.nanmax(t) if (~hidden).any() else 1.0
    ax.bar(x[~hidden], t[~hidden], color=LIGHT, edgecolor="#555555", lw=0.4, label=total_label)
    if part is not None:
        p = part.to_numpy(dtype=float)
        ok = ~np.isnan(p) & ~hidden
        ax.bar(x[ok], p[ok], color=DARK, width=0.55, label=part_label)
    if hidden.any():
        ax.bar(x[hidden], np.full(hidden.sum(), 0.06 * top), color=HATCH_FILL, edgecolor="#555555",
               hatch="///", lw=0.4, label="skjult (små tal)")
    ax.set_xticks(x, labels, rotation=rotate, ha="right" if rotate else "center", fontsize=8)
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(fontsize=7.5, frameon=False, loc="upper right")
    ax.set_ylim(0, top * 1.18 if top > 0 else 1)
    _style(ax)
    return _uri(fig)


def share_lines(x_labels: list[str], series: dict[str, pd.Series], *, title: str) -> str:
    """Police-known share (0..1) per series; hidden points (NaN) left out."""
    fig = _fig(6.4, 2.6)
    ax = fig.add_subplot()
    styles = [("-", "o", DARK), ("--", "s", "#555555"), (":", "^", "#888888"), ("-.", "D", "#aaaaaa")]
    x = np.arange(len(x_labels))
    for (name, s), (ls, marker, color) in zip(series.items(), styles):
        ax.plot(x, 100 * s.to_numpy(dtype=float), ls=ls, marker=marker, color=color, label=name, lw=1.4, ms=4)
    ax.set_xticks(x, x_labels, fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("% kendt af politiet", fontsize=8)
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(fontsize=7.5, frameon=False, ncol=2)
    _style(ax)
    return _uri(fig)


def lines(x_labels: list[str], series: dict[str, pd.Series], *, title: str, ylabel: str) -> str:
    """Counts per year for a few groups (hidden points left out)."""
    fig = _fig(6.4, 2.6)
    ax = fig.add_subplot()
    styles = [("-", "o", DARK), ("--", "s", "#555555"), (":", "^", "#888888")]
    x = np.arange(len(x_labels))
    for (name, s), (ls, marker, color) in zip(series.items(), styles):
        ax.plot(x, s.to_numpy(dtype=float), ls=ls, marker=marker, color=color, label=name, lw=1.4, ms=4)
    ax.set_xticks(x, x_labels, fontsize=8)
    ax.set_ylim(bottom=0)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(fontsize=7, frameon=False, loc="lower left")
    _style(ax)
    return _uri(fig)


def paired_bars(labels: list[str], now: pd.Series, before: pd.Series, *, now_label: str,
                before_label: str, title: str) -> str:
    """Two bars per category (this half-year dark, the same half a year before light)."""
    fig = _fig(9.5, 2.6)
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    w = 0.38
    for offset, values, color, label in ((-w / 2, before, LIGHT, before_label), (w / 2, now, DARK, now_label)):
        v = values.to_numpy(dtype=float)
        ok = ~np.isnan(v)
        ax.bar(x[ok] + offset, v[ok], width=w, color=color, edgecolor="#555555", lw=0.4, label=label)
        if (~ok).any():
            ax.bar(x[~ok] + offset, np.ones((~ok).sum()), width=w, color=HATCH_FILL, hatch="///",
                   edgecolor="#555555", lw=0.4)
    handles = [Patch(color=LIGHT, label=before_label), Patch(color=DARK, label=now_label)]
    ax.legend(handles=handles, fontsize=7.5, frameon=False)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_title(title, fontsize=10, loc="left")
    _style(ax)
    return _uri(fig)
