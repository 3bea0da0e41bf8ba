"""Benchmark the geocoder at national scale: texts per second and peak memory (issue 4).

Builds a synthetic national gazetteer straight into ``gazetteer.*`` (98 kommuner, ~100,000
streets whose names repeat across kommuner as Danish names do, ~2.5 million access addresses,
junctions), then geocodes 100,000 messy location texts made by skadestue.geocode.testset's
text makers (addresses in every phrasing, with typos, abbreviations and floors, plus
junctions and street-only texts; 60 % carry a kommune hint). Times the gazetteer load and the
geocoding separately and scores the answers against the synthetic truth. Peak RSS is the
process's maximum resident set (resource.getrusage), the workers' separately. On a shared
machine wall time depends on the load, so CPU seconds (texts per CPU second) are reported too.

    .venv/bin/python bench/bench_geocode.py --addresses 2500000 --texts 100000
    .venv/bin/python bench/bench_geocode.py --import-only    # `geodata import` of such files

``--import-only`` writes the synthetic gazetteer as DAWA/DAGI files (CSV, GeoJSON) and times
``geodata.importer.import_geodata`` on them in a child process; its figures are kept under
``"import"`` in the result file by later geocoding runs.

    .venv/bin/python bench/bench_geocode.py --night            # a small night (issue 9)

``--night`` builds a national warehouse file (the gazetteer above, ~560,000 ER contacts over
100,000 distinct texts and 40,000 police accidents, all geocoded once, which also writes the
gazetteer cache) and then times, in a fresh child process, the nightly geocode stage (police
check + ER contacts, one transaction, as the flow runs it) for one ordinary night: 150 new ER
contacts and 20 new police accidents. It is timed twice on the same warehouse: the way the
stage ran before (gazetteer read from DuckDB, every contact re-joined with the spatial
kommune lookup; rolled back) and the way it runs now (cached gazetteer, only changed rows).
``--reuse`` keeps an existing night warehouse in ``--work``. Results go under ``"night"``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("SKADESTUE_PSEUDONYM_KEY", "bench-key")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from skadestue.config import Settings  # noqa: E402
from skadestue.db import connect  # noqa: E402
from skadestue.geocode import Gazetteer, geocode_texts  # noqa: E402
from skadestue.geocode.normalise import normalise  # noqa: E402
from skadestue.geocode.testset import _address_text, _junction_text, _messy_name  # noqa: E402

STEMS = ("Nør", "Sønder", "Vester", "Øster", "Kirke", "Mølle", "Skole", "Stations", "Bøge",
         "Ege", "Birke", "Hassel", "Rose", "Lilje", "Kastanie", "Ahorn", "Lærke", "Svane",
         "Måge", "Ørne", "Falke", "Høj", "Bakke", "Dal", "Eng", "Mose", "Skov", "Strand",
         "Havne", "Fjord", "Å", "Bro", "Slots", "Konge", "Dronning", "Prinse", "Bisp", "Præste",
         "Degne", "Smede", "Bager", "Brygger", "Fiske", "Jæger", "Hjorte", "Ræve", "Grane",
         "Gran", "Fyrre", "Pile", "Poppel", "Hyld", "Tjørne", "Rønne", "Abild", "Kløver",
         "Hvede", "Byg", "Rug", "Havre", "Lyng", "Tang", "Klint", "Sand", "Sten", "Grus",
         "Ler", "Kalk", "Kilde", "Brønd", "Vand", "Sø", "Dam", "Kær", "Agre", "Mark", "Vang",
         "Toft", "Gårds", "Lunde", "Hegns", "Tofte", "Ager", "Hede", "Klitte", "Vejle", "Ribe",
         "Tønder", "Vejen", "Varde", "Esbjerg", "Kolding", "Odense", "Aarhus", "Aalborg",
         "Horsens", "Viborg", "Randers")
PERSONS = ("H.C. Andersens", "Chr. Winthers", "Niels Bohrs", "N. Jespersens", "Grundtvigs",
           "Skt. Knuds", "Kong Hans'", "Dronning Margrethes", "Tordenskjolds", "Jens Baggesens",
           "Steen Blichers", "Kaj Munks", "Carl Nielsens", "Holger Danskes", "Absalons")
SUFFIXES = ("vej", "gade", "allé", "vænget", "stien", "parken", "bakken", "toften", "engen",
            "løkken", "stræde", "have", "høj", "lund", "mark", "gyden", "plads", "agre")
TOWN_SUFFIXES = ("rup", "by", "sted", "lev", "holm")
PREFIXES = ("", "", "", "", "Gl. ", "Ny ", "Store ", "Lille ", "Nørre ", "Søndre ")


#: The benchmark splits the national batch over both cores.
BENCH_SETTINGS = Settings.model_validate({"geocode": {"workers": 2}})

def name_pool() -> list[str]:
    """~19,000 distinct Danish-looking street names (stem/person x suffix x prefix)."""
    names = {f"{p}{s}{suf}" for p in PREFIXES for s in STEMS for suf in SUFFIXES}
    names |= {f"{p} {suf.capitalize() if suf != 'allé' else 'Allé'}"
              for p in PERSONS for suf in ("vej", "gade", "allé", "plads")}
    return sorted(names)


def build_gazetteer(con, n_addresses: int, seed: int) -> dict:
    """Fill gazetteer.* with a synthetic national gazetteer (SQL, vectorised)."""
    pool = name_pool()
    con.register("_pool", pd.DataFrame({"name_id": range(len(pool)), "vejnavn": pool}))
    # town names without digits (a digit in a town would read as a house number)
    towns = [f"{STEMS[j % len(STEMS)]}{TOWN_SUFFIXES[j // len(STEMS)]}" for j in range(98 * 4)]
    con.register("_towns", pd.DataFrame({"j": range(len(towns)), "town": towns}))
    n_kom = 98
    streets_per_kom = max(10, n_addresses // 25 // n_kom)
    con.execute(f"""
        CREATE TEMP TABLE kom AS
        SELECT i, lpad(CAST(100 + i * 7 AS VARCHAR), 4, '0') AS kommunekode,
               (SELECT town FROM _towns WHERE j = i * 4) || ' Kommune' AS navn,
               450000.0 + (i % 10) * 40000.0 AS x0, 6050000.0 + (i // 10) * 35000.0 AS y0
        FROM range({n_kom}) t(i)""")
    con.execute("""INSERT INTO gazetteer.municipality
                   SELECT kommunekode, navn, ST_MakeEnvelope(x0, y0, x0 + 40000, y0 + 35000) FROM kom""")
    con.execute("""INSERT INTO gazetteer.postcode
                   SELECT CAST(1000 + i * 10 + p AS VARCHAR), w.town,
                          ST_MakeEnvelope(x0 + p * 10000, y0, x0 + p * 10000 + 10000, y0 + 35000)
                   FROM kom, range(4) t(p) JOIN _towns w ON w.j = i * 4 + p""")
    # streets: names unique inside a kommune, repeated across kommuner
    con.execute(f"""
        CREATE TEMP TABLE syn_street AS
        SELECT k.kommunekode, k.i, s, lpad(CAST(s + 1 AS VARCHAR), 4, '0') AS vejkode,
               p.vejnavn, CAST(1000 + k.i * 10 + s % 4 AS VARCHAR) AS postnr,
               w.town AS postnrnavn,
               k.x0 + (s % 4) * 10000 + 200 + CAST(hash(k.i, s, {seed}) % 9000 AS DOUBLE) AS sx,
               k.y0 + 200 + CAST(hash(s, k.i, {seed}) % 34000 AS DOUBLE) AS sy,
               CASE WHEN hash(s, {seed}) % 2 = 0 THEN 1.0 ELSE 0.0 END AS horiz,
               CAST(1 + hash(k.i, s, 'n', {seed}) % 49 AS BIGINT) AS n_addr
        FROM kom k, range({streets_per_kom}) t(s)
        JOIN _pool p ON p.name_id = (s * 7919 + k.i * 131) % {len(pool)}
        JOIN _towns w ON w.j = k.i * 4 + s % 4""")
    con.execute("""
        INSERT INTO gazetteer.address
        SELECT md5(kommunekode || vejkode || n) AS id, kommunekode, vejkode, vejnavn,
               CAST(n AS VARCHAR) || CASE WHEN n % 17 = 0 THEN 'A' ELSE '' END AS husnr,
               n, CASE WHEN n % 17 = 0 THEN 'A' ELSE '' END, postnr, postnrnavn, NULL,
               sx + horiz * (n * 9.0) + (n % 2) * 12 * (1 - horiz),
               sy + (1 - horiz) * (n * 9.0) + (n % 2) * 12 * horiz
        FROM syn_street, range(1, n_addr + 1) t(n)""")
    names = con.execute("SELECT DISTINCT vejnavn FROM syn_street").df()
    names["navn_norm"] = names["vejnavn"].map(normalise)
    con.register("_names", names)
    con.execute("""
        INSERT INTO gazetteer.street
        SELECT s.kommunekode, s.vejkode, s.vejnavn, n.navn_norm, [s.postnr],
               s.sx + s.horiz * 9 * n_addr / 2, s.sy + (1 - s.horiz) * 9 * n_addr / 2,
               greatest(50.0, 9.0 * n_addr), n_addr, NULL
        FROM syn_street s JOIN _names n USING (vejnavn)""")
    # junctions: each street meets the next one of its kommune at its start
    con.execute("""
        INSERT INTO gazetteer.junction
        SELECT 'J' || a.kommunekode || '_' || a.s, a.kommunekode, a.sx, a.sy,
               list_sort([a.vejnavn, b.vejnavn]), list_sort([a.vejkode, b.vejkode]), 2, NULL
        FROM syn_street a JOIN syn_street b ON a.kommunekode = b.kommunekode AND b.s = a.s + 1""")
    counts = {t: con.execute(f"SELECT count(*) FROM gazetteer.{t}").fetchone()[0]
              for t in ("municipality", "postcode", "street", "address", "junction")}
    counts["distinct_street_names"] = len(names)
    return counts


def make_texts(con, n_texts: int, seed: int) -> pd.DataFrame:
    """Messy texts with their truth: 85 % addresses, 10 % junctions, 5 % street only."""
    rng = random.Random(seed)
    n_addr, n_junc = int(n_texts * 0.85), int(n_texts * 0.10)
    n_street = n_texts - n_addr - n_junc
    addr = con.execute(f"""SELECT kommunekode, vejnavn, husnr, postnr, postnrnavn, x, y
                           FROM gazetteer.address USING SAMPLE {n_addr} ROWS (reservoir, {seed})""").df()
    junc = con.execute(f"""SELECT kommunekode, vejnavne[1] AS a, vejnavne[2] AS b, x, y
                           FROM gazetteer.junction USING SAMPLE {n_junc} ROWS (reservoir, {seed})""").df()
    st = con.execute(f"""SELECT kommunekode, vejnavn, x, y
                         FROM gazetteer.street USING SAMPLE {n_street} ROWS (reservoir, {seed})""").df()
    rows = []
    for r in addr.itertuples(index=False):
        text, kind, _ = _address_text(r, rng)
        rows.append((text, r.kommunekode if rng.random() < 0.6 else "", kind, r.x, r.y))
    for r in junc.itertuples(index=False):
        text, _ = _junction_text(r.a, r.b, rng)
        rows.append((text, r.kommunekode, "junction", r.x, r.y))
    for r in st.itertuples(index=False):
        rows.append((f"cykelstien langs {_messy_name(r.vejnavn, rng)[0]}", r.kommunekode,
                     "street", r.x, r.y))
    df = pd.DataFrame(rows, columns=["location_text", "kommunekode_hint", "kind", "true_x", "true_y"])
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def write_gazetteer_files(con, out_dir: Path) -> dict[str, Path]:
    """The synthetic gazetteer in ``con`` as the published formats ``skadestue geodata import``
    reads: a DAWA access-address CSV, road centre lines and DAGI kommuner/postnumre (GeoJSON,
    one straight line per street). For timing the importer at national scale."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"addresses": out_dir / "adgangsadresser.csv", "roads": out_dir / "vejmidte.geojson",
             "municipalities": out_dir / "kommuner.geojson", "postcodes": out_dir / "postnumre.geojson"}
    con.execute(f"""COPY (SELECT id, kommunekode, vejkode, vejnavn, husnr, postnr, postnrnavn,
                                supplerendebynavn, x AS etrs89_oest, y AS etrs89_nord
                         FROM gazetteer.address ORDER BY id)
                   TO '{files["addresses"]}' (HEADER, DELIMITER ',')""")
    con.execute(f"""COPY (SELECT kommunekode AS KOMMUNEKODE, vejkode AS VEJKODE, vejnavn AS VEJNAVN,
                                ST_MakeLine(ST_Point(x - 50, y), ST_Point(x + 50, y)) AS geom
                         FROM gazetteer.street)
                   TO '{files["roads"]}' (FORMAT GDAL, DRIVER 'GeoJSON')""")
    con.execute(f"""COPY (SELECT kommunekode AS KOMKODE, navn AS KOMNAVN, geom FROM gazetteer.municipality)
                   TO '{files["municipalities"]}' (FORMAT GDAL, DRIVER 'GeoJSON')""")
    con.execute(f"""COPY (SELECT postnr AS POSTNR_TXT, navn AS POSTBYNAVN, geom FROM gazetteer.postcode)
                   TO '{files["postcodes"]}' (FORMAT GDAL, DRIVER 'GeoJSON')""")
    return files


