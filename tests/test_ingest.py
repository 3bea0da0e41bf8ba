"""Ingest of ER and police deliveries, and the core rebuild, on small adversarial files.

Two nights: night 1 delivers ER files (UTF-8+BOM with ';', Windows-1252 with ',' and a renamed
column), two broken files and the police files; night 2 delivers corrections and an identical
copy of a file already loaded. All people are synthetic.
"""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from skadestue.config import ErColumns, IngestSettings, Settings
from skadestue.db import connect
from skadestue.ingest import IngestAccountingError, build_core, ingest_inbox
from skadestue.ingest import delivery as delivery_mod
from skadestue.ingest.readers import content_hash

KEY = "synthetic-test-key"
#: The synthetic CPR numbers used below (valid ones and a malformed one).
CPRS = ("0503871234", "0101004000", "2412994017", "3201871234")

ER_A = (  # UTF-8 with BOM, ';', CRLF, a blank line, quoted ';' inside the narrative
    "kontakt_id;sygehus;ankomst;ulykke_tid;cpr;koen;alder;transportmiddel;modpart;ulykkessted;"
    "kommune;diagnose;bidiagnoser;afslutning;fritekst;afdeling\r\n"
    'K1;SVS Esbjerg;2024-03-05 14:32;14:10;050387-1234;;;2;5;Kongensgade 12, 6700 Esbjerg;Esbjerg;'
    'DS525;DS060, DT14;indlagt;"Pt. 050387-1234; tlf 12 34 56 78";Ortopædkirurgi\r\n'
    "\r\n"
    "K2;SVS Esbjerg;05-03-2024 01:15;23:50;;M;34;cykel;fast genstand;Rute 11 ved Ribe   ;561;DS060;;hjem;;Akut  \r\n"
    "K3;SVS Esbjerg;31-02-2023 10:00;;;;;14;;;;;;;;\r\n"
    "K4;SVS Esbjerg;2024-03-06T08:00:00;;320187-1234;K;140;1;0;;;DS800;;hjem;;\r\n"
    "K5;SVS Esbjerg;2024-03-06 09:00;;0101004000;;;el-cykel;rumskib;p-pladsen ved Bilka;Åbenrå;DS821;;død;;\r\n"
    "K6;SVS Esbjerg;2024-03-06 10:00;;;;;;;;;;;;;\r\n"
    "K6;SVS Esbjerg;2024-03-06 11:00;;;k;7;fodgænger;bil;;Kolding;DT14;;hjem;;\r\n"
    ";SVS Esbjerg;2024-03-06 12:00;;;;;1;;;;;;;;\r\n"
    "K8;SVS Esbjerg;2024-03-06 13:00;;;X;50;9;0;foran nr. 7, vidne 11 22 33 44;;;;;;\r\n"
    "K9;SVS Esbjerg;2024-03-06 13:00\r\n"
)
ER_B = (  # Windows-1252, ',', quoted fields with commas, Danish dates, header in other case
    "Kontakt_ID,SYGEHUS,Ankomsttidspunkt,ulykke_tid,cpr,koen,alder,transportmiddel,modpart,"
    "ulykkessted,kommune,diagnose,afslutning\n"
    'S1,SHS Sønderborg,07.03.2024 14:32,1432,,K,71,fodgænger,bil,"Storegade 5, 6400 Sønderborg",'
    "Sønderborg,DS720,indlagt\n"
    'S2,SHS Sønderborg,07/03/2024,,"241299-4017",,,"Cykel ",2,"krydset Storegade/Jernbanegade, Tønder",'
    "Tønder Kommune,DS60,hjem\n"
    'S3,"SHS Aabenraa",2024-03-07 09:00,2024-03-07 10:00,,,,5,5,,,DS525,hjem\n'
    'S4,SHS Sønderborg,2024-03-07 16:00,,,,,2,0,"Perlegade 1,\nSønderborg",,,\n'
)
ER_MISSING_SYGEHUS = "kontakt_id;ankomst\nK1;2024-01-01\nK2;2024-01-02\n"
ER_UNDECODABLE = b"kontakt_id;sygehus;ankomst\nK1;\x81\x8d;2024-01-01\n"
UHELD = (
    "UHELDS_ID;UHELDSDATO;KLOKKESLAET;UHELDSART;KODE_UHELDSSITUATION;UHELDKOMMUNE;VEJNAVN;HUSNR;"
    "KRYDSENDE_VEJ;VEJKODE;KM;X_KOORDINAT;Y_KOORDINAT;ANTAL_DRAEBTE;ANTAL_ALV_TILSKADEKOMNE;"
    "ANTAL_LET_TILSKADEKOMNE;SPRIT;LYS;VEJRFORHOLD;UHELDSTEKST\n"
    "U1;05.03.2024;14.10;Personskadeuheld;511;561;Kongensgade;12;;123;12/0450;477123,5;6150234,25;0;1;0;N;"
    "Dagslys;Tørt;Bilist kørte ind i cyklist, vidne tlf 12345678\n"
    "U2;2024-03-06;0830;Dødsuheld;11;0540;Ribevej;;;;;6150234;477123;1;0;0;J;Mørke;Regn;\n"
    "U3;2024-03-07;;Materielskadeuheld;;575;;;;;;;;0;0;0;;;;\n"
    "U4;2024-03-08;12:00;Personskadeuheld;;573;;;;;;100;200;0;0;2;N;;;\n"
    "U5;;;Personskadeuheld;;573;;;;;;;;0;0;1;;;;\n"
    "U10;2024-03-09;23:59;Personskadeuheld;011;Esbjerg;Storegade;;;;;490000;6200000;0;0;1;nej;;;\n"
)
PERSONER = (
    "UHELDS_ID,ELEMENTNR,PERSONNR,TRANSPORTMIDDEL,PERSONART,SKADESGRAD,ALDER,KOEN,CPR\n"
    "U1,1,1,11,10,U,45,M,\n"
    "U1,2,1,61,60,A,,,0503871234\n"
    "U1,1,2,11,70,L,12,K,\n"
    "U3,1,1,22,10,U,50,M,\n"
    "U3,2,1,11,10,L,30,K,\n"
    "U3,3,1,71,80,A,80,M,\n"
    "U10,1,1,41,10,L,19,M,\n"
    "U6,1,1,61,60,L,30,K,\n"
    "U7,1,1,14,10,L,30,K,\n"
    "U8,1,1,61,60,X,30,K,\n"
    "U9,01,1,61,60,,25,k,320187-1234\n"
)
ER_C = (  # night 2: a correction of K2 and a new contact
    "kontakt_id,sygehus,ankomst,ulykke_tid,cpr,koen,alder,transportmiddel,modpart,ulykkessted,"
    "kommune,diagnose,bidiagnoser,afslutning,fritekst\n"
    "K2,SVS Esbjerg,05-03-2024 01:15,23:50,,M,35,cykel,fast genstand,Rute 11 ved Ribe,561,DS060,,indlagt,\n"
    "K20,SVS Esbjerg,2024-03-08 08:00,,,,,,,,,,,,\n"
)
UHELD_RETTELSE = (  # night 2: U1 counts corrected, U2 delivered with X/Y the right way round
    "UHELDS_ID;UHELDSDATO;UHELDSART;ANTAL_ALV_TILSKADEKOMNE;ANTAL_LET_TILSKADEKOMNE;X_KOORDINAT;Y_KOORDINAT\n"
    "U1;05.03.2024;Personskadeuheld;0;1;477123,5;6150234,25\n"
    "U2;2024-03-06;Dødsuheld;0;0;477123;6150234\n"
)


