"""Synthetic people: ages, sexes, CPR numbers, and made-up names for the narratives.

CPR numbers follow the real structure (DDMMYY-SSSS, century from digit 7, last digit odd for
men) so the ingest's validation is exercised, but they are drawn at random: no real person is
meant. Most satisfy the old modulus-11 check, some do not (numbers issued since 2007), and a
few are typed wrong on purpose. Names are built from syllables, never taken from a list of
real people.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Age bands (lower, upper exclusive) and their share of traffic casualties.
AGE_BANDS = ((0, 15, 0.11), (15, 18, 0.09), (18, 25, 0.15), (25, 45, 0.26), (45, 65, 0.22),
             (65, 75, 0.09), (75, 95, 0.08))

MOD11_WEIGHTS = np.array([4, 3, 2, 7, 6, 5, 4, 3, 2, 1])

FIRST_SYLLABLES = ("Ka", "Jo", "Bi", "Mo", "Le", "Ru", "Ta", "Vi", "Ne", "Sø", "Ha", "Ly")
SECOND_SYLLABLES = ("ren", "lis", "bo", "mette", "ne", "sus", "rik", "vald", "dis", "ke")
SURNAME_STEMS = ("Trun", "Fjal", "Kvis", "Brom", "Hel", "Vesk", "Drov", "Pill", "Skaf", "Moll")
SURNAME_ENDINGS = ("sen", "gaard", "lund", "holt", "strup", "bæk")


def sample_ages(rng: np.random.Generator, n: int, road_user: np.ndarray) -> np.ndarray:
    """Ages at the accident; moped riders skew to 15-17, children rarely drive."""
    shares = np.array([b[2] for b in AGE_BANDS])
    band = rng.choice(len(AGE_BANDS), size=n, p=shares / shares.sum())
    moped = (road_user == "moped") & (rng.random(n) < 0.5)
    band[moped] = 1
    drivers = np.isin(road_user, ["car", "van", "truck", "bus", "motorcycle"]) & (band <= 1)
    band[drivers & (rng.random(n) < 0.8)] = 3
    lo = np.array([b[0] for b in AGE_BANDS])[band]
    hi = np.array([b[1] for b in AGE_BANDS])[band]
    return lo + np.floor(rng.random(n) * (hi - lo)).astype(int)


def birth_dates(rng: np.random.Generator, ages: np.ndarray, on: pd.Series) -> pd.Series:
    """A birth date giving exactly ``ages`` on the dates ``on``."""
    on = pd.to_datetime(on).dt.normalize()
    days_since_birthday = np.floor(rng.random(len(ages)) * 365).astype(int)
    born = on - pd.to_timedelta(days_since_birthday, unit="D")
    return born - pd.to_timedelta(ages * 365.25, unit="D").round("D")


def _century_digit(rng: np.random.Generator, years: np.ndarray) -> np.ndarray:
    """Digit 7 of the CPR number consistent with the birth year (the century rule)."""
    d = np.where(years < 1937, rng.integers(0, 4, len(years)), rng.choice([0, 1, 2, 3, 4, 9], len(years)))
    d = np.where(years >= 2000, rng.choice([4, 5, 6, 7, 8, 9], len(years)), d)
    return np.where((years >= 2000) & (years > 2036), rng.choice([5, 6, 7, 8], len(years)), d)


def make_cpr(rng: np.random.Generator, born: pd.Series, sex: np.ndarray, mod11_share: float = 0.93) -> np.ndarray:
    """10-digit CPR strings for birth dates and sexes (M odd, K even last digit)."""
    born = pd.to_datetime(born)
    n = len(born)
    years = born.dt.year.to_numpy()
    head = np.stack([born.dt.day.to_numpy() // 10, born.dt.day.to_numpy() % 10,
                     born.dt.month.to_numpy() // 10, born.dt.month.to_numpy() % 10,
                     (years % 100) // 10, years % 10, _century_digit(rng, years)], axis=1)
    digits = np.concatenate([head, rng.integers(0, 10, (n, 3))], axis=1)
    male = sex == "M"
    want_mod11 = rng.random(n) < mod11_share
    todo = want_mod11.copy()
    for _ in range(60):  # redraw digits 8-9 until the check digit exists and has the right parity
        if not todo.any():
            break
        digits[todo, 7:9] = rng.integers(0, 10, (int(todo.sum()), 2))
        check = (-(digits[:, :9] @ MOD11_WEIGHTS[:9])) % 11
        ok = (check < 10) & ((check % 2 == 1) == male)
        digits[todo & ok, 9] = check[todo & ok]
        todo &= ~ok
    plain = ~want_mod11 | todo
    last = rng.integers(0, 5, n) * 2 + male.astype(int)
    digits[plain, 9] = last[plain]
    return (digits.astype(np.uint8) + ord("0")).view("S10").ravel().astype(str)


def is_mod11(cpr: str) -> bool:
    """True when a 10-digit CPR passes the old modulus-11 check."""
    return len(cpr) == 10 and cpr.isdigit() and int(np.array([int(c) for c in cpr]) @ MOD11_WEIGHTS) % 11 == 0


def format_cpr(rng: np.random.Generator, cpr: np.ndarray, dash_share: float = 0.3) -> np.ndarray:
    """How a clerk types a CPR: with or without the dash (blank stays blank)."""
    cpr = pd.Series(cpr, dtype=object).fillna("")
    dashed = cpr.str[:6] + "-" + cpr.str[6:]
    use = (rng.random(len(cpr)) < dash_share) & (cpr.str.len() == 10)
    return np.where(use, dashed, cpr)


def malform_cpr(rng: np.random.Generator, cpr: np.ndarray) -> np.ndarray:
    """Typing errors that make a CPR unusable: a digit lost, an impossible date, a letter."""
    cpr = pd.Series(cpr, dtype=object)
    kind = rng.integers(0, 4, len(cpr))
    lost = cpr.str[:4] + cpr.str[5:]
    bad_day = "3" + rng.integers(2, 10, len(cpr)).astype(str) + cpr.str[2:6] + "-" + cpr.str[6:]
    letter = cpr.str[:7] + "X" + cpr.str[8:]
    bad_month = cpr.str[:2] + "1" + rng.integers(3, 10, len(cpr)).astype(str) + cpr.str[4:]
    return np.select([kind == 0, kind == 1, kind == 2], [lost, bad_day, letter], bad_month)


def synthetic_names(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` made-up 'First Last' names built from syllables (no real name list)."""
    first = (np.array(FIRST_SYLLABLES, dtype=object)[rng.integers(0, len(FIRST_SYLLABLES), n)]
             + np.array(SECOND_SYLLABLES, dtype=object)[rng.integers(0, len(SECOND_SYLLABLES), n)])
    last = (np.array(SURNAME_STEMS, dtype=object)[rng.integers(0, len(SURNAME_STEMS), n)]
            + np.array(SURNAME_ENDINGS, dtype=object)[rng.integers(0, len(SURNAME_ENDINGS), n)])
    return (first + " " + last).astype(str)


