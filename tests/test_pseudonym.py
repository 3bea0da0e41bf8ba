"""CPR parsing (century rule, no modulus 11), keyed pseudonyms and free-text redaction.

All CPR numbers here are synthetic.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

import pandas as pd
import pytest

from skadestue.pseudonym import parse_cpr, pseudonymise, redact_cpr, redact_cpr_series


def _one(value: str | None) -> dict:
    row = parse_cpr(pd.Series([value])).iloc[0]
    bd = row["birth_date"]
    return {
        "status": row["status"],
        "birth_date": None if pd.isna(bd) else bd.date(),
        "sex": row["sex"],
        "cpr_norm": row["cpr_norm"],
    }


@pytest.mark.parametrize(
    "cpr, born",
    [
        ("0101873000", date(1987, 1, 1)),    # 7th digit 0-3 -> 1900s
        ("0101004000", date(2000, 1, 1)),    # 4, YY <= 36 -> 2000s
        ("0101364000", date(2036, 1, 1)),
        ("0101374000", date(1937, 1, 1)),    # 4, YY > 36 -> 1900s
        ("0101109000", date(2010, 1, 1)),    # 9 behaves like 4
        ("0101909000", date(1990, 1, 1)),
        ("0101575000", date(2057, 1, 1)),    # 5-8, YY <= 57 -> 2000s
        ("0101585000", date(1858, 1, 1)),    # 5-8, YY > 57 -> 1800s
        ("2902004000", date(2000, 2, 29)),   # leap day in 2000
    ],
)
def test_century_rule(cpr, born):
    assert _one(cpr)["birth_date"] == born
    assert _one(cpr)["status"] == "valid"


def test_formats_sex_and_no_modulus_11():
    # 050387-1234: weighted sum 139, 139 % 11 = 7 -> fails mod 11, yet it is a valid number.
    for text in ("0503871234", "050387-1234", " 050387 1234 ", "0503 87 1234"):
        got = _one(text)
        assert got == {"status": "valid", "birth_date": date(1987, 3, 5), "sex": "K", "cpr_norm": "0503871234"}
    assert _one("2412994017")["sex"] == "M"  # last digit odd
    assert _one("2412994017")["birth_date"] == date(1999, 12, 24)


@pytest.mark.parametrize(
    "text, status",
    [
        ("", "missing"), ("   ", "missing"), (None, "missing"),
        ("320187-1234", "invalid"),   # day 32
        ("290201-4000", "invalid"),   # 2001 is not a leap year
        ("011387-1234", "invalid"),   # month 13
        ("050387-123", "invalid"),    # too short
        ("05038712345", "invalid"),   # too long
        ("050387--1234", "invalid"),
        ("ukendt", "invalid"),
    ],
)
def test_missing_and_invalid(text, status):
    got = _one(text)
    assert got["status"] == status
    assert got["cpr_norm"] is None and got["sex"] is None and got["birth_date"] is None


def test_parse_keeps_index():
    s = pd.Series(["0503871234", None, "320187-1234"], index=[10, 20, 30])
    out = parse_cpr(s)
    assert list(out.index) == [10, 20, 30]
    assert out["status"].tolist() == ["valid", "missing", "invalid"]


def test_pseudonym_is_keyed_stable_hmac():
    key = b"synthetic-test-key"
    s = pd.Series(["050387-1234", "0503871234", "320187-1234", None, "2412994017"])
    p = pseudonymise(s, key)
    expected = hmac.new(key, b"0503871234", hashlib.sha256).hexdigest()
    assert p.iloc[0] == expected and p.iloc[1] == expected
    assert p.iloc[2] is None and p.iloc[3] is None
    assert len(p.iloc[4]) == 64 and p.iloc[4] != expected
    other = pseudonymise(s, b"another-key")
    assert other.iloc[0] != expected
    # Not a plain hash of the number (that could be reversed by enumerating CPR numbers).
    assert expected != hashlib.sha256(b"0503871234").hexdigest()
    with pytest.raises(ValueError):
        pseudonymise(s, b"")


def test_redact_cpr_and_phone_numbers_but_not_addresses():
    text = (
        "Pt 050387-1234 (alt. 0503871234, 050387 1234), ring 12 34 56 78 / +45 87654321 / 2233 4455. "
        "Kongensgade 12, 6700 Esbjerg, 05-03-2024 kl 14:32, Rute 11"
    )
    out = redact_cpr(text)
    assert "1234" not in out.replace("2024", "")
    assert out.count("[CPR]") == 3 and out.count("[TLF]") == 3
    assert "Kongensgade 12, 6700 Esbjerg, 05-03-2024 kl 14:32, Rute 11" in out
    assert redact_cpr(None) is None
    assert redact_cpr("tlf 12345678", phones=False) == "tlf 12345678"
    s = redact_cpr_series(pd.Series(["cykelstien ud for Vestervej 40", None, "x 0101004000 y"]))
    assert s.tolist() == ["cykelstien ud for Vestervej 40", None, "x [CPR] y"]


def test_free_text_names_after_a_role_word_are_redacted_streets_are_not():
    from skadestue.pseudonym import redact_free_text_series

    s = pd.Series([
        "foran nr. 7, vidne Jens Hansen tlf 11 22 33 44",
        "Pt. Mette-Marie Olsen 0101001234",
        "cyklist: Ole ramt ved Møllevej",
        "fører Anders And Bøgh Jensen",
        "H.C. Andersens Vej 4, Kolding",
        "krydset Vennevej/Mosevej",
        "Farvervej 3",
        None,
    ], index=range(10, 18))
    out = redact_free_text_series(s)
    assert list(out.index) == list(range(10, 18))
    assert out.tolist() == [
        "foran nr. 7, vidne [NAVN] tlf [TLF]",
        "Pt. [NAVN] [CPR]",
        "cyklist: [NAVN] ramt ved Møllevej",
        "fører [NAVN]",
        "H.C. Andersens Vej 4, Kolding",
        "krydset Vennevej/Mosevej",
        "Farvervej 3",
        None,
    ]


def test_every_text_the_name_rule_changes_is_a_candidate():
    """The RE2 pre-filter of the free-text rules keeps every text the Python rules change."""
    from skadestue.pseudonym import _NAME_CANDIDATE, _redact_names, _candidates

    texts = [
        "vidne Jens Hansen", "Vidnet: Ole", "ved navn Bo Ek", "éven Ole", "xvidne Ole", "1vidne Ole", "_vidne Ole",
        "(pt. Mette Olsen)", "PATIENTEN Karen", "kontaktperson Lis", "veninde Anna", "mor: Eva", "far,Per",
        "pårørende Åse", "Fører Ærø Hansen", "fodgængeren Ib", "Æblehaven 4", "Havnevej 2", "Farum", "krydset Mosevej",
        "cyklisten\tOle", "passageren\nOle", "ved Vidne-stien", "ønavn Kaj", "ærmor Eva",
    ]
    series = pd.Series(texts, dtype="object")
    changed = [t != _redact_names(t) for t in texts]
    candidate = _candidates(series, _NAME_CANDIDATE)
    assert sum(changed) == 14
    assert all(c for c, ch in zip(candidate, changed) if ch), [t for t, c, ch in zip(texts, candidate, changed) if ch and not c]
    # street names with a role word inside a word are no candidates any more
    assert not any(candidate[texts.index(t)] for t in ("Æblehaven 4", "Havnevej 2", "krydset Mosevej"))


def test_dates_that_do_not_exist_are_invalid_cprs():
    out = parse_cpr(pd.Series(["2902484391", "2902494391", "3104871234", "0000001234", "3112991234"]))
    assert out["status"].tolist() == ["valid", "invalid", "invalid", "invalid", "valid"]
    assert [d.date().isoformat() if pd.notna(d) else None for d in out["birth_date"]] == [
        "1948-02-29", None, None, None, "1999-12-31",
    ]
