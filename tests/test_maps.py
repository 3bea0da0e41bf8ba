"""Maps and reports for the lokalråd and kredsråd (issue 8) on a demo warehouse.

The demo night is built without Prefect (the package functions the flow's tasks call), then
every output is rendered and checked: image size and content, PDF pages, the HTML map in a
real headless Chromium (system packages `chromium` + `chromium-driver`, driven over the
WebDriver protocol with the standard library), the report's top place against the demo's
planted hotspots, and the suppression of small ER-derived counts.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from helpers import load_and_geocode
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="no headless browser: install the Debian packages `chromium chromium-driver` (.ci/run does)",
)


@pytest.fixture(scope="module")
def published(tmp_path_factory, demo_setup):
    """A demo region (2020-2024), run through every stage up to publication, no Prefect."""
    from skadestue import db
    from skadestue.hotspots import build_hotspots
    from skadestue.link import link_casualties
    from skadestue.publish import publish_layers

    paths, settings, _ = demo_setup(tmp_path_factory.mktemp("maps"), scale=0.3, years=(2020, 2024), seed=7)
    with db.warehouse(settings) as con:
        con.execute("INSERT INTO ops.run(run_id, started_at, status) VALUES ('maps', now(), 'running')")
        load_and_geocode(con, settings, "maps")
        link_casualties(con, settings)
        plan_file = getattr(paths, "plan_geojson", None)
        if plan_file is not None and plan_file.exists():  # the demo's traffic-safety plan
            from skadestue.plan import import_plan

            import_plan(con, plan_file)
        build_hotspots(con, settings)
        publish_layers(con, settings, "maps")
    return paths, settings


def lokal_junctions(settings, kode: str, start: str, end: str) -> pd.DataFrame:
    frame = pd.read_parquet(Path(settings.publish_dir) / "lokalraad" / "geoparquet" / "hotspot_junction.parquet")
    mine = frame[(frame["kommunekode"] == kode) & (frame["period_start"] == pd.Timestamp(start))
                 & (frame["period_end"] == pd.Timestamp(end))]
    return mine[mine["n_accidents"].isna() | (mine["n_accidents"] > 0)]


@pytest.fixture(scope="module")
def esbjerg(published, tmp_path_factory):
    """Map (PNG, PDF, HTML) and annual report 2024 of Esbjerg, as `skadestue map/report` do."""
    from skadestue.maps import render

    _, settings = published
    out = tmp_path_factory.mktemp("esbjerg")
    result = render(settings, out, kommuner=["0561"], period="2020-2024", maps=True, year=2024, reports=True,
                    pdf=True, workers=1)
    return out, {p.name: p for p in result.files}


# --- static map ----------------------------------------------------------------------------------


def test_static_map_is_a4_at_200_dpi_and_drawn(esbjerg):
    _, files = esbjerg
    with Image.open(files["kort_0561_2020-2024.png"]) as img:
        assert img.size == (1654, 2338)  # A4 portrait (8.27 x 11.69 in) at 200 dpi
        rgb = np.asarray(img.convert("RGB")).astype(int)
    non_white = (rgb.min(axis=2) < 245).mean()
    assert 0.03 < non_white < 0.6, f"{non_white:.3f} of the pixels are drawn"
    # the junctions are coloured from the score colormap (saturated pixels), the boundary black
    saturation = rgb.max(axis=2) - rgb.min(axis=2)
    assert (saturation > 80).sum() > 2000
    assert (rgb.max(axis=2) < 40).sum() > 5000
    # the colormap gets darker as the score rises, so the order survives grey-scale printing
    from skadestue.maps.static import CMAP

    grey = [0.299 * r + 0.587 * g + 0.114 * b for r, g, b, _ in CMAP(np.linspace(0, 1, 11))]
    assert all(a > b for a, b in zip(grey, grey[1:]))


def test_static_map_pdf_has_one_page(esbjerg):
    from skadestue.maps.report import pdf_page_count

    _, files = esbjerg
    pdf = files["kort_0561_2020-2024.pdf"]
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf_page_count(pdf) == 1


# --- interactive map in a real browser -------------------------------------------------------------


class WebDriver:
    """The few WebDriver calls the test needs, over HTTP to the system's chromedriver."""

    def __init__(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        self.proc = subprocess.Popen([CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                self._call("GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900"]},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}}
        self.session = self._call("POST", "/session", caps)["value"]["sessionId"]

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.loads(resp.read())

    def get(self, url: str) -> None:
        self._call("POST", f"/session/{self.session}/url", {"url": url})

    def js(self, script: str):
        return self._call("POST", f"/session/{self.session}/execute/sync", {"script": script, "args": []})["value"]

    def logs(self) -> list[dict]:
        return self._call("POST", f"/session/{self.session}/se/log", {"type": "browser"})["value"]

    def quit(self) -> None:
        try:
            self._call("DELETE", f"/session/{self.session}")
        finally:
            self.proc.terminate()
            self.proc.wait(10)