def bench_import(n_addresses: int, seed: int, work: Path) -> dict:
    """Time ``import_geodata`` on national-size files written by :func:`write_gazetteer_files`
    (in a child process, so its peak memory is the importer's own)."""
    import subprocess
    src = connect(":memory:")
    build_gazetteer(src, n_addresses, seed)
    files = write_gazetteer_files(src, work)
    src.close()
    code = (
        "import json, resource, sys, time; sys.path.insert(0, %r)\n"
        "from pathlib import Path\nfrom skadestue.db import connect\n"
        "from geodata.importer import import_geodata\n"
        "con = connect(':memory:'); r0 = resource.getrusage(resource.RUSAGE_SELF)\n"
        "t0 = time.perf_counter()\n"
        "counts = import_geodata(con, **{k: Path(v) for k, v in json.loads(sys.argv[1]).items()})\n"
        "t = time.perf_counter() - t0; r = resource.getrusage(resource.RUSAGE_SELF)\n"
        "print(json.dumps({'import_s': round(t, 1), 'import_cpu_s': round(r.ru_utime + r.ru_stime"
        " - r0.ru_utime - r0.ru_stime, 1), 'import_peak_rss_mb': round(r.ru_maxrss / 1024),"
        " 'import_counts': counts}))\n") % str(REPO)
    out = subprocess.run([sys.executable, "-c", code, json.dumps({k: str(v) for k, v in files.items()})],
                         check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["address_csv_mb"] = round(files["addresses"].stat().st_size / 1e6)
    for f in files.values():
        f.unlink()
    return result


#: geocode_er_update as it was before issue 9's night work (every contact, every night, with
#: the spatial kommune lookup for every cache row): the "before" of the night benchmark.
OLD_ER_UPDATE_SQL = """
UPDATE core.er_contact AS e
SET x = r.x, y = r.y, geocode_quality = r.quality, geocode_uncertainty_m = r.uncertainty_m,
    geocode_method = r.method, kommunekode = coalesce(e.kommunekode, r.kommunekode_polygon, r.kommunekode)
FROM (
    SELECT g.* EXCLUDE (kommunekode_polygon), m.kommunekode AS kommunekode_polygon
    FROM core.geocode_result AS g
    LEFT JOIN gazetteer.municipality AS m
      ON g.x IS NOT NULL AND ST_Contains(m.geom, ST_Point(g.x, g.y))
    QUALIFY row_number() OVER (PARTITION BY g.location_text, g.kommunekode_hint
                               ORDER BY m.kommunekode) = 1
) AS r
WHERE r.location_text = coalesce(e.ulykkessted, '')
  AND r.kommunekode_hint = coalesce(e.kommunekode, '')"""


def _insert_contacts(con, texts: pd.DataFrame, prefix: str, day: str) -> None:
    df = pd.DataFrame({
        "sygehus": "Bench Sygehus", "kontakt_id": [f"{prefix}{i:07d}" for i in range(len(texts))],
        "delivery_id": f"er-{prefix}", "ankomst": pd.Timestamp(day + " 12:00"),
        "injury_date": pd.Timestamp(day).date(), "road_user": "cyclist", "counterpart": "car",
        "severity": "slight", "ulykkessted": texts["location_text"].to_numpy(),
        "kommunekode": texts["kommunekode_hint"].replace("", None).to_numpy()})
    con.register("_contacts", df)
    con.execute("INSERT INTO core.er_contact BY NAME SELECT * FROM _contacts")
    con.unregister("_contacts")


def _insert_police(con, n: int, prefix: str, seed: int) -> None:
    """Police accidents at sampled addresses: 80 % with their X/Y, 2 % swapped, 3 % outside
    their kommune, 15 % without X/Y (road fields only)."""
    con.execute(f"""
        INSERT INTO core.police_accident BY NAME
        SELECT '{prefix}' || lpad(CAST(row_number() OVER () AS VARCHAR), 7, '0') AS uheld_id,
               'pol-{prefix}' AS delivery_id, DATE '2025-06-01' AS uheldsdato, 'slight' AS severity,
               kommunekode, vejnavn, husnr, NULL AS krydsende_vej,
               CASE WHEN r < 80 THEN x WHEN r < 82 THEN y WHEN r < 85 THEN x + 200000 END AS x,
               CASE WHEN r < 80 THEN y WHEN r < 82 THEN x WHEN r < 85 THEN y END AS y,
               CASE WHEN r < 85 THEN 'police' ELSE 'none' END AS geocode_quality
        FROM (SELECT *, hash(id, {seed}) % 100 AS r
              FROM gazetteer.address USING SAMPLE {n} ROWS (reservoir, {seed}))""")


def prepare_night(path: Path, n_addresses: int, seed: int, n_contacts: int, n_distinct: int,
                  n_police: int) -> dict:
    """A national warehouse, geocoded once (which writes the gazetteer cache)."""
    from skadestue.geocode import geocode_er_contacts, geocode_police_accidents
    path.parent.mkdir(parents=True, exist_ok=True)
    for p in (path, Path(str(path) + ".wal")):
        p.unlink(missing_ok=True)
    shutil.rmtree(Path(str(path) + ".cache"), ignore_errors=True)
    con = connect(path)
    t0 = time.perf_counter()
    counts = build_gazetteer(con, n_addresses, seed)
    texts = make_texts(con, n_distinct, seed)[["location_text", "kommunekode_hint"]]
    history = texts.sample(n=n_contacts, replace=True, random_state=seed).reset_index(drop=True)
    _insert_contacts(con, history, "H", "2025-06-01")
    _insert_police(con, n_police, "H", seed)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    settings = Settings.model_validate({"geocode": {"workers": 2, "corrections_file": None}})
    police = geocode_police_accidents(con, settings)
    er = geocode_er_contacts(con, settings)
    t_full = time.perf_counter() - t0
    con.close()
    return {"gazetteer": counts, "er_contacts": n_contacts, "distinct_texts": n_distinct,
            "police_accidents": n_police, "build_s": round(t_build, 1),
            "first_geocode_s": round(t_full, 1), "first_geocode_er": er,
            "first_geocode_police": {k: police[k] for k in ("police", "A", "B", "C", "none")}}


def night_run(path: Path, seed: int, n_new: int, n_police_new: int) -> dict:
    """One ordinary night on the prepared warehouse, before (rolled back) and now (committed).
    Runs in a fresh process: peak RSS is the night's own."""
    import skadestue.geocode as geocode
    import skadestue.geocode.cache as cache
    from skadestue.geocode import geocode_er_contacts, geocode_police_accidents
    settings = Settings.model_validate({"geocode": {"corrections_file": None}})
    con = connect(path)
    new_texts = make_texts(con, n_new, seed + 101)[["location_text", "kommunekode_hint"]]
    out: dict = {}
    for variant in ("before", "now"):
        con.execute("BEGIN TRANSACTION")
        _insert_contacts(con, new_texts, "N", "2025-06-02")
        _insert_police(con, n_police_new, "N", seed + 101)
        if variant == "before":
            # the old stage: every accident re-checked, gazetteer read from DuckDB, every
            # contact re-joined with the spatial kommune lookup
            con.execute("UPDATE core.police_accident SET geocode_hash = NULL")
            real_dir, real_query = cache.default_cache_dir, geocode.query
            cache.default_cache_dir = lambda c: None
            geocode.query = (lambda name: OLD_ER_UPDATE_SQL if name == "geocode_er_update"
                             else real_query(name))
        t0, c0 = time.perf_counter(), cpu_s()
        try:
            police = geocode_police_accidents(con, settings)
            t_police = time.perf_counter() - t0
            er = geocode_er_contacts(con, settings)
        finally:
            if variant == "before":
                cache.default_cache_dir = real_dir
                geocode.query = real_query
        wall, cpu = time.perf_counter() - t0, cpu_s() - c0
        con.execute("ROLLBACK" if variant == "before" else "COMMIT")
        out[variant] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                        "police_wall_s": round(t_police, 2),
                        "police_checked": police.get("checked"),
                        "texts_geocoded": er["texts_geocoded"],
                        "gazetteer_cache": er.get("gazetteer_cache")}
    out["peak_rss_mb"] = round(peak_rss_mb())
    out["new_er_contacts"], out["new_police_accidents"] = n_new, n_police_new
    con.close()
    return out


