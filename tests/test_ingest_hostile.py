"""Hostile delivery files, one night, each with its exact outcome: what loaded, what was
quarantined and why, which files were rejected whole. All people are synthetic."""

from __future__ import annotations


import pytest

from skadestue.config import Settings
from skadestue.db import connect
from skadestue.ingest import build_core, delivery, ingest_inbox

KEY = "synthetic-hostile-key"
H = "kontakt_id;sygehus;ankomst;cpr;koen;alder;transportmiddel;ulykkessted\n"
FILES: dict[str, bytes] = {
    "skadestue/a_empty.csv": b"",
    "skadestue/b_header_only.csv": H.encode(),
    "skadestue/c_utf16.csv": (H + "C1;SVS Esbjerg;2024-01-01;;;;;\n").encode("utf-16"),
    "skadestue/d_rows.csv": (
        H
        + "D1;SVS Esbjerg;2024-01-01 10:00;;M;30;2;Storegade 1   \n"
        + "D2;SVS Esbjerg;2024-01-01 11:00;;M;30;2;Storegade 1;extra;more\n"  # too many delimiters
        + "D3;SVS Esbjerg;2024-01-01 12:00;3102871234;K;41;5;vidne Jens Hansen 0101001234\n"
        + 'D4;SVS Esbjerg;2024-01-01 13:00;;K;41;5;"Storegade 1; baghus"\n'  # quoted delimiter
        + 'D5;SVS Esbjerg;2024-01-01 14:00;;K;41;5;"Storegade'  # truncated inside a quote
    ).encode(),
    "skadestue/e_cp1252.csv": "kontakt_id,sygehus,ankomst,alder\nE1,SHS Sønderborg,01-02-2024 10:00,7\n".encode("cp1252"),
    "skadestue/e_utf8.csv": "kontakt_id;sygehus;ankomst;alder\nE2;SHS Sønderborg;2024-02-01;8\n".encode(),
    "skadestue/f_binary.csv": b"\x00\x01\x02PK\x03\x04garbage",
    "skadestue/g_leading_blank.csv": b"\n\nkontakt_id;sygehus;ankomst\n",
    "skadestue/h_truncated.csv": (H + "H1;SVS Esbjerg;2024-01-01 10:00;;M;30;2;x\nH2;SVS Esb").encode(),
}


@pytest.fixture(scope="module", params=["pandas", "duckdb"])
def night(request, tmp_path_factory):
    """The night, loaded by either ingest path (small files normally take the pandas one)."""
    mp = pytest.MonkeyPatch()
    mp.setattr(delivery, "SQL_MIN_BYTES", 0 if request.param == "duckdb" else 10**12)
    inbox = tmp_path_factory.mktemp("hostile")
    for rel, data in FILES.items():
        path = inbox / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    # the same file delivered twice in one night under another name
    (inbox / "skadestue/z_copy_of_d.csv").write_bytes(FILES["skadestue/d_rows.csv"])
    settings = Settings(inbox=inbox, pseudonym_key=KEY)
    con = connect(":memory:")
    report = ingest_inbox(con, settings, "run-1")
    build_core(con, settings)
    yield {"con": con, "report": report, "settings": settings, "inbox": inbox}
    con.close()
    mp.undo()


def _rows(con, sql: str, *params) -> list[tuple]:
    return con.execute(sql, list(params)).fetchall()


def test_each_file_has_its_exact_outcome(night):
    got = {
        d.file: (d.status, d.rows_read, d.rows_loaded, d.rows_quarantined, d.encoding, d.message)
        for d in night["report"].deliveries
    }
    neither = "file is neither UTF-8 nor Windows-1252 text (binary, UTF-16 or corrupt?)"
    empty = "file is empty or its first line (the header) is blank"
    broken = "broken quoting (unexpected end of data); the file was read one line per record"
    assert got == {
        "skadestue/a_empty.csv": ("rejected", 0, 0, 0, None, empty),
        "skadestue/b_header_only.csv": ("loaded", 0, 0, 0, "utf-8", "header only: the file holds no records"),
        "skadestue/c_utf16.csv": ("rejected", 2, 0, 2, None, neither),
        "skadestue/d_rows.csv": ("loaded", 5, 3, 2, "utf-8", broken),
        "skadestue/e_cp1252.csv": ("loaded", 1, 1, 0, "cp1252", None),
        "skadestue/e_utf8.csv": ("loaded", 1, 1, 0, "utf-8", None),
        "skadestue/f_binary.csv": ("rejected", 0, 0, 0, None, neither),
        "skadestue/g_leading_blank.csv": ("rejected", 0, 0, 0, None, empty),
        "skadestue/h_truncated.csv": ("loaded", 2, 1, 1, "utf-8", None),
    }
    assert night["report"].skipped_duplicates == ["skadestue/z_copy_of_d.csv"]
    con = night["con"]
    assert _rows(con, "SELECT count(*) FROM ops.delivery WHERE rows_read <> rows_loaded + rows_quarantined") == [(0,)]
    assert _rows(con, "SELECT action FROM ops.run_file WHERE file_name = 'skadestue/z_copy_of_d.csv'") == [
        ("skipped_duplicate",)
    ]