COUNT_JS = """return {
  leaflet: typeof L === 'object' ? L.version : null,
  boundary: document.querySelectorAll('path.sk-boundary').length,
  roads: document.querySelectorAll('path.sk-road').length,
  junctions: document.querySelectorAll('path.sk-junction').length,
  cells: document.querySelectorAll('path.sk-cell').length,
  note: getComputedStyle(document.getElementById('sk-offline-note')).display
};"""


@needs_browser
def test_html_map_in_headless_chromium(published, esbjerg):
    _, settings = published
    _, files = esbjerg
    page = files["kort_0561_2020-2024.html"]
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?://", text), "the map must not need a CDN"
    expected_j = lokal_junctions(settings, "0561", "2020-01-01", "2024-12-31")
    cells = pd.read_parquet(Path(settings.publish_dir) / "lokalraad" / "geoparquet" / "hotspot_grid.parquet")
    expected_c = cells[(cells["kommunekode"] == "0561") & (cells["cell_size_m"] == 100)
                       & (cells["period_start"] == pd.Timestamp("2020-01-01"))
                       & (cells["period_end"] == pd.Timestamp("2024-12-31"))]
    assert len(expected_j) > 50 and len(expected_c) > 50

    driver = WebDriver()
    try:
        driver.get(page.resolve().as_uri())
        time.sleep(1.5)
        first = driver.js(COUNT_JS)
        # switch on the 100 m cells in the layer control, as a user would
        driver.js("""var box = Array.from(document.querySelectorAll('.leaflet-control-layers-overlays label'))
                     .find(l => l.textContent.includes('100 m-celler')).querySelector('input'); box.click();""")
        time.sleep(0.5)
        second = driver.js(COUNT_JS)
        # open the pop-up of the top junction
        driver.js("""document.querySelector('path.sk-junction').dispatchEvent(
                     new MouseEvent('click', {bubbles: true, clientX: 1, clientY: 1}));""")
        time.sleep(0.3)
        popup = driver.js("var p = document.querySelector('.leaflet-popup-content'); return p ? p.innerText : null;")
        logs = driver.logs()
    finally:
        driver.quit()

    assert first["leaflet"] == "1.9.4"
    assert first["boundary"] == 1
    assert first["roads"] == 2  # main roads and other roads of the gazetteer
    assert first["junctions"] == len(expected_j)
    assert first["cells"] == 0 and second["cells"] == len(expected_c)
    assert popup and "tilskadekomne" in popup
    top = expected_j.sort_values("rank_in_kommune").iloc[0]
    assert popup.startswith(f"1. {top['vejnavne']}")
    plan_file = getattr(published[0], "plan_geojson", None)
    if plan_file is not None and plan_file.exists() and bool(top["rule_flag"]):
        assert "tiltag i planen" in popup.lower()  # a rule hotspot is checked against the plan
    assert "Periode: 2020–2024" in popup and "Kendt af politiet" in popup
    # no JavaScript error; only the background tiles may fail (no internet here)
    tile_failures = [e for e in logs if e["source"] == "network" and "tile.openstreetmap.org" in e["message"]]
    errors = [e for e in logs if e["level"] == "SEVERE" and e not in tile_failures]
    assert errors == []
    if tile_failures:
        assert second["note"] == "block", "offline: the page must say the background map is missing"


# --- annual report ---------------------------------------------------------------------------------


def _top_table_rows(html: str) -> list[list[str]]:
    block = html.split('<div class="lt2">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", block.split("</thead>", 1)[1], flags=re.S)
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, flags=re.S)]
            for r in rows]


def test_annual_report_lists_the_planted_top_hotspot_first(published, esbjerg):
    paths, settings = published
    _, files = esbjerg
    html = files["trafikanalyse_0561_2024.html"].read_text(encoding="utf-8")
    truth = pd.read_parquet(paths.truth_dir / "hotspots.parquet")
    planted = truth[(truth["kind"] == "junction") & (truth["kommunekode"] == "0561")].iloc[0]
    rows = _top_table_rows(html)
    assert len(rows) == 10
    assert [int(r[0]) for r in rows] == list(range(1, 11))
    first = rows[0][1]
    assert planted["road_a"] in first and planted["road_b"] in first, first
    # its figures are those of the lokalråd layer
    top = lokal_junctions(settings, "0561", "2020-01-01", "2024-12-31").sort_values("rank_in_kommune").iloc[0]
    assert rows[0][3] == (str(int(top["n_casualties"])) if pd.notna(top["n_casualties"]) else "skjult")