def bench_night(args) -> dict:
    import subprocess
    path = args.work / "night.duckdb"
    prepared = None
    if not (args.reuse and path.exists()):
        prepared = prepare_night(path, args.addresses, args.seed, args.night_contacts,
                                 args.night_distinct, args.night_police)
    proc = subprocess.run([sys.executable, __file__, "--night-run", str(path), "--seed", str(args.seed),
                           "--night-new", str(args.night_new)],
                          check=True, capture_output=True, text=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if prepared:
        result["prepared"] = prepared
    result["load_average_1min"] = round(os.getloadavg()[0], 1)
    return result


def cpu_s() -> float:
    """User + system CPU seconds of this process and its (finished) workers."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def peak_rss_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--addresses", type=int, default=2_500_000)
    ap.add_argument("--texts", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "bench_geocode.json")
    ap.add_argument("--import-only", action="store_true",
                    help="only time `geodata import` of national-size files (no geocoding)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/skadestue_bench_geocode"),
                    help="scratch directory for the import files (deleted afterwards)")
    ap.add_argument("--night", action="store_true",
                    help="time one ordinary night's geocode stage on a national warehouse (issue 9)")
    ap.add_argument("--reuse", action="store_true", help="--night: reuse the warehouse in --work")
    ap.add_argument("--night-contacts", type=int, default=560_000)
    ap.add_argument("--night-distinct", type=int, default=100_000)
    ap.add_argument("--night-police", type=int, default=40_000)
    ap.add_argument("--night-new", type=int, default=150)
    ap.add_argument("--night-run", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.night_run:
        print(json.dumps(night_run(args.night_run, args.seed, args.night_new, 20)))
        return
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.night:
        result = bench_night(args)
        print(json.dumps(result, indent=2))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**previous, "night": result}, indent=2, ensure_ascii=False))
        return
    if args.import_only:
        result = bench_import(args.addresses, args.seed, args.work)
        result["load_average_1min"] = round(os.getloadavg()[0], 1)
        print(json.dumps(result, indent=2))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**previous, "import": result}, indent=2, ensure_ascii=False))
        return

    con = connect(":memory:")
    t0 = time.perf_counter()
    counts = build_gazetteer(con, args.addresses, args.seed)
    t_build = time.perf_counter() - t0
    texts = make_texts(con, args.texts, args.seed)
    rss_before = peak_rss_mb()
    t0 = time.perf_counter()
    gaz = Gazetteer.load(con)
    t_load = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), cpu_s()
    res = geocode_texts(con, texts, BENCH_SETTINGS, gazetteer=gaz)
    t_geo, c_geo = time.perf_counter() - t0, cpu_s() - c0
    err = np.hypot(res["x"] - texts["true_x"], res["y"] - texts["true_y"])
    placed = res["quality"].isin(["A", "B", "C"])
    point = texts["kind"] != "street"
    ab = res["quality"].isin(["A", "B"]) & point
    result = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus",
        "python": platform.python_version(),
        "gazetteer": counts,
        "texts": len(texts), "distinct_texts": int(texts[["location_text", "kommunekode_hint"]]
                                                    .drop_duplicates().shape[0]),
        "gazetteer_build_s": round(t_build, 1),
        "gazetteer_load_s": round(t_load, 1),
        "geocode_s": round(t_geo, 1),
        "texts_per_s": round(len(texts) / t_geo),
        "geocode_cpu_s": round(c_geo, 1),
        "texts_per_cpu_s": round(len(texts) / c_geo),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "workers": BENCH_SETTINGS.geocode.workers,
        "peak_rss_mb": round(peak_rss_mb()),
        "peak_rss_worker_mb": round(peak_rss_mb(resource.RUSAGE_CHILDREN)),
        "rss_before_load_mb": round(rss_before),
        "placed_rate": round(float(placed.mean()), 4),
        "placed_rate_with_hint": round(float(placed[texts["kommunekode_hint"] != ""].mean()), 4),
        "within_50m_point_texts": round(float((err[point] <= 50).mean()), 4),
        "ab_wrong_100m_share": round(float((err[ab] > 100).sum() / max(1, ab.sum())), 5),
        "quality_counts": res["quality"].value_counts().to_dict(),
    }
    print(f"{'measure':28s} value")
    for k, v in result.items():
        print(f"{k:28s} {v}")
    for key in ("import", "night"):   # from --import-only / --night runs
        if key in previous:
            result[key] = previous[key]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
