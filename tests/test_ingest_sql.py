"""The fast ER ingest path (records.py + er_sql.py) against the reference pandas path it
replaces: the same records from every file shape, the same CPR facts and audit hashes, and
the same warehouse rows for a whole demo night. All people are synthetic."""

from __future__ import annotations

import functools
import itertools
import json
import hashlib
import hmac
import random
import re

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from skadestue.config import Settings
from skadestue.db import connect
from skadestue.demo import generate_demo
from skadestue.ingest import IngestAccountingError, build_core, er_sql, ingest_inbox
from skadestue.ingest import delivery as delivery_mod
from skadestue.ingest import records as records_mod
from skadestue.ingest.er import ER_SPEC
from skadestue.ingest.readers import UnreadableFile, read_delivery
from skadestue.ingest.records import read_records
from skadestue.ingest import sql_parse
from skadestue.ingest.parse import parse_datetime, parse_time
from skadestue.pseudonym import normalise_cpr, parse_cpr, pseudonymise

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
    "blank_and_odd_lines_between": b'a;b\n1;2\n\n \t \n3;4\n" "" q";x\n5;  \n',
    "only_blank_and_odd_lines": b'a;b\n\n  \n"x""y";z\n',
    "tab_delimited": b'a\tb\tc\n1\t "x" \t3\n4\t\t\n',
    "padded_and_quoted": b'a;b;c\n 1 ;\t2;3 \n" x ";"y";""\n"";" ";z\n',
    # bytes Python's UTF-8 codec refuses (Arrow validates UTF-8 here): read as Windows-1252
    "utf8_surrogate": b"a;b\n\xed\xa0\x80;1\n",
    "utf8_overlong": b"a;b\n\xc0\xaf;1\n",
    "utf8_truncated": b"a;b\nx;\xe2\x82\n",
    "utf8_above_max": b"a;b\n\xf4\x90\x80\x80;1\n",
    # ... or rejected
    "bom_then_invalid": b"\xef\xbb\xbfa;b\n\xff;1\n",
    "nul_in_utf8": b"a;b\n1\x00;2\n",
    "neither_utf8_nor_cp1252": b"a;b\n\x81\x8d;1\n",
    "bom_and_crlf": "\ufeffa;b\r\n\u00e6;\u00f8\r\n".encode(),
    # lines are cut with their newline (no copy of the file): the last one may have none
    "no_final_newline": b"a;b\n1;2\n3;4",
    "quoted_last_line_no_newline": b'a;b\n1;2\n"x;y";"z ""q"""',
    "bom_lf_odd_quote_last": "\ufeffa;b\n\u00e6;1\n2;x\"y".encode(),
    "blank_last_line_no_newline": b"a;b\n1;2\n \t ",
    "short_last_line_no_newline": b"a;b;c\n1;2;3\n4;5",
}


def _records(data: bytes, cpr: int | None = None):
    """read_records, and its records (hashed, ``cpr``: the CPR cell's position) as DuckDB
    gives them (by line)."""
    rec = read_records(data)
    con = duckdb.connect()
    rec.add_hashes(con, KEY, cpr)
    rec.register(con, "r")
    got = con.execute("SELECT * FROM r ORDER BY line_no").df()
    rec.unregister(con, "r")
    return rec, got


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
    rec, got = _records(data)
    assert (rec.encoding, rec.delimiter, rec.header, rec.warning) == (ref.encoding, ref.delimiter, ref.header, ref.warning)
    assert got["line_no"].tolist() == ref.line_no.tolist()
    assert got["n_fields"].tolist() == ref.n_fields.tolist()
    assert got["n_lines"].tolist() == ref.n_lines.tolist()
    assert got["row_hash"].tolist() == [hmac.new(KEY, t.encode(), hashlib.sha256).digest() for t in ref.line_text]
    unclosed = ref.unclosed_quote.tolist() if ref.unclosed_quote is not None else [False] * len(ref.line_no)
    assert got["unclosed"].tolist() == unclosed
    width = len(ref.header)
    beyond = [c for c in ref.cells.columns if c >= width]
    overflow = ref.cells[beyond].notna().any(axis=1).tolist() if beyond else [False] * len(ref.line_no)
    assert got["overflow"].tolist() == overflow
    assert rec.width == width
    for i in range(width):
        want = [None if pd.isna(v) else v for v in ref.cells[i]]
        assert [None if pd.isna(v) else v for v in got[f"c{i}"]] == want, f"column {i}"


