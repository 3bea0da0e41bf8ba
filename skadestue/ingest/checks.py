"""Collecting row-level findings: quarantine reasons (the row is not loaded) and notes
(the row is loaded, a value was set to unknown/NULL) - vectorised, one mask at a time."""

from __future__ import annotations

from typing import Callable, Union

import pandas as pd

#: A reason: fixed text, a series over (at least) the masked rows, or a function building it
#: for just the masked rows (messages are built for the few bad rows, not the whole file).
Reason = Union[str, pd.Series, Callable[[pd.Index], Union[pd.Series, str]]]

FINDING_COLUMNS = ["row", "column_name", "value", "reason"]


class Findings:
    """Row findings over a frame's index (rows are positions 0..n-1)."""

    def __init__(self) -> None:
        self._parts: list[pd.DataFrame] = []

    def add(
        self,
        mask: pd.Series,
        column: str | None,
        reason: Reason,
        value: pd.Series | None = None,
    ) -> None:
        """Record ``reason`` for every row where ``mask`` is true.

        ``reason`` may be a series over just the masked rows (cheaper to build).

        ``value`` is the offending value (never pass a CPR column here).
        """
        m = pd.Series(mask).fillna(False).astype(bool)
        if not m.any():
            return
        rows = m.index[m]
        if callable(reason):
            reason = reason(rows)
        part = pd.DataFrame({"row": rows.to_numpy()})
        part["column_name"] = column
        part["value"] = (
            value[m].astype("string").to_numpy() if value is not None else None
        )
        part["reason"] = (
            reason.loc[rows].astype("string").to_numpy() if isinstance(reason, pd.Series) else reason
        )
        self._parts.append(part)

    def frame(self) -> pd.DataFrame:
        """All findings, one line per (row, problem)."""
        if not self._parts:
            return pd.DataFrame(columns=FINDING_COLUMNS).astype({"row": "int64"})
        out = pd.concat(self._parts, ignore_index=True)
        return out.astype({"row": "int64"})

    def rows(self) -> pd.Index:
        """The distinct rows with at least one finding."""
        f = self.frame()
        return pd.Index(f["row"].unique())
