"""The analysis periods: the last N full calendar years in the data, and each year in it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class Period:
    """One period of the hotspot layers (both ends inclusive)."""

    start: dt.date
    end: dt.date
    kind: str  # window | year


def last_full_year(max_date: dt.date, as_of: dt.date) -> int:
    """The last calendar year that is complete in the data.

    A year counts as complete when the data reaches into its December (deliveries of a year
    that stop earlier are still coming in) and the year has ended by ``as_of``.
    """
    year = max_date.year if max_date.month == 12 else max_date.year - 1
    return min(year, as_of.year - 1)


def periods_for(last_year: int, period_years: int) -> list[Period]:
    """The window ``last_year - period_years + 1 .. last_year`` and each of its years."""
    first = last_year - period_years + 1
    window = Period(dt.date(first, 1, 1), dt.date(last_year, 12, 31), "window")
    years = [Period(dt.date(y, 1, 1), dt.date(y, 12, 31), "year") for y in range(first, last_year + 1)]
    return [window, *years]


def analysis_periods(
    con: duckdb.DuckDBPyConnection, period_years: int, as_of: dt.date | None = None
) -> list[Period]:
    """The periods for ``core.casualty``; empty when it holds no full year."""
    if period_years < 1:
        raise ValueError(f"hotspot.period_years must be at least 1, got {period_years}")
    max_date = con.execute("SELECT max(injury_date) FROM core.casualty").fetchone()[0]
    if max_date is None:
        return []
    last = last_full_year(max_date, as_of or dt.date.today())
    min_date = con.execute("SELECT min(injury_date) FROM core.casualty").fetchone()[0]
    if last < min_date.year:
        return []
    return periods_for(last, period_years)