def _simple_quoting(delimiter: str) -> str:
    """RE2 pattern of a line whose quotes all enclose whole fields (what records._quoting
    finds in numpy): the fields between delimiters, each quote-free or one quoted run."""
    d = re.escape(delimiter)
    field = f'(?:[^"{d}]*|"[^"]*")'
    return f"^{field}(?:{d}{field})*$"


@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
def test_simple_quoting_found_in_numpy_is_the_regex(delimiter):
    rng = random.Random(11)
    alphabet = ['"', '"', delimiter, delimiter, "a", " ", "æ", "\t", ",", ";", "x"]
    lines = ["".join(rng.choices(alphabet, k=rng.randint(0, 9))) for _ in range(20_000)]
    lines += ['"a"', '""', '"', '"";""', 'a;"b;c";""', '"a""b"', '"a" ;b', 'a;"b"x', '"x', 'x"']
    lines = [t + "\n" if rng.random() < 0.5 else t for t in lines]
    has_quote, simple = records_mod._quoting(pa.array(lines, pa.string()), delimiter)
    pattern = re.compile(_simple_quoting(delimiter))
    for t, h, q in zip(lines, has_quote, simple):
        body = t.rstrip("\n")
        assert h == ('"' in body), t
        assert q == (h and pattern.match(body) is not None), t
    assert simple.sum() > 500 and (has_quote & ~simple).sum() > 5000  # both kinds, many times


def test_records_of_the_common_shapes():
    rec, t = _records(FILES["quoted_delimiters"])
    assert (rec.delimiter, rec.header) == (",", ["a", "b", "c"])
    assert t["line_no"].tolist() == [2, 3] and t["c1"].tolist() == ["x, y", '5 "five"'] and t["c0"].tolist() == ["1", "4"]
    # only the line with a doubled quote went through the csv module, the other through Arrow's reader
    assert rec.parsed["line_no"].to_pylist() == [3] and rec.cells["line_no"].to_pylist() == [2] and rec.lines is None
    rec, t = _records(FILES["blank_and_odd_lines_between"])
    assert rec.cells["line_no"].to_pylist() == [2, 5, 7] and rec.parsed["line_no"].to_pylist() == [6]
    assert t["c0"].tolist() == ["1", "3", '" q', "5"] and t["c1"].tolist() == ["2", "4", "x", None]
    assert read_records(FILES["short_and_long"]).lines.num_rows == 7  # field counts differ: split in SQL...
    rec, t = _records(FILES["short_and_long"])
    assert rec.cells is None and rec.lines is None  # ... by add_hashes, into Arrow records
    # blank and whitespace-only lines are no records; ';' alone is one (two empty fields)
    assert t["line_no"].tolist() == [2, 3, 4, 5, 8] and t["n_fields"].tolist() == [2, 5, 5, 2, 1]
    assert t["overflow"].tolist() == [False, True, False, False, False]
    assert [None if pd.isna(v) else v for v in t["c2"]] == [None, "3", "3", None, None]