def test_annual_report_content_and_charts(published, esbjerg):
    _, settings = published
    _, files = esbjerg
    html = files["trafikanalyse_0561_2024.html"].read_text(encoding="utf-8")
    for heading in ("Udviklingen de seneste fem år", "Trafikanttype 2024", "Alder 2024", "Hvornår",
                    "mørketallet", "Fokusgrupper", "Unge 15–24 år", "Cyklister og fodgængere", "Børn 0–14 år",
                    "De ti højest rangerede steder (2020–2024)", "Huller i trafiksikkerhedsplanen",
                    "Kilde: politiets registreringer og skadestueregistrering"):
        assert heading in html, heading
    assert not re.search(r"(src|href)=\"https?://", html)
    # the 2024 total is the count of Esbjerg's casualties in the published layer
    con = duckdb.connect()
    n_2024 = con.execute(
        "SELECT count(*) FROM read_parquet(?) WHERE kommunekode = '0561' AND year(injury_date) = 2024",
        [str(Path(settings.publish_dir) / "geoparquet" / "casualty_point.parquet")],
    ).fetchone()[0]
    ids = con.execute("SELECT casualty_id FROM read_parquet(?) LIMIT 200",
                      [str(Path(settings.publish_dir) / "geoparquet" / "casualty_point.parquet")]).fetchall()
    assert n_2024 > 50
    assert f"Tilskadekomne 2024<b>{n_2024:,}".replace(",", ".") in html
    assert not any(i[0] in html for i in ids), "no casualty ids in a lokalråd report"
    # seven charts, each a real PNG with something drawn
    uris = re.findall(r'<img class="chart"[^>]*src="data:image/png;base64,([^"]+)"', html)
    assert len(uris) == 7
    for uri in uris:
        with Image.open(io.BytesIO(base64.b64decode(uri))) as img:
            px = np.asarray(img.convert("L"))
        assert (px < 128).mean() > 0.005
    assert re.search(r'<img class="map"[^>]*src="data:image/png;base64,', html)


def test_annual_report_plan_gaps(published, esbjerg):
    """The plan section lists exactly the top-20 junctions that plan_coverage marks as gaps."""
    paths, settings = published
    _, files = esbjerg
    html = files["trafikanalyse_0561_2024.html"].read_text(encoding="utf-8")
    section = html.split("Huller i trafiksikkerhedsplanen", 1)[1].split('<div class="src">', 1)[0]
    if not getattr(paths, "plan_geojson", None) or not paths.plan_geojson.exists():
        assert "Ingen trafiksikkerhedsplan er indlæst" in section
        return
    from skadestue.maps.data import plan_coverage

    plan = plan_coverage(settings.publish_dir, None)
    if plan is None:  # not published: read from the warehouse
        from skadestue import db

        with db.warehouse(settings, read_only=True) as con:
            plan = plan_coverage(settings.publish_dir, con)
    assert plan is not None and len(plan) > 0
    top = lokal_junctions(settings, "0561", "2020-01-01", "2024-12-31").sort_values("rank_in_kommune").head(20)
    mine = plan[(plan["kommunekode"] == "0561") & plan["gap"].astype(bool)]
    expected = [r.vejnavne for r in top.itertuples() if r.junction_id in set(mine["junction_id"])]
    shown = [re.sub(r"<[^>]+>", "", c).strip() for c in
             re.findall(r"<tr>\s*<td>\d+</td>\s*<td>(.*?)</td>", section, flags=re.S)]
    assert shown == expected
    if not expected:
        assert "har et tiltag i planen" in section


@needs_browser
def test_annual_report_pdf(esbjerg):
    from skadestue.maps.report import pdf_page_count

    _, files = esbjerg
    pdf = files["trafikanalyse_0561_2024.pdf"]
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert 3 <= pdf_page_count(pdf) <= 12


# --- kredsråd ---------------------------------------------------------------------------------------


