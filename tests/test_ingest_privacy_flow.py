"""No CPR number, name or narrative survives ingestion: a delivery full of them goes through
the whole nightly flow (Prefect), then the warehouse file, the published layers, the quality
docs, the logs and Prefect's own store are searched for every one of them.

One module-scoped flow run (Prefect is slow to start). All people are synthetic.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import duckdb
import pytest


pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
#: Synthetic, date-valid CPR numbers (none need modulus 11), planted with and without dash.
CPRS = ("1708614417", "2902484391", "0311059874", "1212121218", "0506073002")
DASHED = tuple(f"{c[:6]}-{c[6:]}" for c in CPRS)
#: Made-up names that occur nowhere else.
NAMES = ("Zorbak Quillfeather", "Ylvina Thrumbottle", "Kasimir Wobblethwaite", "Oddny Pfefferkorn")
PHONE = "87 65 43 21"
NARRATIVE = "Skadelidte oplyser at"  # a phrase only the narratives hold

ER_HEADER = (
    "kontakt_id;sygehus;ankomst;ulykke_tid;cpr;koen;alder;transportmiddel;modpart;ulykkessted;"
    "kommune;diagnose;bidiagnoser;afslutning;fritekst\n"
)


def _er_delivery() -> str:
    rows = []
    for i, (cpr, dashed) in enumerate(zip(CPRS, DASHED)):
        name = NAMES[i % len(NAMES)]
        rows.append(
            f"PRIV-{i};SVS Esbjerg;2024-05-0{i + 1} 14:32;14:05;{cpr if i % 2 else dashed};;;2;5;"
            f"Kongensgade 12, 6700 Esbjerg, vidne {name} tlf {PHONE};Esbjerg;DS525;DS060;indlagt;"
            f'"{NARRATIVE} {name} ({dashed}, ring {PHONE}); mor {NAMES[(i + 1) % len(NAMES)]} {cpr}"'
        )
    # a CPR in the wrong column, and an invalid one: neither may survive either
    rows.append(f"PRIV-9;SVS Esbjerg;2024-05-09 10:00;;;K;{CPRS[0]};1;0;{DASHED[1]};;;;hjem;")
    rows.append(f"{CPRS[2]};SVS Esbjerg;2024-05-09 11:00;;3102{CPRS[3][4:]};M;40;2;0;;;;;hjem;")
    return ER_HEADER + "\n".join(rows) + "\n"


def _police_deliveries() -> tuple[str, str]:
    uheld = (
        "UHELDS_ID;UHELDSDATO;KLOKKESLAET;UHELDSART;UHELDKOMMUNE;VEJNAVN;HUSNR;X_KOORDINAT;Y_KOORDINAT;"
        "ANTAL_DRAEBTE;ANTAL_ALV_TILSKADEKOMNE;ANTAL_LET_TILSKADEKOMNE;UHELDSTEKST\n"
        f"PRIV-U1;2024-05-01;14:05;Personskadeuheld;561;Kongensgade;12;;;0;1;0;"
        f"\"Fører {NAMES[0]} ({DASHED[0]}) påkørte cyklist {NAMES[1]} {CPRS[1]}, tlf {PHONE}\"\n"
    )
    personer = (
        "UHELDS_ID;ELEMENTNR;PERSONNR;TRANSPORTMIDDEL;PERSONART;SKADESGRAD;ALDER;KOEN;CPR\n"
        f"PRIV-U1;1;1;11;10;U;;;{DASHED[0]}\n"
        f"PRIV-U1;2;1;61;60;A;;;{CPRS[1]}\n"
    )
    return uheld, personer


def _planted() -> list[str]:
    return [*CPRS, *DASHED, *NAMES, PHONE, NARRATIVE]


class _Capture(logging.Handler):
    """Keeps every formatted log line emitted while the flow runs."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module", params=["pandas", "duckdb"])
def night(request, tmp_path_factory, demo_setup):
    """The flow run, with the ER files loaded by either ingest path (the night's small files
    normally take the pandas one; a full reload's big files the DuckDB one)."""
    from flows.nightly import nightly
    from skadestue.ingest import delivery

    mp = pytest.MonkeyPatch()
    mp.setattr(delivery, "SQL_MIN_BYTES", 0 if request.param == "duckdb" else 10**12)
    request.addfinalizer(mp.undo)

    paths, settings, kwargs = demo_setup(tmp_path_factory.mktemp("privacy"), scale=0.15, years=(2022, 2024), seed=5)
    (paths.er_dir / "zz_privat.csv").write_text(_er_delivery(), encoding="utf-8")
    uheld, personer = _police_deliveries()
    (paths.police_dir / "uheld_zz_privat.csv").write_text(uheld, encoding="cp1252")
    (paths.police_dir / "personer_zz_privat.csv").write_text(personer, encoding="utf-8")
    capture = _Capture()
    loggers = [logging.getLogger(), logging.getLogger("prefect"), logging.getLogger("skadestue")]
    for lg in loggers:
        lg.addHandler(capture)
    # every library log line, INFO included, goes to the capture and to Prefect's log store
    package = logging.getLogger("skadestue")
    level = package.level
    package.setLevel(logging.DEBUG)
    try:
        summary = nightly(**kwargs)
    finally:
        package.setLevel(level)
        for lg in loggers:
            lg.removeHandler(capture)
    return {"settings": settings, "summary": summary, "logs": capture.lines, "path": request.param}


