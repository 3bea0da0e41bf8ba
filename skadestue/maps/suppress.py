"""Disclosure control for the report tables (the rule of the lokalråd tier, outputs.md §2).

A report table is a small grid of counts (e.g. road users x [casualties, police-known,
ER-only], with a total row). Every count of a stratum that includes emergency-ward-only
casualties and lies between 1 and k-1 is hidden; then, for each additive group (a total and
the counts that sum to it: a row's casualties = police-known + ER-only, a column's total =
the sum of its categories), a group with exactly one hidden cell gets a second one hidden
(the smallest non-zero shown member, else the total), so no hidden count can be recovered by
subtraction. The same rule ``skadestue.publish.suppression`` applies to the hotspot layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Shown in tables and pop-ups instead of a hidden count.
HIDDEN = "skjult"
HIDDEN_NOTE = (
    "«skjult»: færre end {k} tilskadekomne, hvor skadestuedata indgår, eller skjult for at et "
    "sådant tal ikke kan regnes ud af de andre."
)


@dataclass
class Table:
    """Counts with columns ``n`` (casualties), ``n_police`` and ``n_er_only`` (plus others)
    and a boolean ``hidden`` frame of the same shape."""

    counts: pd.DataFrame
    hidden: pd.DataFrame

    def shown(self, column: str) -> pd.Series:
        """The column as floats with hidden cells NaN (for charts)."""
        return self.counts[column].astype(float).mask(self.hidden[column])

    def text(self, column: str) -> pd.Series:
        """The column formatted for a table: thousands with '.', hidden cells as 'skjult'."""
        return pd.Series(
            [HIDDEN if h else fmt_int(v) for v, h in zip(self.counts[column], self.hidden[column])],
            index=self.counts.index,
        )

    def police_share(self) -> pd.Series:
        """Police-known share of the casualties, NaN where either count is hidden or n is 0."""
        n = self.shown("n")
        return (self.shown("n_police") / n).where(n > 0)


def fmt_int(value) -> str:
    """12345 -> '12.345' (Danish thousands separator)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{int(value):,}".replace(",", ".")


def fmt_pct(value) -> str:
    """0.253 -> '25 %'; NaN -> 'skjult'."""
    if value is None or pd.isna(value):
        return HIDDEN
    return f"{100 * value:.0f} %"


def suppress_mask(values: np.ndarray, er: np.ndarray, groups: list[list[tuple[int, int]]], k: int,
                  force: np.ndarray | None = None) -> np.ndarray:
    """Hidden cells of ``values`` (2-D ints): primary (ER cells 1..k-1) plus complementary.

    ``er``: True where the cell's stratum includes ER-only casualties. ``groups``: lists of
    cells ``(row, col)`` whose first cell is the total of the others. ``force``: cells to hide
    anyway (hidden in another table that shows the same count).
    """
    if k < 1:
        raise ValueError(f"publish.suppression_k must be at least 1, got {k}")
    values = np.asarray(values, dtype=np.int64)
    mask = np.asarray(er, dtype=bool) & (values >= 1) & (values <= k - 1)
    if force is not None:
        mask |= np.asarray(force, dtype=bool) & (values > 0)
    for _ in range(values.size + 1):
        changed = False
        for group in groups:
            hidden = [cell for cell in group if mask[cell]]
            if len(hidden) != 1:
                continue
            members = [c for c in group[1:] if not mask[c] and values[c] > 0]
            if members:
                target = min(members, key=lambda c: values[c])
            elif not mask[group[0]] and values[group[0]] > 0:
                target = group[0]
            else:
                continue
            mask[target] = True
            changed = True
        if not changed:
            break
    return mask


def suppress_frame(counts: pd.DataFrame, k: int, *, total_row: object | None = None,
                   parts: tuple[str, ...] = ("n_police", "n_er_only"),
                   row_groups: tuple[tuple[str, ...], ...] = (),
                   force: pd.DataFrame | None = None) -> Table:
    """Suppress a table of counts (rows = strata) with columns ``n``, ``n_police``, ``n_er_only``.

    Every row: ``n = n_police + n_er_only`` and each of ``row_groups`` (``('n', 'n_killed', ...)``)
    is additive. With ``total_row`` (an index label) every column is additive down the rows:
    the total row = the sum of the others. ``force``: a boolean frame (any rows/columns of
    ``counts``) of cells to hide anyway.
    """
    counts = counts.fillna(0)
    columns = list(counts.columns)
    col = {c: i for i, c in enumerate(columns)}
    values = counts.to_numpy(dtype=np.int64)
    er_rows = values[:, col["n_er_only"]] > 0
    er = np.repeat(er_rows[:, None], len(columns), axis=1)
    groups: list[list[tuple[int, int]]] = []
    for r in range(len(counts)):
        groups.append([(r, col["n"]), *[(r, col[p]) for p in parts]])
        for g in row_groups:
            groups.append([(r, col[c]) for c in g])
    if total_row is not None:
        t = counts.index.get_loc(total_row)
        others = [r for r in range(len(counts)) if r != t]
        for c in range(len(columns)):
            groups.append([(t, c), *[(r, c) for r in others]])
    forced = None
    if force is not None:
        forced = force.astype(bool).reindex(index=counts.index, columns=columns, fill_value=False).to_numpy(dtype=bool)
    mask = suppress_mask(values, er, groups, k, forced)
    return Table(counts=counts.astype("int64"), hidden=pd.DataFrame(mask, index=counts.index, columns=columns))