def test_kredsraad_half_year_one_page(published, tmp_path):
    from skadestue.maps import render_kredsraad_status
    from skadestue.maps.report import pdf_page_count

    _, settings = published
    files = render_kredsraad_status(settings, "2024H2", tmp_path, pdf=bool(CHROMIUM))
    html = files[0].read_text(encoding="utf-8")
    assert "2. halvår 2024" in html and "2. halvår 2023" in html
    for navn in settings.kommuner.values():
        assert f"<td>{navn}</td>" in html
    con = duckdb.connect()
    n_now, n_before = con.execute(
        "SELECT count(*) FILTER (WHERE injury_date BETWEEN '2024-07-01' AND '2024-12-31'), "
        "count(*) FILTER (WHERE injury_date BETWEEN '2023-07-01' AND '2023-12-31') "
        "FROM read_parquet(?) WHERE kommunekode = '0561'",
        [str(Path(settings.publish_dir) / "geoparquet" / "casualty_point.parquet")],
    ).fetchone()
    row = re.search(r"<td>Esbjerg</td>\s*<td>([^<]+)</td>\s*<td>([^<]+)</td>", html)
    assert row.groups() == (f"{n_now:,}".replace(",", "."), f"{n_before:,}".replace(",", "."))
    if CHROMIUM:
        assert pdf_page_count(files[1]) == 1


# --- suppression -----------------------------------------------------------------------------------


def test_suppress_frame_hides_small_er_counts_and_a_complement():
    from skadestue.maps.suppress import suppress_frame

    counts = pd.DataFrame(
        {"n": [40, 2, 2, 0], "n_police": [10, 0, 2, 0], "n_er_only": [30, 2, 0, 0]},
        index=["Bil", "Bus", "Lastbil", "Andet"],
    )
    counts.loc["I alt"] = counts.sum()
    t = suppress_frame(counts, 3, total_row="I alt")
    assert t.hidden.loc["Bus", "n"] and t.hidden.loc["Bus", "n_er_only"]  # 2 from the ER: hidden
    assert not t.hidden.loc["Andet"].any()  # zeros are shown
    # 'n' of Bus could be had from the total minus the others: one more cell of the column is
    # hidden, the smallest shown one (the police-only 2 of Lastbil, hidden as a complement only)
    assert t.hidden.loc["Lastbil", "n"]
    assert (t.hidden.sum(axis=0) != 1).all() and (t.hidden[["n", "n_police", "n_er_only"]].sum(axis=1) != 1).all()
    assert list(t.text("n")) == ["40", "skjult", "skjult", "0", "44"]
    # a police-only stratum keeps its small counts (the police's own registrations)
    police = pd.DataFrame({"n": [2, 30], "n_police": [2, 30], "n_er_only": [0, 0]}, index=["Bus", "Bil"])
    assert not suppress_frame(police, 3).hidden.to_numpy().any()


def test_report_tables_never_show_a_small_er_count(published):
    """Every table of the smallest kommune's report: no shown count 1..k-1 in an ER stratum and
    no additive group with exactly one hidden cell."""
    from skadestue.maps.data import casualty_points
    from skadestue.maps.stats import TOTAL, CasualtyStats

    _, settings = published
    k = settings.publish.suppression_k
    stats = CasualtyStats(casualty_points(settings.publish_dir), k)
    try:
        tables = [stats.breakdown("0563", 2024, d) for d in ("road_user", "age_band", "hour", "weekday")]
        tables.append(stats.by_year("0563", list(range(2020, 2025))))
    finally:
        stats.close()
    n_hidden = 0
    for t in tables:
        c, h = t.counts, t.hidden
        er = c["n_er_only"] > 0
        small = (c[["n", "n_police", "n_er_only"]] >= 1) & (c[["n", "n_police", "n_er_only"]] < k)
        assert not (small.mul(er, axis=0) & ~h[["n", "n_police", "n_er_only"]]).any().any()
        assert ((h[["n", "n_police", "n_er_only"]].sum(axis=1)) != 1).all()
        if TOTAL in c.index:
            assert (h.sum(axis=0) != 1).all()
        n_hidden += int(h.to_numpy().sum())
    assert n_hidden > 0  # Fanø is small: the rule had something to do


# --- nightly and command line ---------------------------------------------------------------------


def test_render_latest_writes_publish_maps(published):
    from skadestue.maps import render_latest

    _, settings = published
    small = settings.model_copy(update={"kommuner": {"0561": "Esbjerg", "0563": "Fanø"}})
    files = render_latest(small, pdf=False, workers=2)
    maps_dir = Path(settings.publish_dir) / "maps"
    assert sorted(p.name for p in maps_dir.iterdir()) == sorted(p.name for p in files)
    assert {p.name for p in files} == {
        "kort_0561_2020-2024.png", "kort_0561_2020-2024.html", "trafikanalyse_0561_2024.html",
        "kort_0563_2020-2024.png", "kort_0563_2020-2024.html", "trafikanalyse_0563_2024.html",
        "kredsraad_2024H2.html", "manifest.json",
    }
    assert not any(p.name.startswith(".maps") for p in Path(settings.publish_dir).iterdir())
    manifest = json.loads((maps_dir / "manifest.json").read_text())
    assert set(manifest["parts"]) == {"0561", "0563", "kredsraad"}
    assert manifest["parts"]["0563"]["files"] == ["kort_0563_2020-2024.html", "kort_0563_2020-2024.png",
                                                  "trafikanalyse_0563_2024.html"]