def test_sql_hmac_is_hmac_sha256():
    texts = ["æøå 0503871234", "", "x" * 300, None, "Ankomst;SVS Esbjerg"]
    many = [f"{i};050387-{i:04d};Kongensgade {i}" for i in range(5000)]
    long_key = b"k" * 65 + "æ".encode()  # longer than the SHA-256 block: HMAC hashes it first
    con = duckdb.connect()
    # ASCII keys hand the inner pad over as text, others as a BLOB ('6' ^ 0x36 = NUL)
    for key, values in ((KEY, texts), (long_key, texts), (KEY, many), ("nøgle-6".encode(), texts), (b"6" * 10, many)):
        hmac_sql = sql_parse.set_hmac_key(con, key)
        got = con.execute(f"SELECT {hmac_sql('t')} FROM unnest(?) WITH ORDINALITY u(t, i) ORDER BY i",
                          [values]).fetchall()
        assert [g[0] for g in got] == [
            None if t is None else hmac.new(key, t.encode(), hashlib.sha256).hexdigest() for t in values]
    sql_parse.clear_hmac_key(con)
    with pytest.raises(ValueError):
        sql_parse.set_hmac_key(con, b"")


def _sql_values(select: str, values: list, *layers: str) -> list:
    """``select`` (SQL over column t and the columns the ``layers`` add, innermost first)
    for each value, in order."""
    con = duckdb.connect()
    sql = "SELECT t, i FROM unnest(?) WITH ORDINALITY u(t, i)"
    sql_parse.set_hmac_key(con, KEY)  # ASCII: the pad goes over as text
    for layer in layers:
        sql = f"SELECT *, {layer} FROM ({sql})"
    rows = con.execute(f"SELECT {select} FROM ({sql}) ORDER BY i", [values]).fetchall()
    return [r[0] if len(r) == 1 else r for r in rows]


def test_sql_cpr_facts_equal_parse_cpr_and_pseudonymise():
    cprs = ["050387-1234", "0503871234", " 0503 871234", "0101004000", "2412994017", "3201871234",
            "010158-5000", "010158-4000", "0101366000", None, "12345", "abcdefghij", "290200-4000", "290201-4000",
            "", "0503-871234", "050387--1234", "٠٥٠٣٨٧١٢٣٤", "3112999999", "0000000000", "311299 9999",
            "+503871234", "-0503871234", "05038712345", "050387-12345", "05038-71234", "2902004000", "2902014000",
            "311299-4999", "0503871234\n", "0503\t871234"]
    facts = sql_parse.cpr_facts("_n", "_p", "_b", functools.partial(sql_parse.hmac_hex, textual=True))
    normalised = normalise_cpr(pa.array(cprs, pa.string())).to_pylist()  # in Arrow, as the records carry it
    got = _sql_values(
        ", ".join(facts[c] for c in ("cpr_status", "cpr_birth_date", "cpr_sex", "cpr_pseudonym")), normalised,
        "t AS _n", f"{sql_parse.cpr_number('_n')} AS _p", f"{sql_parse.cpr_birth_date('_p')} AS _b")
    ref = parse_cpr(pd.Series(cprs, dtype="object"))
    pseudo = pseudonymise(pd.Series(cprs, dtype="object"), KEY)
    want = [
        (s, None if pd.isna(b) else b.date(), None if pd.isna(x) else x, None if pd.isna(p) else p)
        for s, b, x, p in zip(ref["status"], ref["birth_date"], ref["sex"], pseudo)
    ]
    assert got == want
    # 010158-5000: 7th digit 5 and year 58 -> 1858; 0101366000: 7th digit 6, year 36 -> 2036
    assert [g[1] for g in got[6:9]] == [pd.Timestamp("1858-01-01").date(), pd.Timestamp("1958-01-01").date(),
                                        pd.Timestamp("2036-01-01").date()]
    assert [g[0] for g in got[:3]] == ["valid"] * 3 and got[9][0] == "missing" and got[10][0] == "invalid"


