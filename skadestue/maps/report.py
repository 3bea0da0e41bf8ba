"""The annual traffic analysis of a kommune and the kredsråd's half-year status (HTML + PDF).

Both are single self-contained HTML files (charts embedded as PNG data URIs, no links to the
net) in Danish; a PDF is printed from them with headless Chromium when one is installed.
Hotspot counts come from the lokalråd tier; the casualty statistics are aggregated from the
published casualty layer and suppressed with the same k before anything is written.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import logging
import re
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import geopandas as gpd
import pandas as pd
from jinja2 import Environment

from skadestue.maps import charts
from skadestue.maps.data import SOURCE_LINE, Period, find_chromium, parse_half  # noqa: F401 (re-exported)
from skadestue.maps.stats import FOCUS_GROUPS, TOTAL, CasualtyStats, frame_text
from skadestue.maps.suppress import HIDDEN, HIDDEN_NOTE, Table, fmt_int

log = logging.getLogger(__name__)

_ENV = Environment(autoescape=False, keep_trailing_newline=True)


def _template(name: str):
    base = resources.files("skadestue.maps") / "templates"
    return _ENV.from_string((base / name).read_text(encoding="utf-8"))


def _css() -> str:
    return (resources.files("skadestue.maps") / "templates" / "base.css").read_text(encoding="utf-8")


def _html_table(frame: pd.DataFrame, index_label: str | None = None) -> str:
    """A DataFrame as an HTML table (escaped), first column left-aligned."""
    frame = frame.copy()
    if index_label is not None:
        frame.index.name = index_label
        frame = frame.reset_index()
    return frame.to_html(index=False, escape=True, classes="t", border=0, na_rep="–")


def _pct_change(now: float, before: float) -> str:
    if pd.isna(now) or pd.isna(before) or before == 0:
        return "–"
    return f"{100 * (now - before) / before:+.0f} %".replace("-", "−")


# --- PDF ---------------------------------------------------------------------------------------


def html_to_pdf(html_path: Path, pdf_path: Path, timeout: float = 120.0) -> Path | None:
    """Print ``html_path`` to ``pdf_path`` with headless Chromium; None when there is none."""
    chromium = find_chromium()
    if chromium is None:
        log.warning("no Chromium found: %s written as HTML only (install the Debian package "
                    "`chromium` for the PDF)", html_path.name)
        return None
    with tempfile.TemporaryDirectory(prefix="skadestue-chromium-") as profile:
        cmd = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-pdf-header-footer", f"--user-data-dir={profile}",
            f"--print-to-pdf={pdf_path}", html_path.resolve().as_uri(),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not pdf_path.exists() or pdf_path.stat().st_size == 0:
        raise RuntimeError(
            f"Chromium could not print {html_path} to PDF (exit {proc.returncode}): "
            f"{proc.stderr.strip()[-500:]}. The HTML is there; open it in a browser and print it instead."
        )
    return pdf_path


def pdf_page_count(path: Path) -> int:
    """Pages of a PDF written by matplotlib or Chromium (counts /Type /Page objects)."""
    data = Path(path).read_bytes()
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))


# --- Annual report ------------------------------------------------------------------------------


@dataclass
class ReportInputs:
    """What the annual report of one kommune needs besides the casualty statistics."""

    kommunekode: str
    navn: str
    year: int
    top_period: Period
    junctions: gpd.GeoDataFrame  # lokalråd rows, top period
    plan: pd.DataFrame | None  # plan rows by junction_id (None: no plan)
    plan_loaded: bool
    buffer_m: float
    map_png: bytes | None
    run_id: str | None
    k: int


def _year_table(t: Table, years: list[int]) -> pd.DataFrame:
    out = frame_text(t, {"n": "Tilskadekomne", "n_killed": "Dræbte", "n_serious": "Alvorligt"})
    out.index = [str(y) for y in years]
    return out


def _top_table(jn: gpd.GeoDataFrame, plan: pd.DataFrame | None, n: int = 10) -> pd.DataFrame:
    top = jn[jn["n_accidents"].isna() | (jn["n_accidents"] > 0)].sort_values(
        ["rank_in_kommune", "junction_id"]).head(n)

    def num(v) -> str:
        return HIDDEN if pd.isna(v) else fmt_int(v)

    rows = []
    for r in top.itertuples():
        share = "skjult" if pd.isna(r.n_police) or pd.isna(r.n_casualties) or not r.n_casualties else \
            f"{100 * r.n_police / r.n_casualties:.0f} %"
        row = {
            "Rang": int(r.rank_in_kommune), "Vejkryds": r.vejnavne or r.junction_id, "Uheld": num(r.n_accidents),
            "Tilskadekomne": num(r.n_casualties), "Dræbte": num(r.n_killed), "Alvorligt": num(r.n_serious),
            "Cyklister": num(r.n_cyclist), "Fodgængere": num(r.n_pedestrian), "Kendt af politiet": share,
            "Score": HIDDEN if pd.isna(r.score) else f"{r.score:.0f}",
        }
        if plan is not None:
            m = plan.loc[r.junction_id] if r.junction_id in plan.index else None
            if m is None:  # not a hotspot by the rule or the excess test: not checked
                row["Tiltag i planen"] = "–"
            elif pd.isna(m["tiltag_id"]):
                row["Tiltag i planen"] = "intet (hul i planen)"
            else:
                row["Tiltag i planen"] = f"{m['tiltag_navn'] or m['tiltag_id']} ({m['tiltag_status'] or ''})"
        rows.append(row)
    return pd.DataFrame(rows)


def render_annual(stats: CasualtyStats, inp: ReportInputs, out_html: Path, *, pdf: bool = True) -> list[Path]:
    """Write the annual report (HTML, and PDF when Chromium is there). Returns the paths."""
    year, kode = inp.year, inp.kommunekode
    years = list(range(year - 4, year + 1))
    by_year = stats.by_year(kode, years)
    labels = [str(y) for y in years]
    now = by_year.counts.loc[year]
    prev = by_year.shown("n").get(year - 1)
    avg = by_year.shown("n").loc[years[:-1]].mean()
    n_now = by_year.shown("n").loc[year]
    key = {
        "n": HIDDEN if pd.isna(n_now) else fmt_int(now["n"]),
        "change": "" if pd.isna(prev) else f" ({_pct_change(n_now, prev)} mod {year - 1})",
        "ks": HIDDEN if by_year.hidden.loc[year, "n_ks"] else fmt_int(now["n_ks"]),
        "share": "–" if now["n"] == 0 else (HIDDEN if pd.isna(by_year.police_share().loc[year])
                                           else f"{100 * by_year.police_share().loc[year]:.0f} %"),
        "avg": "–" if pd.isna(avg) else f"{avg:.0f}",
    }
    total_hidden = by_year.hidden.loc[year]
    road = stats.breakdown(kode, year, "road_user", total_hidden)
    age = stats.breakdown(kode, year, "age_band", total_hidden)
    hour = stats.breakdown(kode, year, "hour", total_hidden)
    week = stats.breakdown(kode, year, "weekday", total_hidden)
    breakdowns = {"road_user": road, "age_band": age}

    def cats(t: Table) -> Table:  # without the total row
        return Table(t.counts.drop(index=TOTAL), t.hidden.drop(index=TOTAL))

    focus_tables, focus_series, focus_share = [], {}, {}
    for _key, title, cond, dimension, members in FOCUS_GROUPS:
        force = None
        if dimension is not None:
            hidden = breakdowns[dimension].hidden.loc[list(members), ["n", "n_police", "n_er_only"]].any(axis=0)
            force = pd.DataFrame([hidden], index=[year])
        t = stats.by_year(kode, years, cond, force=force)
        focus_tables.append({"title": title, "table": _html_table(
            _year_table(t, years), "År")})
        short = title.split(" (")[0]
        focus_series[short] = t.shown("n")
        focus_share[short] = t.police_share()

    rc, ac, hc, wc = cats(road), cats(age), cats(hour), cats(week)
    hc_known = Table(hc.counts.drop(index="ukendt"), hc.hidden.drop(index="ukendt"))
    chart = {
        "trend": charts.bars(labels, by_year.shown("n"), by_year.shown("n_ks"), title="Tilskadekomne pr. år",
                             total_label="alle tilskadekomne", part_label="dræbte og alvorligt"),
        "road_user": charts.bars(list(rc.counts.index), rc.shown("n"), rc.shown("n_police"),
                                 title=f"Tilskadekomne efter trafikanttype, {year}", total_label="alle",
                                 part_label="kendt af politiet", rotate=30),
        "age": charts.bars(list(ac.counts.index), ac.shown("n"), ac.shown("n_police"),
                           title=f"Tilskadekomne efter alder, {year}", total_label="alle",
                           part_label="kendt af politiet"),
        "hour": charts.bars(list(hc_known.counts.index), hc_known.shown("n"), None,
                            title=f"Tilskadekomne efter tidspunkt på døgnet (time), {year}",
                            total_label="alle", part_label=None),
        "weekday": charts.bars(list(wc.counts.index), wc.shown("n"), None,
                               title=f"Tilskadekomne efter ugedag, {year}", total_label="alle", part_label=None),
        "share": charts.share_lines(labels, {"alle": by_year.police_share(), **focus_share},
                                    title="Andel af de tilskadekomne, som politiet kender"),
        "focus": charts.lines(labels, focus_series, title="Fokusgrupper: tilskadekomne pr. år",
                              ylabel="tilskadekomne"),
    }
    tables = {
        "years": _html_table(_year_table(by_year, years), "År"),
        "road_user": _html_table(frame_text(road, {"n": "Tilskadekomne", "n_police": "Heraf kendt af politiet"}),
                                 "Trafikant"),
        "age": _html_table(frame_text(age, {"n": "Tilskadekomne", "n_police": "Heraf kendt af politiet"}),
                           "Alder"),
        "top": _html_table(_top_table(inp.junctions, inp.plan)),
    }
    plan_table, plan_text = None, ""
    if inp.plan is None:
        plan_text = ("Ingen trafiksikkerhedsplan er indlæst for perioden, så planens huller kan ikke vises. "
                     "Indlæs planens tiltag (`skadestue plan import`), så viser rapporten de højt rangerede "
                     "steder uden et tiltag i nærheden.")
    else:
        top = inp.junctions[inp.junctions["n_accidents"].isna() | (inp.junctions["n_accidents"] > 0)]
        top = top.sort_values("rank_in_kommune").head(20)
        gaps = [r for r in top.itertuples() if r.junction_id in inp.plan.index
                and bool(inp.plan.loc[r.junction_id, "gap"])]
        if gaps:
            plan_table = _html_table(pd.DataFrame([  # plan-gaps
                {"Rang": int(r.rank_in_kommune), "Vejkryds": r.vejnavne or r.junction_id,
                 "Tilskadekomne": HIDDEN if pd.isna(r.n_casualties) else fmt_int(r.n_casualties),
                 "Score": HIDDEN if pd.isna(r.score) else f"{r.score:.0f}"} for r in gaps]))
        else:
            plan_text = (f"Alle hotspot-vejkryds blandt de 20 højest rangerede har et tiltag i planen inden for "
                         f"{inp.buffer_m:g} m.")
    last = stats.last_date()
    page = _template("annual.html.j2").render(
        title=f"Trafikanalyse {year}, {inp.navn} Kommune", css=_css(), year=year, years=years,
        last_date=last.strftime("%d.%m.%Y") if last else "–", generated=dt.date.today().strftime("%d.%m.%Y"),
        run_id=inp.run_id, key=key, hidden_note=HIDDEN_NOTE.format(k=inp.k), charts=chart, tables=tables,
        focus=focus_tables, top_period=inp.top_period.label,
        rank_basis="kommunens rangering i hotspot-laget (alvorlighedsvægtet score m.m.)",
        map_uri=("data:image/png;base64," + base64.b64encode(inp.map_png).decode("ascii"))
        if inp.map_png else None,
        plan_table=plan_table, plan_text=plan_text, buffer_m=f"{inp.buffer_m:g}", source_line=SOURCE_LINE,
        k=inp.k, unplaced=stats.unplaced(dt.date(year, 1, 1), dt.date(year, 12, 31)),
    )
    out_html.parent.mkdir(parents=True, exist_ok=True)
    out_html.write_text(page, encoding="utf-8")
    written = [out_html]
    if pdf:
        made = html_to_pdf(out_html, out_html.with_suffix(".pdf"))
        if made:
            written.append(made)
    return written


# --- Kredsråd half-year status -------------------------------------------------------------------


def render_kredsraad(stats: CasualtyStats, *, half: str, kommuner: dict[str, str],
                     junctions: gpd.GeoDataFrame, top_period: Period, out_html: Path, k: int,
                     pdf: bool = True, top_n: int = 3) -> list[Path]:
    """One page for the kredsråd: each kommune's casualties and police-known share in the
    half-year against the same half a year before, and its top places."""
    start, end, label = parse_half(half)
    p_start, p_end = start.replace(year=start.year - 1), end.replace(year=end.year - 1)
    label_before = parse_half(f"{start.year - 1}H{1 if start.month == 1 else 2}")[2]
    codes = list(kommuner)
    now = stats.half_year(start, end, codes)
    before = stats.half_year(p_start, p_end, codes)
    names = {c: kommuner[c] for c in codes} | {TOTAL: "Politikredsen i alt"}
    rows = []
    for code in [*codes, TOTAL]:
        n_now, n_before = now.shown("n").loc[code], before.shown("n").loc[code]
        s_now, s_before = now.police_share().loc[code], before.police_share().loc[code]
        rows.append({
            "Kommune": names[code],
            label: now.text("n").loc[code],
            label_before: before.text("n").loc[code],
            "Ændring": _pct_change(n_now, n_before),
            f"Dræbte+alvorligt {label}": now.text("n_ks").loc[code],
            f"Kendt af politiet {label}": "–" if now.counts.loc[code, "n"] == 0 else
            (HIDDEN if pd.isna(s_now) else f"{100 * s_now:.0f} %"),
            f"Kendt af politiet {label_before}": "–" if before.counts.loc[code, "n"] == 0 else
            (HIDDEN if pd.isna(s_before) else f"{100 * s_before:.0f} %"),
        })
    table = pd.DataFrame(rows)
    chart = charts.paired_bars(
        [kommuner[c] for c in codes], now.shown("n").loc[codes], before.shown("n").loc[codes],
        now_label=label, before_label=label_before, title="Tilskadekomne pr. kommune")
    top_rows = []
    for code in codes:
        mine = junctions[(junctions["kommunekode"] == code)
                         & (junctions["n_accidents"].isna() | (junctions["n_accidents"] > 0))]
        mine = mine.sort_values(["rank_in_kommune", "junction_id"]).head(top_n)
        places = [
            f"{i}. {r.vejnavne or r.junction_id} ({HIDDEN if pd.isna(r.n_casualties) else fmt_int(r.n_casualties)})"
            for i, r in enumerate(mine.itertuples(), start=1)
        ]
        top_rows.append({"Kommune": kommuner[code], "Vejkryds (tilskadekomne)": " · ".join(places) or "–"})
    page = _template("kredsraad.html.j2").render(
        title=f"Trafikskader i Syd- og Sønderjyllands Politikreds, {label}", css=_css(),
        period_now=label, period_before=label_before, generated=dt.date.today().strftime("%d.%m.%Y"),
        table=_html_table(table), chart=chart, top_period=top_period.label,
        top_table=_html_table(pd.DataFrame(top_rows)), source_line=SOURCE_LINE,
        hidden_note=HIDDEN_NOTE.format(k=k), unplaced=stats.unplaced(start, end),
    )
    out_html.parent.mkdir(parents=True, exist_ok=True)
    out_html.write_text(page, encoding="utf-8")
    written = [out_html]
    if pdf:
        made = html_to_pdf(out_html, out_html.with_suffix(".pdf"))
        if made:
            written.append(made)
    return written


def downscale_png(path: Path, width: int = 900) -> bytes:
    """A smaller copy of a PNG (the A4 map) for embedding in a report."""
    from PIL import Image

    with Image.open(path) as img:
        ratio = width / img.size[0]
        small = img.convert("RGB").resize((width, int(img.size[1] * ratio)), Image.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, format="PNG", optimize=True)
    return buf.getvalue()