def _files_holding(root: Path, needles: list[str]) -> list[tuple[str, str]]:
    """(file, needle) for every needle found in root (a file, or any file under a folder), as
    UTF-8 or cp1252 bytes."""
    hits = []
    encoded = [(n, n.encode("utf-8")) for n in needles] + [(n, n.encode("cp1252")) for n in needles]
    for path in [root] if root.is_file() else root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        hits += [(str(path), n) for n, b in encoded if b in data]
    return sorted(set(hits))


def _varchar_hits(database: Path, needles: list[str]) -> tuple[int, list[tuple]]:
    """(text columns scanned, (schema, table, column, needle) found) in a DuckDB file."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        cols = con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE table_schema NOT IN ('information_schema', 'pg_catalog') "
            "AND (data_type LIKE 'VARCHAR%' OR data_type = 'JSON')"
        ).fetchall()
        found = []
        for schema, table, column in cols:
            text = f'CAST("{column}" AS VARCHAR)'
            for needle in needles:
                n = con.execute(
                    f'SELECT count(*) FROM "{schema}"."{table}" WHERE contains({text}, ?)', [needle]
                ).fetchone()[0]
                if n:
                    found.append((schema, table, column, needle))
    finally:
        con.close()
    return len(cols), found


def test_the_planted_rows_were_loaded(night):
    con = duckdb.connect(str(night["settings"].warehouse), read_only=True)
    try:
        er = con.execute(
            "SELECT kontakt_id, sex, age, ulykkessted, cpr_pseudonym IS NOT NULL FROM core.er_contact "
            "WHERE kontakt_id LIKE 'PRIV-%' ORDER BY kontakt_id"
        ).fetchall()
        persons = con.execute(
            "SELECT personnr, elementnr, sex, age, length(cpr_pseudonym) FROM core.police_person "
            "WHERE uheld_id = 'PRIV-U1' ORDER BY elementnr"
        ).fetchall()
        quarantined = con.execute(
            "SELECT record_key, column_name, value, reason FROM quality.quarantine "
            "WHERE file_name = 'skadestue/zz_privat.csv' ORDER BY line_no, reason"
        ).fetchall()
        notes = con.execute(
            "SELECT line_no, column_name, value FROM quality.ingest_note "
            "WHERE file_name = 'skadestue/zz_privat.csv' ORDER BY line_no"
        ).fetchall()
    finally:
        con.close()
    # CPR -> birth date (century from the 7th digit) -> age at the accident; last digit -> sex
    assert [r[:3] for r in er] == [
        ("PRIV-0", "M", 62), ("PRIV-1", "M", 76), ("PRIV-2", "K", 18), ("PRIV-3", "K", 111),
        ("PRIV-4", "K", 116),
    ]
    assert all(r[4] for r in er)
    assert er[0][3] == "Kongensgade 12, 6700 Esbjerg, vidne [NAVN] tlf [TLF]"
    assert persons == [(1, 1, "M", 62, 64), (1, 2, "M", 76, 64)]
    assert quarantined == [
        ("SVS Esbjerg|PRIV-9", "alder", "[CPR]", "alder '[CPR]' is not a whole number"),
        ("SVS Esbjerg|[CPR]", "kontakt_id", None, "kontakt_id looks like a CPR number; the row is not stored"),
    ]
    assert notes == []  # the invalid CPR (31 February) is on the quarantined line 8
    # the planted file went through the path this run is for (only the DuckDB one logs this)
    through_duckdb = any(line.startswith("reading skadestue/zz_privat.csv (") for line in night["logs"])
    assert through_duckdb == (night["path"] == "duckdb")


def test_no_planted_value_in_the_warehouse_file_or_tables(night):
    warehouse = Path(night["settings"].warehouse)
    files = [p for p in warehouse.parent.glob(warehouse.name + "*") if p.is_file()]
    assert warehouse in files
    assert [hit for f in files for hit in _files_holding(f, _planted())] == []
    n_cols, found = _varchar_hits(warehouse, _planted())
    assert n_cols > 80
    assert found == []


def test_nothing_in_published_layers_quality_docs_logs_or_prefect(night):
    s = night["settings"]
    published = [p for p in Path(s.publish_dir).rglob("*") if p.is_file()]
    assert published, "nothing was published"
    assert _files_holding(Path(s.publish_dir), _planted()) == []
    for db_file in Path(s.publish_dir).rglob("*.duckdb"):
        assert _varchar_hits(db_file, _planted())[1] == []
    assert _files_holding(Path(s.quality_dir), _planted()) == []
    assert _files_holding(REPO / ".prefect", _planted()) == []
    logs = "\n".join(night["logs"])
    assert "loaded skadestue/zz_privat.csv" in logs  # the capture saw the ingest
    assert [n for n in _planted() if n in logs] == []
    summary = repr(night["summary"])
    assert [n for n in _planted() if n in summary] == []
    # no CPR-like 6+4 digit run at all in the text layers the road engineers and lokalråd get
    cpr_like = re.compile(rb"(?<![0-9A-Za-z])\d{6}-?\d{4}(?![0-9A-Za-z])")
    for path in published:
        if path.suffix in (".geojson", ".csv", ".json"):
            assert not cpr_like.search(path.read_bytes()), path
