"""The fast ER ingest path (records.py + er_sql.py) against the reference pandas path it
replaces: the same records from every file shape, the same CPR facts and audit hashes, and
the same warehouse rows for a whole demo night. All people are synthetic."""

from __future__ import annotations

import hashlib
import hmac
import re

import pandas as pd
import pyarrow as pa
import pytest

from skadestue.config import Settings
from skadestue.db import connect
from skadestue.demo import generate_demo
from skadestue.ingest import IngestAccountingError, build_core, er_sql, ingest_inbox
from skadestue.ingest import delivery as delivery_mod
from skadestue.ingest.er import ER_SPEC
from skadestue.ingest.readers import UnreadableFile, read_delivery
from skadestue.ingest.records import read_records
from skadestue.pseudonym import cpr_facts_arrow, hmac_hex_arrow, parse_cpr, pseudonymise

KEY = b"synthetic-sql-key"

FILES = {
    "plain": b"a;b;c\n1;2;3\n4;5;6\n",
    "crlf_bom": b"\xef\xbb\xbfa;b;c\r\n1;2;3\r\n\r\n4;;6\r\n",
    "cr_only": b"a,b,c\r1,2,3\r4,5,6\r",
    "quoted_delimiters": b'a,b,c\n1,"x, y",3\n"4","5 ""five""",6\n',
    "skipinitialspace": b'a;b;c\n1; "q;r" ;3\n2;  x ;\n',
    "stray_quote": b'a;b;c\n1;Torvet 5"B;3\n2;x"y;"z"\n',
    "multi_line_field": b'a;b;c\n1;"two\nlines";3\n4;5;6\n',
    "unclosed_quote": b'a;b;c\n1;"open;3\n4;5;6\n',
    "short_and_long": b"a;b;c\n1;2\n1;2;3;4;\n1;2;3;;\n;\n   \n\t\nx\n",
    "trailing_blank_lines": b"a;b\n1;2\n\n  \n\n",
    "header_only": b"a;b;c\n",
    "empty": b"",
    "leading_blank": b"\na;b\n1;2\n",
    "cp1252": "kontakt_id,sygehus\nK1,Sønderborg\n".encode("cp1252"),
    "utf16": "a;b\n1;2\n".encode("utf-16"),
    "unicode_spaces": "a;b\n\u00a01\u00a0;\u2003x\u2003\n".encode(),
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_records_are_those_of_the_csv_module(name):
    data = FILES[name]
    try:
        ref = read_delivery(data)
    except UnreadableFile as exc:
        with pytest.raises(UnreadableFile) as got:
            read_records(data)
        assert (str(got.value), got.value.rows_read) == (str(exc), exc.rows_read)
        return
    rec = read_records(data)
    got = rec.table.to_pandas()
    assert (rec.encoding, rec.delimiter, rec.header, rec.warning) == (ref.encoding, ref.delimiter, ref.header, ref.warning)
    assert got["line_no"].tolist() == ref.line_no.tolist()
    assert got["n_fields"].tolist() == ref.n_fields.tolist()
    assert got["n_lines"].tolist() == ref.n_lines.tolist()
    assert got["line_text"].tolist() == ref.line_text.tolist()
    unclosed = ref.unclosed_quote.tolist() if ref.unclosed_quote is not None else [False] * len(ref.line_no)
    assert got["unclosed"].tolist() == unclosed
    assert rec.width == len(ref.cells.columns)
    for i in range(rec.width):
        want = [None if pd.isna(v) else v for v in ref.cells[i]]
        assert [None if v is None else v for v in got[f"c{i}"]] == want, f"column {i}"


def test_records_of_the_common_shapes():
    rec = read_records(FILES["quoted_delimiters"])
    t = rec.table.to_pydict()
    assert (rec.delimiter, rec.header) == (",", ["a", "b", "c"])
    assert t["line_no"] == [2, 3] and t["c1"] == ["x, y", '5 "five"'] and t["c0"] == ["1", "4"]
    rec = read_records(FILES["short_and_long"])
    t = rec.table.to_pydict()
    # blank and whitespace-only lines are no records; ';' alone is one (two empty fields)
    assert t["line_no"] == [2, 3, 4, 5, 8] and t["n_fields"] == [2, 5, 5, 2, 1]
    assert t["c3"] == [None, "4", None, None, None]


def test_hmac_hex_arrow_is_hmac_sha256():
    texts = ["æøå 0503871234", "", "x" * 300, None, "Ankomst;SVS Esbjerg"]
    arr = pa.array(texts)
    want = [None if t is None else hmac.new(KEY, t.encode(), hashlib.sha256).hexdigest() for t in texts]
    assert hmac_hex_arrow(KEY, arr).to_pylist() == want
    assert hmac_hex_arrow(KEY, arr.slice(2)).to_pylist() == want[2:]
    long_key = b"k" * 65 + "æ".encode()  # longer than the SHA-256 block: HMAC hashes it first
    assert hmac_hex_arrow(long_key, arr).to_pylist() == [
        None if t is None else hmac.new(long_key, t.encode(), hashlib.sha256).hexdigest() for t in texts]
    many = [f"{i};050387-{i:04d};Kongensgade {i}" for i in range(5000)]
    assert hmac_hex_arrow(KEY, pa.array(many)).to_pylist() == [
        hmac.new(KEY, t.encode(), hashlib.sha256).hexdigest() for t in many]
    with pytest.raises(ValueError):
        hmac_hex_arrow(b"", arr)


def test_cpr_facts_arrow_equal_parse_cpr_and_pseudonymise():
    cprs = ["050387-1234", "0503871234", " 0503 871234", "0101004000", "2412994017", "3201871234",
            "010158-5000", "010158-4000", "0101366000", None, "12345", "abcdefghij", "290200-4000", "290201-4000"]
    got = cpr_facts_arrow(pa.array(cprs, pa.string()), KEY)
    ref = parse_cpr(pd.Series(cprs, dtype="object"))
    assert got["cpr_status"].to_pylist() == ref["status"].tolist()
    assert got["cpr_sex"].to_pylist() == [None if pd.isna(v) else v for v in ref["sex"]]
    assert got["cpr_birth_date"].to_pylist() == [None if pd.isna(v) else v.date() for v in ref["birth_date"]]
    pseudo = pseudonymise(pd.Series(cprs, dtype="object"), KEY)
    assert got["cpr_pseudonym"].to_pylist() == [None if pd.isna(v) else v for v in pseudo]
    # 010158-5000: 7th digit 5 and year 58 -> 1858; 0101366000: 7th digit 6, year 36 -> 2036
    assert got["cpr_birth_date"].to_pylist()[6:9] == [pd.Timestamp("1858-01-01").date(),
                                                      pd.Timestamp("1958-01-01").date(),
                                                      pd.Timestamp("2036-01-01").date()]


def test_duckdb_never_sees_a_cpr_number_or_the_narrative():
    data = (
        "kontakt_id;sygehus;ankomst;cpr;ulykkessted;fritekst;afdeling\n"
        "K1;SVS;2024-03-05 14:32;050387-1234;vidne Jens Hansen 0101004000;Pt. 050387-1234, tlf 12345678;"
        "kontakt 2412994017\n"
    ).encode()
    rec = read_records(data)
    cols = delivery_mod.map_columns(rec.header, ER_SPEC, ER_SPEC.mapping(Settings(pseudonym_key="k")))
    table, kept = er_sql.arrow_records(rec, ER_SPEC, cols.positions, cols.extra, Settings(pseudonym_key="k"), KEY)
    assert kept == ["afdeling"]
    cells = [v for col in table.columns if pa.types.is_string(col.type) for v in col.to_pylist() if v]
    assert not [v for v in cells if re.search(r"\d{6}-?\d{4}", v) or "Pt." in v or "Jens" in v]
    row = table.to_pylist()[0]
    assert row["ulykkessted"] == "vidne [NAVN] [CPR]" and row["_extra_0"] == "kontakt [CPR]"
    assert row["fritekst_chars"] == len("Pt. 050387-1234, tlf 12345678")
    assert row["row_hash"] == hmac.new(KEY, data.decode().splitlines()[1].encode(), hashlib.sha256).hexdigest()


def _tables(con) -> dict[str, list[tuple]]:
    excluded = {"quality.quarantine": "EXCLUDE (quarantined_at)", "quality.ingest_note": "EXCLUDE (noted_at)",
                "ops.delivery": "EXCLUDE (loaded_at)"}
    names = ("raw.er_contact", "staging.er_contact", "core.er_contact", "quality.quarantine",
             "quality.ingest_note", "ops.delivery", "ops.run_file")
    return {t: con.execute(f"SELECT * {excluded.get(t, '')} FROM {t} ORDER BY ALL").fetchall() for t in names}


def test_a_demo_night_loads_the_same_rows_as_the_reference_path(tmp_path, monkeypatch):
    paths = generate_demo(tmp_path / "demo", scale=0.1, years=(2024, 2024), seed=5)
    settings = Settings(inbox=paths.inbox, pseudonym_key=KEY.decode())
    fast = connect(":memory:")
    report = ingest_inbox(fast, settings, "r")
    build_core(fast, settings)
    monkeypatch.setattr(delivery_mod, "SQL_SOURCES", frozenset())
    ref = connect(":memory:")
    ingest_inbox(ref, settings, "r")
    build_core(ref, settings)
    got, want = _tables(fast), _tables(ref)
    er = [d for d in report.deliveries if d.source == "er_contact" and d.status == "loaded"]
    assert len(er) >= 5 and sum(d.rows_quarantined for d in er) > 0 and sum(d.notes for d in er) > 0
    assert len(got["raw.er_contact"]) == sum(d.rows_read for d in er) > 300
    for table in want:
        assert got[table] == want[table], table


def test_duplicate_rows_roll_the_delivery_back(tmp_path, monkeypatch):
    """Without primary keys (migration 015) the accounting check guards uniqueness."""
    inbox = tmp_path / "inbox"
    (inbox / "skadestue").mkdir(parents=True)
    (inbox / "skadestue/a.csv").write_text("kontakt_id;sygehus;ankomst\nK1;SVS;2024-01-01\nK2;SVS;2024-01-02\n")
    con = connect(":memory:")
    assert con.execute(
        "SELECT count(*) FROM information_schema.table_constraints "
        "WHERE table_schema IN ('raw', 'staging') AND constraint_type = 'PRIMARY KEY'"
    ).fetchone() == (0,)
    real = er_sql.write_er

    def twice(con_, spec, delivery_id, seq):
        real(con_, spec, delivery_id, seq)
        con_.execute(f"INSERT INTO staging.er_contact SELECT * FROM staging.er_contact WHERE kontakt_id = 'K1'")
        con_.execute(f"DELETE FROM staging.er_contact WHERE kontakt_id = 'K2'")

    monkeypatch.setattr(er_sql, "write_er", twice)
    with pytest.raises(IngestAccountingError, match=r"duplicate rows \(raw 2 rows on 2 lines, staging 2 rows with 1 distinct"):
        ingest_inbox(con, Settings(inbox=inbox, pseudonym_key="k"), "r")
    for table in ("ops.delivery", "raw.er_contact", "staging.er_contact", "quality.quarantine"):
        assert con.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
    monkeypatch.undo()
    (d,) = ingest_inbox(con, Settings(inbox=inbox, pseudonym_key="k"), "r2").deliveries
    assert (d.rows_read, d.rows_loaded) == (2, 2)
    con.close()