def test_normalise_cpr_is_its_regexes():
    """normalise_cpr (Arrow kernels, no dash regex) against the regexes it stands for: RE2's
    ASCII whitespace removed, then a dash 7th between ASCII digits."""
    values = [*CPRS, "ab0387-1234", "050387-12a4", "05é387-1234", "050387-١٢٣٤", "050387-123", "050387-12345",
              "050387 -1234", "-", "050387-1234-", "0503871-234", "050387\u2013" + "1234", "050387-1234\x0b"]
    want = []
    for v in values:
        if v is not None:
            v = re.sub(r"[\t\n\f\r ]+", "", v)
            m = re.fullmatch(r"([0-9]{6})-([0-9]{4})", v)
            v = m[1] + m[2] if m else v
        want.append(v)
    assert normalise_cpr(pa.array(values, pa.string())).to_pylist() == want
    chunked = pa.chunked_array([pa.array(values[:7], pa.string()), pa.array(values[7:], pa.string())])
    assert normalise_cpr(chunked).to_pylist() == want
    assert want[:2] == ["0503871234", "0503871234"] and want[-6] == "0503871234"


CPRS = ["050387-1234", "0503871234", " 0503 871234", "0101004000", "2412994017", "3201871234", "010158-5000",
        "\t010158-4000\u00a0", "0101366000", None, "12345", "abcdefghij", "290200-4000", "290201-4000", "",
        "0503-871234", "050387--1234", "٠٥٠٣٨٧١٢٣٤", "3112999999", "0000000000", "311299 9999", "0503\u00a0871234"]


@pytest.mark.parametrize("shape", ["arrow", "quoted", "sql_split"])
def test_pseudonyms_hashed_with_the_records_equal_pseudonymise(shape):
    """The CPR's keyed hash is taken in Arrow where Arrow split the lines and where DuckDB did
    (a line with another field count): the pseudonyms equal the pandas path's."""
    lines = ["kontakt_id;sygehus;ankomst;cpr"]
    for i, cpr in enumerate(CPRS):
        cell = "" if cpr is None else (f'"{cpr}"' if shape == "quoted" else cpr)
        lines.append(f"K{i};SVS;2024-03-05 14:32;{cell}")
    if shape == "sql_split":
        lines.append("K99;SVS")
    data = ("\n".join(lines) + "\n").encode()
    rec = read_records(data)
    assert (rec.cells is None) == (shape == "sql_split")
    settings = Settings(pseudonym_key=KEY.decode())
    cols = delivery_mod.map_columns(rec.header, ER_SPEC, ER_SPEC.mapping(settings))
    con = connect(":memory:")
    er_sql.prepare_er(con, rec, ER_SPEC, cols.positions, cols.extra, settings, KEY)
    got = con.execute(f"SELECT lower(hex(cpr_pseudonym)) FROM {er_sql.CELLS} WHERE line_no <= ? ORDER BY line_no",
                      [len(CPRS) + 1]).fetchall()
    cells = pd.Series([None if c is None or not c.strip() else c.strip() for c in CPRS], dtype="object")
    want = pseudonymise(cells, KEY)
    assert [g[0] for g in got] == [None if pd.isna(p) else p for p in want]
    assert sum(g[0] is not None for g in got) == 11  # the valid ones


DATES = ["2024-03-05", "2024-03-05 14:32", "2024-03-05T14:32:00", "2024-03-05 14:32:07", "05-03-2024 14:32",
         "2024-02-30 10:00:00", "0999-01-01 00:00:00", "29-02-2023 10:00", "5-03-2024 14:32", "05-03-2024 24:00", "2024-3-5 7.05", "2024-03-05 14:32:07.123",
         "05-03-2024", "05.03.2024 14:32", "5/3/2024", "05-03-2024 kl. 14.32", "05-03-2024 1432",
         "31-02-2023", "29-02-2024", "29-02-2023", "2024-13-01", "2024-00-10", "00-01-2024", "2024-01-01 24:00",
         "2024-01-01 23:60", "2024-01-01 23:59:60", "2024-01-01 23:59:59", "1999-12-31 0:00", "0999-01-01",
         "2024-01-01 24:00:00", "2024-01-01 25:00", "2024-01-01 29:59:59", "2024-01-01 19:59:59", "2024-01-01 20:00",
         "3000-01-01", "2024/03/05", "14:32", "kl. 14", "kl 14.32", "1432", "7.5", "", None, " 2024-03-05 ",
         "05-03-24", "abc", "2024-03-05 14", "٢٠٢٤-٠٣-٠٥", "10:61", "23:59:59", "9:05", "24:00", "00:00", "23:59",
         "05-03-2024 14:60", "05-03-0999 10:00", "2999-12-31 23:59:59", "3000-01-01 00:00", "05-03-2024 23:59",
         "1-1-2024", "2024-1-1", "29-02-2000", "29-02-1900 00:00", "2024-03-05 14:32:0", "+5-03-2024",
         "1677-12-31", "1678-01-01 00:00", "31-12-2261 23:59", "2262-01-01 00:00:00", "01-01-2262"]