def test_cli_map_and_report(published, tmp_path):
    from typer.testing import CliRunner

    from skadestue.cli import app

    _, settings = published
    common = ["--warehouse", str(settings.warehouse), "--publish", str(settings.publish_dir)]
    runner = CliRunner()
    bad = runner.invoke(app, ["map", "--kommune", "0561", "--period", "2015-2019", "--out", str(tmp_path), *common])
    assert bad.exit_code == 2 and "not among the published periods" in bad.output
    ok = runner.invoke(app, ["map", "--kommune", "0563", "--period", "2024", "--no-pdf", "--out", str(tmp_path), *common])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "kort_0563_2024.png").exists() and (tmp_path / "kort_0563_2024.html").exists()
    rep = runner.invoke(app, ["report", "--kredsraad", "--half", "2024H1", "--no-pdf", "--out", str(tmp_path), *common])
    assert rep.exit_code == 0, rep.output
    assert "1. halvår 2024" in (tmp_path / "kredsraad_2024H1.html").read_text(encoding="utf-8")


def test_nightly_maps_render_only_changed_kommuner(published, tmp_path):
    """Issue 9: a night with unchanged layers renders nothing and keeps the files; a change in
    one kommune's casualties renders that kommune only."""
    from skadestue import db, state
    from skadestue.maps import render_nightly
    from skadestue.publish import publish_layers

    _, settings = published
    shutil.copy(settings.warehouse, tmp_path / "warehouse.duckdb")
    shutil.copytree(settings.publish_dir, tmp_path / "publish", ignore=shutil.ignore_patterns("maps"))
    s = settings.model_copy(update={"warehouse": tmp_path / "warehouse.duckdb", "publish_dir": tmp_path / "publish",
                                    "kommuner": {"0563": "Fanø", "0510": "Haderslev"}})
    maps_dir = tmp_path / "publish" / "maps"

    def snapshot() -> dict[str, tuple[int, bytes]]:
        return {p.name: (p.stat().st_ino, p.read_bytes()) for p in sorted(maps_dir.iterdir())}

    with db.warehouse(s) as con:
        first = render_nightly(s, con, pdf=False, workers=2)
        assert sorted(first.rendered) == ["0510", "0563", "kredsraad"] and first.kept == []
        assert set(state.stored_parts(con, "maps")) == {"0510", "0563", "kredsraad"}
        night1 = snapshot()
        assert len(night1) == 8  # 3 files per kommune, the kredsråd page, manifest.json

        second = render_nightly(s, con, pdf=False, workers=2)
        assert second.rendered == [] and sorted(second.kept) == ["0510", "0563", "kredsraad"]
        assert snapshot() == night1  # the same files, not rewritten

        # one Fanø casualty of 2022 becomes serious (outside the kredsråd's half-years)
        cid = con.execute(
            "SELECT min(casualty_id) FROM marts.casualty_point WHERE kommunekode = '0563' "
            "AND year(injury_date) = 2022 AND severity = 'slight'").fetchone()[0]
        assert cid is not None
        con.execute("UPDATE marts.casualty_point SET severity = 'serious' WHERE casualty_id = ?", [cid])
        assert publish_layers(con, s, "night-2").layers_written == ["casualty_point"]
        third = render_nightly(s, con, pdf=False, workers=2)
        assert third.rendered == ["0563"] and sorted(third.kept) == ["0510", "kredsraad"]
        night3 = snapshot()
        assert night3.keys() == night1.keys()
        for name in night1:
            same = night3[name] == night1[name]
            assert same == (not name.startswith(("kort_0563", "trafikanalyse_0563", "manifest"))), name
        # the report counts the changed casualty
        html = (maps_dir / "trafikanalyse_0563_2024.html").read_text(encoding="utf-8")
        assert html != night1["trafikanalyse_0563_2024.html"][1].decode("utf-8")

        # `skadestue run --full` forgets the fingerprints: everything is rendered again
        state.forget(con)
        assert sorted(render_nightly(s, con, pdf=False, workers=2).rendered) == ["0510", "0563", "kredsraad"]