def test_row_reasons(night):
    q = _rows(
        night["con"],
        "SELECT file_name, line_no, record_key, reason FROM quality.quarantine ORDER BY file_name, line_no, reason",
    )
    assert q == [
        ("skadestue/a_empty.csv", None, None,
         "whole file rejected: file is empty or its first line (the header) is blank"),
        ("skadestue/c_utf16.csv", None, None,
         "whole file rejected: file is neither UTF-8 nor Windows-1252 text (binary, UTF-16 or corrupt?)"),
        ("skadestue/d_rows.csv", 3, "SVS Esbjerg|D2", "line has 10 fields, the header has 8 (extra values)"),
        ("skadestue/d_rows.csv", 6, "SVS Esbjerg|D5",
         "line ends inside a quoted field (unclosed quote, or the file was cut off)"),
        ("skadestue/f_binary.csv", None, None,
         "whole file rejected: file is neither UTF-8 nor Windows-1252 text (binary, UTF-16 or corrupt?)"),
        ("skadestue/g_leading_blank.csv", None, None,
         "whole file rejected: file is empty or its first line (the header) is blank"),
        ("skadestue/h_truncated.csv", 3, "SVS Esb|H2", "line has 2 fields, the header has 8"),
        ("skadestue/h_truncated.csv", 3, "SVS Esb|H2", "missing ankomst"),
    ]


def test_loaded_rows_are_typed_and_free_text_redacted(night):
    con = night["con"]
    assert _rows(
        con, "SELECT kontakt_id, sygehus, ankomst::VARCHAR, sex, age, road_user, ulykkessted, cpr_pseudonym "
        "FROM core.er_contact ORDER BY kontakt_id",
    ) == [
        ("D1", "SVS Esbjerg", "2024-01-01 10:00:00", "M", 30, "cyclist", "Storegade 1", None),
        # invalid CPR (31 February): treated as missing, age/sex from alder/koen, name and number redacted
        ("D3", "SVS Esbjerg", "2024-01-01 12:00:00", "K", 41, "car", "vidne [NAVN] [CPR]", None),
        ("D4", "SVS Esbjerg", "2024-01-01 13:00:00", "K", 41, "car", "Storegade 1; baghus", None),
        ("E1", "SHS Sønderborg", "2024-02-01 10:00:00", None, 7, "unknown", None, None),
        ("E2", "SHS Sønderborg", "2024-02-01 00:00:00", None, 8, "unknown", None, None),
        ("H1", "SVS Esbjerg", "2024-01-01 10:00:00", "M", 30, "cyclist", "x", None),
    ]
    assert _rows(con, "SELECT file_name, line_no, column_name, value, note FROM quality.ingest_note") == [
        ("skadestue/d_rows.csv", 4, "cpr", None,
         "cpr is not a valid CPR number (DDMMYY-SSSS with a real birth date); treated as missing, "
         "age and sex from the other columns"),
    ]
    # raw keeps every delivered row (also the quarantined ones), without the CPR itself
    assert _rows(
        con, "SELECT kontakt_id, line_no, cpr_status, ulykkessted FROM raw.er_contact "
        "WHERE kontakt_id LIKE 'D%' ORDER BY line_no",
    ) == [
        ("D1", 2, "missing", "Storegade 1"), ("D2", 3, "missing", "Storegade 1"),
        ("D3", 4, "invalid", "vidne [NAVN] [CPR]"), ("D4", 5, "missing", "Storegade 1; baghus"),
        ("D5", 6, "missing", "Storegade"),
    ]


def test_rerunning_the_same_night_gives_the_same_warehouse(night):
    con, settings = night["con"], night["settings"]
    tables = ("raw.er_contact", "staging.er_contact", "core.er_contact", "quality.quarantine", "quality.ingest_note")
    before = {t: con.execute(f"SELECT * EXCLUDE (run_id) FROM {t} ORDER BY ALL").fetchall()
              if "quality" in t else con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}
    again = ingest_inbox(con, settings, "run-2")
    build_core(con, settings)
    assert again.deliveries == []
    assert len(again.skipped_duplicates) == len(FILES) + 1
    after = {t: con.execute(f"SELECT * EXCLUDE (run_id) FROM {t} ORDER BY ALL").fetchall()
             if "quality" in t else con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}
    assert after == before