def test_sql_dates_and_times_equal_parse_datetime_and_parse_time():
    iso, dk = sql_parse.datetime_parts("trim(t)")
    tp = sql_parse.time_parts("trim(t)")
    got = _sql_values(
        f"{sql_parse.datetime_value('_iso', '_dk')}, {sql_parse.time_seconds('_tp')}", DATES,
        f"{iso} AS _iso, {dk} AS _dk, {tp} AS _tp")
    series = pd.Series(DATES, dtype="object").map(lambda v: v.strip() if isinstance(v, str) else v)
    stamps = parse_datetime(series)
    seconds = parse_time(series).dt.total_seconds()
    want = [(None if pd.isna(s) else s.to_pydatetime(), None if pd.isna(x) else float(x))
            for s, x in zip(stamps, seconds)]
    assert got == want
    by_text = dict(zip(DATES, got))
    assert by_text["2024-03-05 14:32"][0] == pd.Timestamp("2024-03-05 14:32").to_pydatetime()
    assert by_text["14:32"][1] == 14 * 3600 + 32 * 60 and by_text["05-03-2024 24:00"] == (None, None)
    assert by_text["31-02-2023"] == (None, None) and by_text["29-02-2024"][0] is not None
    assert by_text["2024-02-30 10:00:00"][0] is None and by_text["0999-01-01 00:00:00"][0] is None
    # years pandas' nanosecond timestamps cannot hold are no dates (they used to wrap around)
    assert by_text["2999-12-31 23:59:59"] == (None, None) and by_text["2262-01-01 00:00:00"][0] is None
    assert by_text["31-12-2261 23:59"][0] == pd.Timestamp("2261-12-31 23:59").to_pydatetime()
    # the same through the ingest's layers, where strptime reads the common exact formats first
    layered = _sql_values("_d, _t", DATES, *[", ".join(a + b) for a, b in itertools.zip_longest(
        sql_parse.datetime_layers("trim(t)", "_d"), sql_parse.time_layers("trim(t)", "_t"), fillvalue=[])])
    assert layered == want
    formats = [f.replace("%d", "05").replace("%m", "03").replace("%Y", "2024").replace("%H", "14")
               .replace("%M", "32").replace("%S", "07") for f in sql_parse.FAST_DATETIME_FORMATS]
    assert len(formats) == 5
    assert set(formats) <= set(DATES)  # every fast format is among the cases above
    # a bare time is parsed only where the text is no date and time
    layers = [", ".join(a + b) for a, b in itertools.zip_longest(
        sql_parse.datetime_layers("trim(t)", "_d"),
        [[]] * 4 + sql_parse.time_layers("trim(t)", "_t", unless="_d"), fillvalue=[])]
    assert _sql_values("_d, _t", DATES, *layers) == [(d, None if d is not None else t) for d, t in want]


