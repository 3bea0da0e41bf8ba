"""Casualty statistics of the reports: aggregated in DuckDB from the published casualty
layer, then suppressed (``skadestue.maps.suppress``) before they are drawn or written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd

from skadestue.maps.labels import AGE_BAND_DA, AGE_BANDS, ROAD_USER_DA, WEEKDAYS_DA
from skadestue.maps.suppress import Table, suppress_frame

_COUNTS = """
    count(*) AS n,
    count(*) FILTER (WHERE severity IN ('killed', 'serious')) AS n_ks,
    count(*) FILTER (WHERE severity = 'killed') AS n_killed,
    count(*) FILTER (WHERE severity = 'serious') AS n_serious,
    count(*) FILTER (WHERE severity NOT IN ('killed', 'serious')) AS n_other_sev,
    count(*) FILTER (WHERE source IN ('police', 'both')) AS n_police,
    count(*) FILTER (WHERE source = 'er') AS n_er_only
"""
TOTAL = "I alt"

#: Focus groups of the plan: (key, Danish title, SQL condition on the casualty layer, and the
#: breakdown categories whose sum the group is: a group's count in the report year is hidden
#: when one of them is hidden there, so the two tables cannot be subtracted from each other).
FOCUS_GROUPS = (
    ("unge", "Unge 15–24 år i motorkøretøjer (bil, varebil, knallert, motorcykel)",
     "age_band IN ('15-17', '18-24') AND road_user IN ('car', 'van', 'moped', 'motorcycle')", None, ()),
    ("bloede", "Cyklister og fodgængere (inkl. elcykel)",
     "road_user IN ('pedestrian', 'cyclist', 'e_bike')", "road_user",
     (ROAD_USER_DA["pedestrian"], ROAD_USER_DA["cyclist"], ROAD_USER_DA["e_bike"])),
    ("boern", "Børn 0–14 år", "age_band = '0-14'", "age_band", (AGE_BAND_DA["0-14"],)),
)


class CasualtyStats:
    """Queries over ``casualty_point.parquet`` (one in-memory DuckDB connection)."""

    def __init__(self, parquet: Path, k: int):
        self.k = k
        self.con = duckdb.connect()
        self.con.execute("SET threads=1")
        self.con.execute(
            "CREATE TEMP VIEW cas AS SELECT kommunekode, CAST(injury_date AS DATE) AS d, "
            "year(injury_date) AS yr, injury_hour AS hr, isodow(injury_date) AS dow, road_user, severity, "
            "age_band, source FROM read_parquet('" + str(parquet).replace("'", "''") + "')"
        )

    def close(self) -> None:
        self.con.close()

    def years(self) -> list[int]:
        return [r[0] for r in self.con.execute("SELECT DISTINCT yr FROM cas ORDER BY 1").fetchall()]

    def last_date(self) -> dt.date | None:
        return self.con.execute("SELECT max(d) FROM cas").fetchone()[0]

    def _table(self, where: str, params: list, key: str, keys: list, *, total: bool,
               severity: bool = False, force: pd.DataFrame | None = None) -> Table:
        frame = self.con.execute(
            f"SELECT {key} AS key, {_COUNTS} FROM cas WHERE {where} GROUP BY ALL", params
        ).df().set_index("key")
        frame = frame.reindex(keys).fillna(0).astype("int64")
        if total:
            frame.loc[TOTAL] = frame.sum()
        cols = ["n", "n_police", "n_er_only"] + (["n_ks", "n_killed", "n_serious", "n_other_sev"] if severity else [])
        groups = ((("n", "n_ks", "n_other_sev"), ("n_ks", "n_killed", "n_serious")) if severity else ())
        return suppress_frame(frame[cols], self.k, total_row=TOTAL if total else None, row_groups=groups,
                              force=force)

    def by_year(self, kommunekode: str, years: list[int], condition: str = "TRUE",
                force: pd.DataFrame | None = None) -> Table:
        """Rows: years (no total row), with severity columns."""
        return self._table(f"kommunekode = ? AND yr BETWEEN ? AND ? AND ({condition})",
                           [kommunekode, min(years), max(years)], "yr", years, total=False, severity=True,
                           force=force)

    def breakdown(self, kommunekode: str, year: int, dimension: str, total_hidden: pd.Series | None = None) -> Table:
        """Rows: the categories of ``dimension`` in ``year`` plus 'I alt'; index = Danish labels."""
        if dimension == "road_user":
            keys = list(dict.fromkeys(ROAD_USER_DA))
            key, labels = "CASE WHEN road_user = 'unknown' THEN 'other' ELSE road_user END", ROAD_USER_DA
            keys = [k for k in keys if k != "unknown"]
        elif dimension == "age_band":
            keys, key, labels = list(AGE_BANDS), "age_band", AGE_BAND_DA
        elif dimension == "hour":
            keys, key = [*range(24), -1], "coalesce(hr, -1)"
            labels = {h: (f"{h:02d}" if h >= 0 else "ukendt") for h in keys}
        elif dimension == "weekday":
            keys, key = list(range(1, 8)), "dow"
            labels = {i + 1: d for i, d in enumerate(WEEKDAYS_DA)}
        else:
            raise ValueError(dimension)
        force = None
        if total_hidden is not None:  # the year's total as hidden in the year table
            force = pd.DataFrame([total_hidden.reindex(["n", "n_police", "n_er_only"]).fillna(False)], index=[TOTAL])
        table = self._table("kommunekode = ? AND yr = ?", [kommunekode, year], key, keys, total=True, force=force)
        rename = {k: labels[k] for k in keys}
        table.counts = table.counts.rename(index=rename)
        table.hidden = table.hidden.rename(index=rename)
        return table

    def half_year(self, start: dt.date, end: dt.date, kommuner: list[str]) -> Table:
        """Rows: the kommuner plus 'I alt' (the police district) for one half-year."""
        return self._table("d BETWEEN ? AND ? AND kommunekode IN (SELECT unnest(?))",
                           [start, end, kommuner], "kommunekode", kommuner, total=True, severity=True)

    def unplaced(self, start: dt.date, end: dt.date) -> int:
        """Casualties in the period with no kommune (not in any kommune's figures)."""
        return self.con.execute("SELECT count(*) FROM cas WHERE kommunekode IS NULL AND d BETWEEN ? AND ?",
                                [start, end]).fetchone()[0]


def frame_text(table: Table, columns: dict[str, str]) -> pd.DataFrame:
    """The table as formatted text (hidden cells 'skjult'), with the police share."""
    out = pd.DataFrame({label: table.text(col) for col, label in columns.items()})
    share = table.police_share()
    zero = table.counts["n"] == 0
    out["Kendt af politiet"] = [
        "–" if z else ("skjult" if pd.isna(v) else f"{100 * v:.0f} %") for v, z in zip(share, zero)
    ]
    return out