def synthetic_name_regex() -> str:
    """A regex matching exactly the names ``synthetic_names`` can produce."""
    return (f"(?:{'|'.join(FIRST_SYLLABLES)})(?:{'|'.join(SECOND_SYLLABLES)}) "
            f"(?:{'|'.join(SURNAME_STEMS)})(?:{'|'.join(SURNAME_ENDINGS)})")


def phone_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """Danish-looking 8-digit phone numbers, written '20 12 34 56' or '20123456'."""
    nums = rng.integers(20_000_000, 99_999_999, n).astype(str)
    s = pd.Series(nums)
    spaced = s.str[0:2] + " " + s.str[2:4] + " " + s.str[4:6] + " " + s.str[6:8]
    return np.where(rng.random(n) < 0.6, spaced, s).astype(str)


def make_persons(rng: np.random.Generator, on: pd.Series, road_user: np.ndarray,
                 no_cpr_share: np.ndarray | float) -> pd.DataFrame:
    """One synthetic person per row: age at ``on``, sex, birth date, CPR ('' for none)."""
    n = len(on)
    ages = sample_ages(rng, n, np.asarray(road_user))
    male_share = np.where(np.isin(road_user, ["motorcycle", "moped", "truck"]), 0.8, 0.58)
    sex = np.where(rng.random(n) < male_share, "M", "K")
    born = birth_dates(rng, ages, on)
    cpr = make_cpr(rng, born, sex)
    no_cpr = rng.random(n) < no_cpr_share
    cpr = np.where(no_cpr, "", cpr)
    return pd.DataFrame({"age": ages, "sex": sex, "birth_date": born.to_numpy(), "cpr": cpr})