def test_no_table_holds_a_cpr_number_or_the_narrative():
    data = (
        "kontakt_id;sygehus;ankomst;cpr;ulykkessted;fritekst;afdeling\n"
        "K1;SVS;2024-03-05 14:32;050387-1234;vidne Jens Hansen 0101004000;Pt. 050387-1234, tlf 12345678;"
        "kontakt 2412994017\n"
        "0101004000;SVS;2024-03-05 14:32;;Torvet 1;;\n"
        "K3;SVS;050387-1234 14:32;;cyklist: Ole Hansen ramt ved Møllevej;;\n"
        "K4;SVS;05-03-2024 14:32;;Møllevej 4, tlf 12 34 56 78;;\n"
    ).encode()
    rec = read_records(data)
    settings = Settings(pseudonym_key="k")
    cols = delivery_mod.map_columns(rec.header, ER_SPEC, ER_SPEC.mapping(settings))
    con = connect(":memory:")
    prepared = er_sql.prepare_er(con, rec, ER_SPEC, cols.positions, cols.extra, settings, KEY)
    assert prepared.extra_columns == ["afdeling"] and (prepared.rows_read, prepared.rows_quarantined) == (4, 2)
    tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()]
    assert set(tables) >= {er_sql.CELLS, er_sql.FLAGGED, er_sql.BAD}
    cells = [v for t in tables for row in con.execute(f"SELECT * FROM {t}").fetchall() for v in row
             if isinstance(v, str)]
    assert cells and not [v for v in cells if re.search(r"\d{6}-?\d{4}|\d\d \d\d \d\d \d\d", v)
                          or "Pt." in v or "Jens" in v or "Ole" in v]
    others = con.execute(f"SELECT line_no, ankomst, ulykkessted FROM {er_sql.CELLS} WHERE line_no > 3 ORDER BY 1")
    assert others.fetchall() == [(4, "[CPR] 14:32", "cyklist: [NAVN] ramt ved Møllevej"),
                                 (5, "05-03-2024 14:32", "Møllevej 4, tlf [TLF]")]
    row = con.execute(f"SELECT * FROM {er_sql.CELLS} WHERE line_no = 2").df().iloc[0]
    assert row["ulykkessted"] == "vidne [NAVN] [CPR]" and json.loads(row["extra"]) == {"afdeling": "kontakt [CPR]"}
    assert row["fritekst_chars"] == len("Pt. 050387-1234, tlf 12345678")
    hashes = dict(con.execute(f"SELECT line_no, lower(hex(row_hash)) FROM {er_sql.CELLS}").fetchall())
    assert hashes == {n: hmac.new(KEY, line.encode(), hashlib.sha256).hexdigest()
                      for n, line in enumerate(data.decode().splitlines()[1:], start=2)}
    assert bytes(row["cpr_pseudonym"]) == hmac.new(KEY, b"0503871234", hashlib.sha256).digest()
    assert (row["cpr_status"], str(row["cpr_birth_date"])[:10], row["cpr_sex"]) == ("valid", "1987-03-05", "K")
    assert prepared.quarantine["reason"].tolist() == ["kontakt_id looks like a CPR number; the row is not stored",
                                                      "ankomst '[CPR] 14:32' is not a date"]
    assert prepared.quarantine["record_key"].tolist() == ["SVS|[CPR]", "SVS|K3"]
    er_sql.drop_temp(con)
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM duckdb_views() WHERE starts_with(view_name, '_ing_')").fetchone() == (0,)


def _cells_of(data: bytes):
    """The records, the cells table (rows as dicts, by line) and the findings of one ER file."""
    rec = read_records(data)
    settings = Settings(pseudonym_key="k")
    cols = delivery_mod.map_columns(rec.header, ER_SPEC, ER_SPEC.mapping(settings))
    con = connect(":memory:")
    prepared = er_sql.prepare_er(con, rec, ER_SPEC, cols.positions, cols.extra, settings, KEY)
    cells = con.execute(f"SELECT * FROM {er_sql.CELLS} ORDER BY line_no").df().to_dict("records")
    con.close()
    return rec, cells, prepared