def _settings(inbox: Path, **ingest: object) -> Settings:
    return Settings(
        inbox=inbox, pseudonym_key=KEY,
        ingest=IngestSettings(er_columns=ErColumns(ankomst="Ankomsttidspunkt"), **ingest),
    )


def _write(inbox: Path, rel: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = inbox / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode(encoding)
    path.write_bytes(content)
    return path


@pytest.fixture(scope="module", params=["pandas", "duckdb"])
def nights(request, tmp_path_factory):
    """Run both nights on one warehouse, by either ingest path for the ER files (small files
    normally take the pandas one); returns the connection and both reports."""
    mp = pytest.MonkeyPatch()
    mp.setattr(delivery_mod, "SQL_MIN_BYTES", 0 if request.param == "duckdb" else 10**12)
    inbox = tmp_path_factory.mktemp("inbox")
    first = _write(inbox, "skadestue/2024-03-07_svs.csv", b"\xef\xbb\xbf" + ER_A.encode("utf-8"))
    _write(inbox, "skadestue/2024-03-07_shs.csv", ER_B, "cp1252")
    _write(inbox, "skadestue/2024-03-07_broken.csv", ER_MISSING_SYGEHUS)
    _write(inbox, "skadestue/2024-03-07_garbled.csv", ER_UNDECODABLE)
    _write(inbox, "politi/uheld_2024-03-07.csv", UHELD)
    _write(inbox, "politi/personer_2024-03-07.csv", PERSONER)
    _write(inbox, "andet/uheld_ignored.csv", UHELD)  # matches no glob
    settings = _settings(inbox)
    con = connect(":memory:")
    night1 = ingest_inbox(con, settings, "run-1")
    core1 = build_core(con, settings, incremental=True)
    _write(inbox, "skadestue/2024-03-08_svs.csv", ER_C)
    shutil.copy(first, inbox / "skadestue/2024-03-08_svs_kopi.csv")
    _write(inbox, "politi/uheld_2024-03-08.csv", UHELD_RETTELSE)
    night2 = ingest_inbox(con, settings, "run-2")
    core2 = build_core(con, settings, incremental=True)
    yield {"con": con, "night1": night1, "night2": night2, "core1": core1, "core2": core2}
    con.close()
    mp.undo()


def _rows(con, sql: str, *params) -> list[tuple]:
    return con.execute(sql, list(params)).fetchall()


def _delivery(report, file: str):
    return next(d for d in report.deliveries if d.file == file)


# --------------------------------------------------------------------------- files and accounting


def test_row_accounting_per_delivery(nights):
    n1 = nights["night1"]
    got = {
        d.file: (d.status, d.rows_read, d.rows_loaded, d.rows_quarantined, d.encoding, d.delimiter)
        for d in n1.deliveries
    }
    assert got == {
        "politi/personer_2024-03-07.csv": ("loaded", 11, 9, 2, "utf-8", ","),
        "politi/uheld_2024-03-07.csv": ("loaded", 6, 5, 1, "utf-8", ";"),
        "skadestue/2024-03-07_broken.csv": ("rejected", 2, 0, 2, "utf-8", ";"),
        "skadestue/2024-03-07_garbled.csv": ("rejected", 1, 0, 1, None, None),
        "skadestue/2024-03-07_shs.csv": ("loaded", 4, 3, 1, "cp1252", ","),
        "skadestue/2024-03-07_svs.csv": ("loaded", 10, 5, 5, "utf-8-sig", ";"),
    }
    # Files in sorted name order; delivery_seq is the load order.
    assert [d.file for d in n1.deliveries] == sorted(got)
    assert [d.delivery_seq for d in n1.deliveries] == [1, 2, 3, 4, 5, 6]
    con = nights["con"]
    assert _rows(con, "SELECT count(*) FROM ops.delivery WHERE rows_read <> rows_loaded + rows_quarantined") == [(0,)]
    # Quarantined rows are counted per row, though a row may have several quarantine lines.
    per_delivery = _rows(
        con,
        "SELECT d.file_name, d.rows_quarantined, count(DISTINCT q.line_no), count(q.line_no) "
        "FROM ops.delivery d LEFT JOIN quality.quarantine q USING (delivery_id) "
        "WHERE d.status = 'loaded' AND d.file_name = 'skadestue/2024-03-07_svs.csv' GROUP BY ALL",
    )
    assert per_delivery == [("skadestue/2024-03-07_svs.csv", 5, 5, 6)]
    raw_counts = dict(_rows(con, "SELECT delivery_id, count(*) FROM raw.er_contact GROUP BY 1"))
    svs = _delivery(n1, "skadestue/2024-03-07_svs.csv")
    assert raw_counts[svs.delivery_id] == 10
    assert svs.delivery_id == "er_contact-" + _rows(
        con, "SELECT content_hash FROM ops.delivery WHERE delivery_id = ?", svs.delivery_id
    )[0][0][:16]


def test_rejected_files_are_quarantined_whole_and_the_run_goes_on(nights):
    con = nights["con"]
    rows = _rows(
        con,
        "SELECT file_name, line_no, reason FROM quality.quarantine "
        "WHERE file_name LIKE '%broken%' OR file_name LIKE '%garbled%' ORDER BY file_name",
    )
    assert len(rows) == 2 and all(r[1] is None for r in rows)
    assert "required column(s) missing: sygehus" in rows[0][2]
    assert "neither UTF-8 nor Windows-1252" in rows[1][2]
    actions = dict(_rows(con, "SELECT file_name, action FROM ops.run_file WHERE run_id = 'run-1'"))
    assert actions["skadestue/2024-03-07_broken.csv"] == "rejected"
    assert actions["skadestue/2024-03-07_svs.csv"] == "loaded"
    assert "andet/uheld_ignored.csv" not in actions
    statuses = dict(_rows(con, "SELECT file_name, status FROM ops.delivery"))
    assert statuses["skadestue/2024-03-07_garbled.csv"] == "rejected"


def test_identical_redelivery_is_skipped_and_correction_is_a_new_delivery(nights):
    n2, con = nights["night2"], nights["con"]
    assert [d.file for d in n2.deliveries] == ["politi/uheld_2024-03-08.csv", "skadestue/2024-03-08_svs.csv"]
    assert "skadestue/2024-03-08_svs_kopi.csv" in n2.skipped_duplicates
    assert len(n2.skipped_duplicates) == 7  # the copy + every night-1 file still in the inbox
    kopi = _rows(
        con, "SELECT action, delivery_id FROM ops.run_file WHERE run_id='run-2' AND file_name LIKE '%kopi%'"
    )
    assert kopi == [("skipped_duplicate", _delivery(nights["night1"], "skadestue/2024-03-07_svs.csv").delivery_id)]
    assert _rows(con, "SELECT count(*) FROM ops.delivery") == [(8,)]
    assert _rows(con, "SELECT max(delivery_seq) FROM ops.delivery") == [(8,)]


# --------------------------------------------------------------------------- quarantine reasons


def test_quarantine_reasons_name_the_problem(nights):
    con = nights["con"]
    q = _rows(
        con,
        "SELECT file_name, line_no, record_key, column_name, value, reason FROM quality.quarantine "
        "WHERE line_no IS NOT NULL ORDER BY file_name, line_no, reason",
    )
    assert q == [
        ("politi/personer_2024-03-07.csv", 10, "U7|1|1", "TRANSPORTMIDDEL", "14", "unknown TRANSPORTMIDDEL code 14"),
        ("politi/personer_2024-03-07.csv", 11, "U8|1|1", "SKADESGRAD", "X",
         "unknown SKADESGRAD 'X' (expected D, A, L or U)"),
        ("politi/uheld_2024-03-07.csv", 6, "U5", "UHELDSDATO", None, "missing UHELDSDATO"),
        ("skadestue/2024-03-07_shs.csv", 4, "SHS Aabenraa|S3", "ulykke_tid", "2024-03-07 10:00",
         "ulykke_tid '2024-03-07 10:00' is after ankomst 2024-03-07 09:00"),
        ("skadestue/2024-03-07_svs.csv", 5, "SVS Esbjerg|K3", "ankomst", "31-02-2023 10:00",
         "ankomst '31-02-2023 10:00' is not a date"),
        ("skadestue/2024-03-07_svs.csv", 5, "SVS Esbjerg|K3", "transportmiddel", "14", "unknown transportmiddel code 14"),
        ("skadestue/2024-03-07_svs.csv", 6, "SVS Esbjerg|K4", "alder", "140", "age 140 out of range (0-120)"),
        ("skadestue/2024-03-07_svs.csv", 8, "SVS Esbjerg|K6", None, None,
         "duplicate key SVS Esbjerg|K6 in this file: superseded by line 9"),
        ("skadestue/2024-03-07_svs.csv", 10, "SVS Esbjerg|", "kontakt_id", None, "missing kontakt_id"),
        ("skadestue/2024-03-07_svs.csv", 12, "SVS Esbjerg|K9", None, None, "line has 3 fields, the header has 16"),
    ]


def test_coordinates_outside_denmark_load_with_a_note(nights):
    """A bad placing does not void the accident: the row loads, the geocoder flags it."""
    con = nights["con"]
    notes = _rows(
        con,
        "SELECT line_no, value, note FROM quality.ingest_note "
        "WHERE file_name = 'politi/uheld_2024-03-07.csv' AND column_name = 'X_KOORDINAT' ORDER BY line_no",
    )
    assert notes == [
        (3, "6150234 / 477123", "X/Y 6150234 / 477123 outside Denmark (EPSG:25832 E 440000-900000, "
         "N 6040000-6410000) (looks swapped); loaded, the geocoder checks it"),
        (5, "100 / 200", "X/Y 100 / 200 outside Denmark (EPSG:25832 E 440000-900000, N 6040000-6410000); "
         "loaded, placed from the road name if possible"),
    ]
    # As delivered on night 1 (U2 is corrected the right way round on night 2).
    first = nights["night1"].deliveries
    uheld = next(d for d in first if d.file == "politi/uheld_2024-03-07.csv")
    assert _rows(
        con,
        "SELECT uheld_id, x, y FROM staging.police_accident WHERE uheld_id IN ('U2', 'U4') "
        "AND delivery_id = ? ORDER BY 1",
        uheld.delivery_id,
    ) == [("U2", 6150234.0, 477123.0), ("U4", 100.0, 200.0)]


def test_unknown_words_are_kept_with_a_note(nights):
    notes = _rows(
        nights["con"],
        "SELECT line_no, column_name, value, note FROM quality.ingest_note "
        "WHERE file_name = 'skadestue/2024-03-07_svs.csv' ORDER BY line_no",
    )
    assert notes == [
        (7, "modpart", "rumskib", "modpart 'rumskib' not recognised; counterpart set to unknown"),
        (9, "kommune", "Kolding", "kommune 'Kolding' is not a known municipality; kommunekode left empty"),
        (11, "koen", "X", "koen 'X' is not M/K; sex left empty"),
    ]


# --------------------------------------------------------------------------- raw and staging


def test_raw_keeps_text_without_cpr_or_narrative(nights):
    con = nights["con"]
    k1 = con.execute(
        "SELECT line_no, ankomst, cpr_status, cpr_birth_date, cpr_sex, ulykkessted, fritekst_chars, "
        "extra->>'afdeling', length(row_hash), cpr_pseudonym FROM raw.er_contact WHERE kontakt_id = 'K1'"
    ).fetchall()
    assert len(k1) == 1
    line_no, ankomst, status, born, sex, sted, chars, afdeling, hash_len, pseudo = k1[0]
    assert (line_no, ankomst, status, born, sex) == (2, "2024-03-05 14:32", "valid", date(1987, 3, 5), "K")
    assert sted == "Kongensgade 12, 6700 Esbjerg"
    assert chars == len("Pt. 050387-1234; tlf 12 34 56 78")
    assert afdeling == "Ortopædkirurgi" and hash_len == 64 and len(pseudo) == 64
    # Trailing spaces stripped, blank = NULL, leading zeros and text kept as delivered.
    k2 = con.execute("SELECT ulykkessted, cpr_status, koen, alder FROM raw.er_contact WHERE kontakt_id='K2' ORDER BY delivery_id").fetchall()
    assert ("Rute 11 ved Ribe", "missing", "M", "34") in k2
    assert _rows(con, "SELECT cpr_status FROM raw.er_contact WHERE kontakt_id = 'K4'") == [("invalid",)]
    assert _rows(con, "SELECT ulykkessted FROM raw.er_contact WHERE kontakt_id = 'K8'") == [("foran nr. 7, vidne [TLF]",)]
    assert _rows(con, "SELECT extra_columns FROM ops.delivery WHERE file_name = 'skadestue/2024-03-07_svs.csv'") == [(["afdeling"],)]
    assert _rows(con, "SELECT uheldstekst_chars, kode_uheldssituation, km FROM raw.police_accident WHERE uhelds_id='U1' AND x_koordinat IS NOT NULL AND km IS NOT NULL") == [
        (len("Bilist kørte ind i cyklist, vidne tlf 12345678"), "511", "12/0450")
    ]


def test_staging_er_is_typed(nights):
    con = nights["con"]
    df = con.execute(
        "SELECT kontakt_id, ankomst, ulykke_tid, injury_date, sex, age, road_user, counterpart, kommunekode, "
        "bidiagnoser, afslutning, severity, cpr_pseudonym IS NOT NULL AS has_pseudonym "
        "FROM staging.er_contact WHERE delivery_seq <= 6 ORDER BY kontakt_id"
    ).df().set_index("kontakt_id")
    assert list(df.index) == ["K1", "K2", "K5", "K6", "K8", "S1", "S2", "S4"]
    k1 = df.loc["K1"]
    assert k1.ulykke_tid == pd.Timestamp("2024-03-05 14:10") and k1.injury_date == pd.Timestamp("2024-03-05")
    assert (k1.sex, k1.age, k1.road_user, k1.counterpart, k1.kommunekode) == ("K", 37, "cyclist", "car", "0561")
    assert list(k1.bidiagnoser) == ["DS060", "DT14"] and k1.severity == "serious" and k1.has_pseudonym
    k2 = df.loc["K2"]  # tourist: bare time later than arrival = the day before
    assert k2.ulykke_tid == pd.Timestamp("2024-03-04 23:50") and k2.injury_date == pd.Timestamp("2024-03-04")
    assert (k2.sex, k2.age, k2.counterpart, k2.severity, k2.has_pseudonym) == ("M", 34, "fixed_object", "slight", False)
    k5 = df.loc["K5"]  # CPR born 2000-01-01 (7th digit 4), no mod-11 needed
    assert (k5.sex, k5.age, k5.road_user, k5.counterpart, k5.kommunekode, k5.severity) == (
        "K", 24, "e_bike", "unknown", "0580", "killed")
    k6 = df.loc["K6"]  # the later of the two K6 lines
    assert k6.ankomst == pd.Timestamp("2024-03-06 11:00")
    assert (k6.sex, k6.age, k6.road_user, k6.counterpart, k6.severity) == ("K", 7, "pedestrian", "car", "slight")
    assert pd.isna(k6.kommunekode)
    k8 = df.loc["K8"]
    assert (k8.road_user, k8.counterpart, k8.severity, k8.age) == ("unknown", "none", "unknown", 50)
    assert pd.isna(k8.sex)
    s1 = df.loc["S1"]  # Windows-1252 file, renamed column 'Ankomsttidspunkt', 1432 time format
    assert s1.ankomst == pd.Timestamp("2024-03-07 14:32") and s1.ulykke_tid == pd.Timestamp("2024-03-07 14:32")
    assert (s1.road_user, s1.counterpart, s1.kommunekode, s1.severity, s1.age, s1.sex) == (
        "pedestrian", "car", "0540", "serious", 71, "K")
    s2 = df.loc["S2"]
    assert s2.ankomst == pd.Timestamp("2024-03-07 00:00")
    assert (s2.road_user, s2.counterpart, s2.kommunekode, s2.severity, s2.age, s2.sex) == (
        "cyclist", "cyclist", "0550", "slight", 24, "M")
    assert _rows(con, "SELECT sygehus, ulykkessted FROM staging.er_contact WHERE kontakt_id = 'S2'") == [
        ("SHS Sønderborg", "krydset Storegade/Jernbanegade, Tønder")
    ]
    # A quoted field spanning two lines: one record, numbered by the line it starts on.
    assert _rows(con, "SELECT line_no, ulykkessted FROM raw.er_contact WHERE kontakt_id = 'S4'") == [
        (5, "Perlegade 1,\nSønderborg")
    ]


def test_staging_police_is_typed(nights):
    con = nights["con"]
    u1 = con.execute(
        "SELECT uheldsdato, klokkeslaet, kommunekode, vejkode, km_m, x, y, sprit, severity, kode_uheldssituation "
        "FROM staging.police_accident WHERE uheld_id = 'U1' ORDER BY delivery_seq LIMIT 1"
    ).fetchone()
    assert u1[0] == date(2024, 3, 5) and str(u1[1]) == "14:10:00"
    assert u1[2:] == ("0561", "0123", 12450, 477123.5, 6150234.25, False, "serious", "511")
    u10 = _rows(con, "SELECT kommunekode, sprit, severity, kode_uheldssituation FROM staging.police_accident WHERE uheld_id='U10'")
    assert u10 == [("0561", False, "slight", "011")]
    p = _rows(
        con,
        "SELECT uheld_id, elementnr, personnr, road_user, severity, skadesgrad, sex, age, birth_date "
        "FROM staging.police_person WHERE uheld_id IN ('U1', 'U9') ORDER BY ALL",
    )
    assert p == [
        ("U1", 1, 1, "car", "uninjured", "U", "M", 45, None),
        ("U1", 1, 2, "car", "slight", "L", "K", 12, None),
        ("U1", 2, 1, "cyclist", "serious", "A", "K", None, date(1987, 3, 5)),
        ("U9", 1, 1, "cyclist", "unknown", None, "K", 25, None),
    ]


# --------------------------------------------------------------------------- core


def test_core_newest_delivery_wins_and_raw_keeps_both(nights):
    con = nights["con"]
    assert nights["core1"] == {"er_contact": 8, "police_accident": 5, "police_person": 9,
                               "police_person_without_accident": 2, "full_build": 1,
                               "rebuilt_er_contact": 8, "rebuilt_police_accident": 5, "rebuilt_police_person": 9}
    # night 2 rebuilds only what it delivered: K2 and K20; U1 and U2, and the persons of both
    assert nights["core2"] == {"er_contact": 9, "police_accident": 5, "police_person": 9,
                               "police_person_without_accident": 2, "full_build": 0,
                               "rebuilt_er_contact": 2, "rebuilt_police_accident": 2, "rebuilt_police_person": 2}
    k2 = _rows(con, "SELECT age, afslutning, severity, delivery_id, x, geocode_quality, casualty_id FROM core.er_contact WHERE kontakt_id='K2'")
    c_id = _delivery(nights["night2"], "skadestue/2024-03-08_svs.csv").delivery_id
    assert k2 == [(35, "indlagt", "serious", c_id, None, "none", None)]
    assert _rows(con, "SELECT alder FROM raw.er_contact WHERE kontakt_id='K2' ORDER BY alder") == [("34",), ("35",)]
    acc = _rows(con, "SELECT uheld_id, severity, x, y, geocode_quality FROM core.police_accident ORDER BY uheld_id")
    assert acc == [
        ("U1", "slight", 477123.5, 6150234.25, "police"),
        ("U10", "slight", 490000.0, 6200000.0, "police"),
        ("U2", "killed", 477123.0, 6150234.0, "police"),  # the corrected delivery, X/Y now the right way
        ("U3", "unknown", None, None, "none"),
        # Loaded as delivered; the geocoder flags the placing as outside Denmark.
        ("U4", "slight", 100.0, 200.0, "police"),
    ]


def test_core_police_person_counterpart_and_age(nights):
    rows = _rows(
        nights["con"],
        "SELECT uheld_id, elementnr, personnr, road_user, counterpart, age FROM core.police_person ORDER BY ALL",
    )
    assert rows == [
        ("U1", 1, 1, "car", "cyclist", 45),
        ("U1", 1, 2, "car", "cyclist", 12),
        ("U1", 2, 1, "cyclist", "car", 37),  # from the CPR (born 1987-03-05), not ALDER (blank)
        ("U10", 1, 1, "motorcycle", "none", 19),
        ("U3", 1, 1, "van", "other", 50),
        ("U3", 2, 1, "car", "van", 30),
        ("U3", 3, 1, "pedestrian", "van", 80),
        ("U6", 1, 1, "cyclist", "none", 30),
        ("U9", 1, 1, "cyclist", "none", 25),
    ]


# --------------------------------------------------------------------------- privacy


def test_no_cpr_number_anywhere_in_the_warehouse(nights):
    con = nights["con"]
    cols = _rows(
        con,
        "SELECT table_schema, table_name, column_name FROM information_schema.columns "
        "WHERE table_schema IN ('raw', 'staging', 'core', 'quality', 'ops', 'marts') "
        "AND (data_type LIKE 'VARCHAR%' OR data_type = 'JSON')",
    )
    assert len(cols) > 50
    cpr_like = re.compile(r"(?<![0-9A-Za-z])\d{6}[-\s]?\d{4}(?![0-9A-Za-z])")
    plain = set(CPRS) | {f"{c[:6]}-{c[6:]}" for c in CPRS}
    scanned = 0
    for schema, table, column in cols:
        values = con.execute(f'SELECT CAST("{column}" AS VARCHAR) FROM {schema}.{table} WHERE "{column}" IS NOT NULL').fetchall()
        for (v,) in values:
            scanned += 1
            assert not cpr_like.search(v), f"CPR-like value in {schema}.{table}.{column}: {v!r}"
            assert not any(p in v for p in plain), f"CPR in {schema}.{table}.{column}"
            assert "Pt. " not in v and "vidne tlf" not in v, f"narrative in {schema}.{table}.{column}"
    assert scanned > 300


# --------------------------------------------------------------------------- mapping, atomicity


def test_renamed_column_needs_the_mapping(tmp_path):
    inbox = tmp_path / "inbox"
    _write(inbox, "skadestue/a.csv", ER_B, "cp1252")
    con = connect(":memory:")
    default = Settings(inbox=inbox, pseudonym_key=KEY)
    report = ingest_inbox(con, default, "r")
    (d,) = report.deliveries
    assert (d.status, d.rows_read, d.rows_quarantined) == ("rejected", 4, 4)
    assert d.message.startswith("required column(s) missing: ankomst;")
    con.close()


def test_a_crash_mid_delivery_leaves_nothing_half_loaded(tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    _write(inbox, "politi/uheld_1.csv", UHELD)
    con = connect(":memory:")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(delivery_mod, "_insert_run_file", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        ingest_inbox(con, _settings(inbox), "r")
    for table in ("ops.delivery", "raw.police_accident", "staging.police_accident", "quality.quarantine"):
        assert _rows(con, f"SELECT count(*) FROM {table}") == [(0,)], table
    monkeypatch.undo()
    report = ingest_inbox(con, _settings(inbox), "r2")  # the next run loads it cleanly
    assert (report.deliveries[0].rows_read, report.deliveries[0].rows_loaded) == (6, 5)
    con.close()


def test_accounting_mismatch_raises_and_rolls_back(tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    _write(inbox, "politi/uheld_1.csv", UHELD)
    con = connect(":memory:")
    real = delivery_mod.prepare_delivery

    def lossy(*args, **kwargs):
        prepared = real(*args, **kwargs)
        prepared.staging = prepared.staging.iloc[1:]  # a bug that loses a row silently
        return prepared

    monkeypatch.setattr(delivery_mod, "prepare_delivery", lossy)
    with pytest.raises(IngestAccountingError, match="row accounting failed"):
        ingest_inbox(con, _settings(inbox), "r")
    assert _rows(con, "SELECT count(*) FROM raw.police_accident") == [(0,)]
    assert _rows(con, "SELECT count(*) FROM ops.delivery") == [(0,)]
    con.close()


def test_missing_key_or_inbox_is_a_clear_error(tmp_path):
    con = connect(":memory:")
    (tmp_path / "inbox").mkdir()
    with pytest.raises(Exception, match="SKADESTUE_PSEUDONYM_KEY"):
        ingest_inbox(con, Settings(inbox=tmp_path / "inbox", pseudonym_key=None), "r")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ingest_inbox(con, Settings(inbox=tmp_path / "nowhere", pseudonym_key=KEY), "r")
    con.close()


def test_unclosed_quote_does_not_swallow_the_following_rows(tmp_path):
    inbox = tmp_path / "inbox"
    _write(
        inbox, "politi/uheld_q.csv",
        'UHELDS_ID;UHELDSDATO;VEJNAVN;HUSNR\nU1;2024-01-01;"Vestergade 5;7\nU2;2024-01-02;Torvet 5"B;\nU3;2024-01-03;Y;1\n',
    )
    con = connect(":memory:")
    (d,) = ingest_inbox(con, _settings(inbox), "r").deliveries
    assert (d.rows_read, d.rows_loaded, d.rows_quarantined) == (3, 2, 1)
    assert d.message.startswith("broken quoting (")
    assert _rows(con, "SELECT line_no, reason FROM quality.quarantine") == [(2, "line has 3 fields, the header has 4")]
    assert _rows(con, "SELECT line_no, uhelds_id, vejnavn, husnr FROM raw.police_accident ORDER BY line_no") == [
        (2, "U1", "Vestergade 5;7", None), (3, "U2", 'Torvet 5"B', None), (4, "U3", "Y", "1"),
    ]
    con.close()


@pytest.mark.parametrize("size", [0, 1, 5_000_003])
def test_a_delivery_is_hashed_in_blocks_then_read_as_hashed(tmp_path, size):
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    digest, state = delivery_mod.file_digest(path)
    assert digest == content_hash(data) and state[0] == size
    delivered = delivery_mod.read_delivered(path, digest, state)
    assert delivered.digest == digest and delivered.take() == data
    with pytest.raises(RuntimeError, match="taken already"):
        delivered.take()
    path.write_bytes(data + b"\n")  # written again after it was hashed
    with pytest.raises(delivery_mod.FileChanged):
        delivery_mod.read_delivered(path, digest, state)


def test_a_file_that_changes_while_it_is_read_is_left_for_the_next_run(tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    _write(inbox, "skadestue/2024-03-07_svs.csv", ER_A)
    con = connect(":memory:")
    real = delivery_mod._file_state
    seen = []

    def growing(path):  # the writer appends a line while the file is read
        size, mtime = real(path)
        seen.append(path)
        return (size + len(seen) - 1, mtime + len(seen) - 1)

    monkeypatch.setattr(delivery_mod, "_file_state", growing)
    report = ingest_inbox(con, _settings(inbox), "r1")
    assert report.changed_while_read == ["skadestue/2024-03-07_svs.csv"] and report.deliveries == []
    assert con.execute("SELECT count(*) FROM ops.delivery").fetchone() == (0,)
    monkeypatch.setattr(delivery_mod, "_file_state", real)
    (d,) = ingest_inbox(con, _settings(inbox), "r2").deliveries
    assert d.status == "loaded" and d.rows_read == d.rows_loaded + d.rows_quarantined > 0
