"""What the ingest needs to know about each delivered source: its columns, key, CPR and
narrative columns, target tables, and the function that types its rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd

from skadestue.config import Settings
from skadestue.ingest.checks import Findings


@dataclass
class CprFacts:
    """What the ingest keeps of a CPR column (the number itself is dropped)."""

    status: pd.Series  # valid | missing | invalid
    birth_date: pd.Series  # datetime64, NaT unless valid
    sex: pd.Series  # M | K | None
    pseudonym: pd.Series  # hex HMAC or None

    @property
    def valid(self) -> pd.Series:
        return self.status == "valid"


@dataclass
class Typed:
    """Typed rows (same positions as the input) plus the findings made while typing."""

    staging: pd.DataFrame
    rejects: Findings
    notes: Findings


RowTyper = Callable[[pd.DataFrame, "CprFacts | None", Settings], Typed]


@dataclass(frozen=True)
class SourceSpec:
    """One delivered source (inputs.md §1-2)."""

    source: str  # er_contact | police_accident | police_person
    #: Canonical column names as in the input contract; frames use them lower-cased.
    columns: tuple[str, ...]
    required: tuple[str, ...]
    #: Canonical columns that identify a record (lower-cased in frames).
    key: tuple[str, ...]
    #: The same key in the staging frame (typed), used to find duplicates within a file.
    staging_key: tuple[str, ...]
    cpr_column: str | None
    #: The narrative: only its length is kept, as ``<name>_chars``.
    narrative_column: str | None
    #: Free text redacted with redact_cpr (CPR-like runs and phone numbers).
    free_text_columns: tuple[str, ...]
    raw_table: str
    staging_table: str
    type_rows: RowTyper
    #: SELECT list used to insert the typed frame into the staging table.
    staging_select: str = "*"

    def mapping(self, settings: Settings) -> dict[str, str]:
        """Canonical column -> header expected in the file (site configuration)."""
        if self.source == "er_contact":
            return dict(settings.ingest.er_columns.model_dump())
        extra = (
            settings.ingest.police_accident_columns
            if self.source == "police_accident"
            else settings.ingest.police_person_columns
        )
        return {c: c for c in self.columns} | {k.upper(): v for k, v in extra.items()}

    def glob(self, settings: Settings) -> str:
        """The inbox glob for this source."""
        return {
            "er_contact": settings.ingest.er_glob,
            "police_accident": settings.ingest.police_accident_glob,
            "police_person": settings.ingest.police_person_glob,
        }[self.source]