@pytest.mark.parametrize("places_repeat", [True, False])
def test_repeating_cells_are_scrubbed_once_per_value_as_row_by_row(monkeypatch, places_repeat):
    """sygehus and ulykkessted (SCRUB_BY_VALUE) get their text rule once per distinct value
    when their values repeat: the cells are those of the row-by-row SQL rule, the CPR-like
    hospital is quarantined, names, phone numbers and CPR numbers in the place are redacted."""
    places = ["Torvet 1", "vidne Jens Hansen 0101004000", "Møllevej 4, tlf 12 34 56 78",
              "cyklist: Ole Hansen ramt", "", "Kirkevej 0101004000"]
    redacted = ["Torvet 1", "vidne [NAVN] [CPR]", "Møllevej 4, tlf [TLF]", "cyklist: [NAVN] ramt", None,
                "Kirkevej [CPR]"]
    lines = ["kontakt_id;sygehus;ankomst;ulykkessted"]
    for i in range(60):
        suffix = "" if places_repeat or not places[i % 6] else f" nr {i}"
        hospital = "0503871234" if i == 7 else ("SVS" if i % 3 else "SHS Sønderborg")
        lines.append(f"K{i};{hospital};2024-03-05 14:{i:02d};{places[i % 6]}{suffix}")
    data = ("\n".join(lines) + "\n").encode()
    rec, fast, prepared = _cells_of(data)
    parts = rec.cells if rec.cells is not None else rec.parsed
    assert {c for c in er_sql.SCRUB_BY_VALUE if f"_scrub_{c}" in parts.column_names} == (
        {"sygehus", "ulykkessted"} if places_repeat else {"sygehus"})
    assert [c["ulykkessted"] for c in fast] == [
        redacted[i % 6] and redacted[i % 6] + ("" if places_repeat else f" nr {i}") for i in range(60)]
    assert [c["sygehus"] for c in fast][:9] == ["SHS Sønderborg", "SVS", "SVS"] * 2 + ["SHS Sønderborg", "[CPR]", "SVS"]
    assert prepared.quarantine["reason"].tolist() == ["sygehus looks like a CPR number; the row is not stored"]
    assert prepared.quarantine["record_key"].tolist() == ["[CPR]|K7"]
    # the same cells as when every cell is scrubbed row by row in SQL
    monkeypatch.setattr(er_sql, "SCRUB_BY_VALUE", ())
    rec, slow, reference = _cells_of(data)
    assert not [c for c in (rec.cells if rec.cells is not None else rec.parsed).column_names if c.startswith("_scrub_")]
    assert pd.DataFrame(fast).equals(pd.DataFrame(slow)) and len(fast) == 60
    assert prepared.quarantine.equals(reference.quarantine)


def _tables(con) -> dict[str, list[tuple]]:
    excluded = {"quality.quarantine": "EXCLUDE (quarantined_at)", "quality.ingest_note": "EXCLUDE (noted_at)",
                "ops.delivery": "EXCLUDE (loaded_at)"}
    names = ("raw.er_contact", "staging.er_contact", "core.er_contact", "quality.quarantine",
             "quality.ingest_note", "ops.delivery", "ops.run_file")
    return {t: con.execute(f"SELECT * {excluded.get(t, '')} FROM {t} ORDER BY ALL").fetchall() for t in names}


def test_a_demo_night_loads_the_same_rows_as_the_reference_path(tmp_path, monkeypatch):
    paths = generate_demo(tmp_path / "demo", scale=0.1, years=(2024, 2024), seed=5)
    settings = Settings(inbox=paths.inbox, pseudonym_key=KEY.decode())
    monkeypatch.setattr(delivery_mod, "SQL_MIN_BYTES", 0)  # every ER file through DuckDB
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


