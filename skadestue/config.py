"""One typed settings object for the whole pipeline.

Settings come from, in increasing priority: the defaults below, a ``skadestue.toml`` file
(the working directory's, or the one named by ``SKADESTUE_CONFIG``), and environment
variables (``SKADESTUE_INBOX``, ``SKADESTUE_WAREHOUSE``, ``SKADESTUE_PUBLISH``,
``SKADESTUE_PSEUDONYM_KEY``, ``SKADESTUE_AS_OF``). Command-line options override all of them.

The pseudonym key is never read from the TOML file: it lives in the environment (or a
Prefect secret) only, so it never ends up in the repository.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, Field

#: The repository root (holds ``warehouse/`` and ``expectations/``).
PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: The eight municipalities of Syd- og Sønderjyllands Politi (DAGI kommunekoder).
REGION_KOMMUNER: dict[str, str] = {
    "0510": "Haderslev",
    "0540": "Sønderborg",
    "0550": "Tønder",
    "0561": "Esbjerg",
    "0563": "Fanø",
    "0573": "Varde",
    "0575": "Vejen",
    "0580": "Aabenraa",
}

DEMO_PSEUDONYM_KEY = "demo-key-not-for-real-data"


class ErColumns(BaseModel):
    """Map from the canonical ER column name to the name used in a site's export.

    A site whose export says ``Ankomsttidspunkt`` instead of ``ankomst`` sets
    ``[ingest.er_columns] ankomst = "Ankomsttidspunkt"`` in ``skadestue.toml``.
    """

    model_config = {"extra": "forbid"}

    kontakt_id: str = "kontakt_id"
    sygehus: str = "sygehus"
    ankomst: str = "ankomst"
    ulykke_tid: str = "ulykke_tid"
    cpr: str = "cpr"
    koen: str = "koen"
    alder: str = "alder"
    transportmiddel: str = "transportmiddel"
    modpart: str = "modpart"
    ulykkessted: str = "ulykkessted"
    kommune: str = "kommune"
    diagnose: str = "diagnose"
    bidiagnoser: str = "bidiagnoser"
    afslutning: str = "afslutning"
    fritekst: str = "fritekst"


class IngestSettings(BaseModel):
    er_glob: str = "skadestue/*.csv"
    police_accident_glob: str = "politi/uheld_*.csv"
    police_person_glob: str = "politi/personer_*.csv"
    er_columns: ErColumns = Field(default_factory=ErColumns)
    #: Police exports: canonical (upper case, vejman.dk) name -> the name in the file.
    police_accident_columns: dict[str, str] = Field(default_factory=dict)
    police_person_columns: dict[str, str] = Field(default_factory=dict)
    max_age: int = 120


class GeocodeSettings(BaseModel):
    #: rapidfuzz ratio (0-100) a street name must reach to count as a fuzzy match.
    fuzzy_min_score: float = 88.0
    #: A fuzzy match only counts when it beats the runner-up by at least this margin.
    fuzzy_margin: float = 4.0
    #: Street-only matches: uncertainty = half the street length, capped at this.
    street_uncertainty_cap_m: float = 1000.0
    #: Same name in several places: C when the candidates lie within this, else not placed.
    ambiguous_max_spread_m: float = 2000.0
    #: Two streets with no shared junction node still "meet" when their lines are this close.
    junction_max_gap_m: float = 30.0
    #: Police X/Y this close to the stated kommune's polygon count as inside (coarse DAGI).
    police_border_tolerance_m: float = 250.0
    #: A person's fixes of unplaced texts (CSV: location_text, kommunekode_hint, x, y or
    #: address, quality, note; see skadestue.geocode.review), re-applied on every run.
    #: A missing file means no corrections.
    corrections_file: Path | None = Path("data/geocode_corrections.csv")
    #: Uncertainty (m) of a manual x/y correction when the file gives none.
    manual_uncertainty_m: float = 10.0
    #: Batches of at least parallel_min_texts distinct texts are split over this many forked
    #: processes (a first load / back-fill; a normal night geocodes far fewer new texts).
    #: 1 by default: forking a process that holds DuckDB and Prefect threads can deadlock a
    #: child on a lock held at fork time; a big first import can set 2 in skadestue.toml.
    workers: int = 1
    parallel_min_texts: int = 20_000


class LinkSettings(BaseModel):
    #: Pairs above this Splink match probability are linked into one casualty.
    match_threshold: float = 0.9
    #: Return visits / transfers of one injury are looked for this many days after arrival.
    return_visit_days: int = 30


class HotspotSettings(BaseModel):
    #: Length of the analysis period in years, ending with the last full year in the data.
    period_years: int = 5
    grid_sizes_m: list[int] = Field(default_factory=lambda: [100, 1000])
    segment_windows_m: list[int] = Field(default_factory=lambda: [100, 500])
    #: A casualty within this distance of a junction belongs to the junction.
    junction_radius_m: float = 30.0
    #: Municipal rule of thumb: at least this many accidents at a junction (or in a
    #: 400 m stretch) over the period.
    rule_min_accidents: int = 4
    rule_stretch_m: float = 400.0
    #: Severity weights for the score (killed, serious, slight, unknown).
    weight_killed: float = 10.0
    weight_serious: float = 5.0
    weight_slight: float = 1.0
    weight_unknown: float = 1.0
    #: Distance band for Getis-Ord Gi* on the 100 m grid.
    gi_distance_m: float = 300.0
    gi_permutations: int = 199
    seed: int = 20240101
    #: Road stretches: a casualty is snapped to the nearest street within this distance.
    segment_snap_m: float = 30.0
    #: A casualty counts on a road window only when placed to within this (street-only
    #: placements, uncertain by hundreds of metres, do not).
    segment_max_uncertainty_m: float = 50.0


class PublishSettings(BaseModel):
    #: Disclosure control for the lokalråd tier: ER-derived counts 1..k-1 are suppressed.
    suppression_k: int = 3
    plan_buffer_m: float = 50.0
    #: After publication, render the lokalråd maps and reports of the newest period into
    #: ``<publish_dir>/maps`` (PDFs need Chromium; without it the reports are HTML only).
    maps: bool = True
    maps_pdf: bool = True


class OpsSettings(BaseModel):
    """Nightly operations: one run at a time, retries, the schedule."""

    #: A second run waits this long for the running one to finish, then exits with a message
    #: naming the holder (0: do not wait).
    lock_wait_seconds: float = 900.0
    #: A reader (e.g. ``skadestue status``) holding the warehouse file open: retry this long.
    warehouse_busy_seconds: float = 60.0
    #: Retries of the tasks that touch files (ingest, publish) on I/O errors, with
    #: exponential back-off starting at retry_delay_seconds.
    task_retries: int = 2
    retry_delay_seconds: float = 30.0
    #: The deployment's schedule (``skadestue serve``): cron in the given time zone.
    schedule_cron: str = "0 2 * * *"
    schedule_timezone: str = "Europe/Copenhagen"
    deployment_name: str = "nightly"


class Settings(BaseModel):
    inbox: Path = Path("data/inbox")
    warehouse: Path = Path("data/warehouse.duckdb")
    publish_dir: Path = Path("data/publish")
    #: Great Expectations Data Docs (HTML) of every run.
    quality_dir: Path = Path("data/quality")
    #: Read from SKADESTUE_PSEUDONYM_KEY only.
    pseudonym_key: str | None = Field(default=None, repr=False)
    kommuner: dict[str, str] = Field(default_factory=lambda: dict(REGION_KOMMUNER))
    #: The date a run treats as today (None: today). Hotspot periods end with the last calendar
    #: year that has ended by then; set it to re-run a past night or to pin a benchmark.
    as_of: dt.date | None = None
    #: DuckDB resources (the machine has 2 cores).
    duckdb_threads: int = 2
    duckdb_memory_limit: str = "8GB"
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    geocode: GeocodeSettings = Field(default_factory=GeocodeSettings)
    link: LinkSettings = Field(default_factory=LinkSettings)
    hotspot: HotspotSettings = Field(default_factory=HotspotSettings)
    publish: PublishSettings = Field(default_factory=PublishSettings)
    ops: OpsSettings = Field(default_factory=OpsSettings)

    def require_pseudonym_key(self) -> bytes:
        """The HMAC key, or a clear error telling the operator how to set it."""
        if not self.pseudonym_key:
            raise MissingPseudonymKey(
                "SKADESTUE_PSEUDONYM_KEY is not set. The CPR pseudonym key must come from "
                "the environment (or a Prefect secret), never from a file in the repository. "
                "Set it, e.g. `export SKADESTUE_PSEUDONYM_KEY=$(cat /etc/skadestue/key)`, "
                "and use the same key every night so pseudonyms stay stable."
            )
        return self.pseudonym_key.encode("utf-8")


class MissingPseudonymKey(RuntimeError):
    """Raised when a run needs the pseudonym key and the environment has none."""


_ENV = {
    "SKADESTUE_INBOX": "inbox",
    "SKADESTUE_WAREHOUSE": "warehouse",
    "SKADESTUE_PUBLISH": "publish_dir",
    "SKADESTUE_QUALITY": "quality_dir",
    "SKADESTUE_PSEUDONYM_KEY": "pseudonym_key",
    "SKADESTUE_AS_OF": "as_of",
}


def load_settings(config_file: Path | None = None, **overrides: object) -> Settings:
    """Read settings from defaults, ``skadestue.toml``, the environment and ``overrides``.

    ``overrides`` with value ``None`` are ignored, so CLI options can be passed straight in.
    """
    data: dict[str, object] = {}
    path = config_file or Path(os.environ.get("SKADESTUE_CONFIG", "skadestue.toml"))
    if path.exists():
        with path.open("rb") as f:
            data = tomllib.load(f)
        data.pop("pseudonym_key", None)  # never from a file
    for env, field in _ENV.items():
        if os.environ.get(env):
            data[field] = os.environ[env]
    data.update({k: v for k, v in overrides.items() if v is not None})
    return Settings.model_validate(data)