_THREE = "kontakt_id;sygehus;ankomst\nK1;SVS;2024-01-01\nK2;SVS;2024-01-02\nK3;SVS;2024-01-03\n"
_K1_TWICE = "kontakt_id;sygehus;ankomst\nK2;SVS;2024-01-02\nK1;SVS;2024-01-01\nK1;SVS;2024-01-03\n"
#: Wrong writes the DuckDB path's accounting must catch (it compares staging and raw with the
#: cells table by count and hash sum, and takes exact counts only when they differ):
#: (file, the write, SQL run after it, the message).
_WRONG_WRITES = {
    "the superseded line staged instead of another": (
        _K1_TWICE, "write_staging",
        ["DELETE FROM staging.er_contact WHERE kontakt_id = 'K2'",
         "INSERT INTO staging.er_contact SELECT * REPLACE (3 AS line_no) FROM staging.er_contact WHERE kontakt_id = 'K1'"],
        r"raw 3 rows on 3 lines, staging 2 rows with 1 distinct"),
    "a line staged twice instead of another": (
        _K1_TWICE, "write_staging",
        ["DELETE FROM staging.er_contact WHERE kontakt_id = 'K2'",
         "INSERT INTO staging.er_contact SELECT * FROM staging.er_contact WHERE kontakt_id = 'K1'"],
        r"raw 3 rows on 3 lines, staging 2 rows with 1 distinct"),
    "a staged line given another line's key": (
        _THREE, "write_staging", ["UPDATE staging.er_contact SET kontakt_id = 'K3' WHERE kontakt_id = 'K2'"],
        r"raw 3 rows on 3 lines, staging 3 rows with 2 distinct"),
    "a raw line written twice instead of another": (
        _THREE, "write_raw",
        ["INSERT INTO raw.er_contact SELECT * FROM raw.er_contact WHERE kontakt_id = 'K1'",
         "DELETE FROM raw.er_contact WHERE kontakt_id = 'K2'"],
        r"raw 3 rows on 2 lines, staging 3 rows with 3 distinct"),
}


@pytest.mark.parametrize("case", _WRONG_WRITES)
def test_a_wrong_write_rolls_the_delivery_back(tmp_path, monkeypatch, case):
    data, write, after, message = _WRONG_WRITES[case]
    inbox = tmp_path / "inbox"
    (inbox / "skadestue").mkdir(parents=True)
    (inbox / "skadestue/a.csv").write_text(data)
    con = connect(":memory:")
    real = getattr(er_sql, write)

    def wrong(con_, *args):
        real(con_, *args)
        for sql in after:
            con_.execute(sql)

    monkeypatch.setattr(er_sql, write, wrong)
    monkeypatch.setattr(delivery_mod, "SQL_MIN_BYTES", 0)
    with pytest.raises(IngestAccountingError, match=r"duplicate rows \(" + message):
        ingest_inbox(con, Settings(inbox=inbox, pseudonym_key="k"), "r")
    for table in ("ops.delivery", "raw.er_contact", "staging.er_contact"):
        assert con.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
    monkeypatch.undo()
    (d,) = ingest_inbox(con, Settings(inbox=inbox, pseudonym_key="k"), "r2").deliveries
    assert (d.rows_read, d.rows_loaded) == (3, 2 if data == _K1_TWICE else 3)
    assert delivery_mod.staged_counts(con, d, ER_SPEC) == (d.rows_loaded,) * 2
    assert delivery_mod.raw_counts(con, d, ER_SPEC) == (3, 3)
    con.close()


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
    real = er_sql.write_staging

    def twice(con_, spec, delivery_id, seq):
        real(con_, spec, delivery_id, seq)
        con_.execute("INSERT INTO staging.er_contact SELECT * FROM staging.er_contact WHERE kontakt_id = 'K1'")
        con_.execute("DELETE FROM staging.er_contact WHERE kontakt_id = 'K2'")

    monkeypatch.setattr(er_sql, "write_staging", twice)
    monkeypatch.setattr(delivery_mod, "SQL_MIN_BYTES", 0)
    with pytest.raises(IngestAccountingError, match=r"duplicate rows \(raw 2 rows on 2 lines, staging 2 rows with 1 distinct"):
        ingest_inbox(con, Settings(inbox=inbox, pseudonym_key="k"), "r")
    for table in ("ops.delivery", "raw.er_contact", "staging.er_contact", "quality.quarantine"):
        assert con.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
    monkeypatch.undo()
    (d,) = ingest_inbox(con, Settings(inbox=inbox, pseudonym_key="k"), "r2").deliveries
    assert (d.rows_read, d.rows_loaded) == (2, 2)
    con.close()
