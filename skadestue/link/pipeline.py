"""link_casualties: the whole linkage step, in one transaction (incremental: see incremental.py)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import duckdb

from skadestue.config import Settings
from skadestue.link.casualty import build_casualties, count_police_placed_contacts, place_linked_contacts
from skadestue.link.darkfigure import build_dark_figure, police_known_share_by_road_user
from skadestue.link.incremental import TEMP_TABLES, relink
from skadestue.link.prepare import police_orphans
from skadestue.link.splink_model import build_review_list

log = logging.getLogger(__name__)

_TEMP_TABLES = ("link_contact", "link_contact_event", "link_er_event", "link_police_person",
                "link_candidate", "link_scored_pair", "link_pair")


@dataclass
class LinkReport:
    """What the linkage did (counts for the operator and the run summary)."""

    n_er_contacts: int
    n_er_events: int
    n_police_casualties: int
    n_casualties: int
    #: ER events linked to an injured police person (= casualties with source 'both').
    n_links: int
    #: ER contacts folded into an earlier contact's event (return visits, transfers).
    n_return_visits_folded: int
    n_candidate_pairs: int
    #: Injured police persons without an accident row (sent to quality.quarantine).
    n_quarantined: int
    n_er_contacts_placed_by_police: int
    by_source: dict[str, int] = field(default_factory=dict)
    #: Pairs listed in quality.link_review for clerical review.
    n_review_pairs: int = 0
    #: Stratified Chapman estimate of all casualties, those seen by neither source included
    #: (marts.dark_figure, stratum_level 'total_stratified'), or None.
    dark_figure_estimate: float | None = None
    #: Its 95 % interval (Chao log-normal on the summed stratum variances), or None.
    dark_figure_ci: tuple[float, float] | None = None
    #: The pooled (unstratified) Chapman estimate: a lower bound (stratum_level 'total').
    dark_figure_pooled: float | None = None
    #: Estimated share of casualties known to the police, per road user (run summary).
    police_known_share_by_road_user: dict[str, float] = field(default_factory=dict)
    #: What this run redid (issue 9): 'full' (model retrained, all relinked), 'relink' (all
    #: relinked with the stored model), 'incremental' or 'skipped' (nothing changed).
    mode: str = "full"
    model_trained: bool = False
    #: ER contacts new, changed, vanished or unlinked since the last linkage.
    n_contacts_changed: int = 0
    #: ER contacts re-folded (the persons of the changed ones, all of their contacts).
    n_contacts_refolded: int = 0
    n_er_events_rescored: int = 0
    n_police_rescored: int = 0
    #: Pairs Splink scored in this run.
    n_pairs_scored: int = 0
    #: ER events + police persons whose casualty row was rebuilt.
    n_casualties_rebuilt: int = 0
    #: Wall seconds per step of this run.
    step_seconds: dict[str, float] = field(default_factory=dict)


def link_casualties(con: duckdb.DuckDBPyConnection, settings: Settings, mode: str = "auto") -> LinkReport:
    """Fold ER return visits into injury events, link them to injured police persons and
    bring core.casualty up to date (plus casualty_id on core.er_contact and core.police_person).

    Incremental (skadestue.link.incremental): a night re-folds, re-scores and rebuilds only
    what changed since the last linkage, with the same result as a full relink. ``mode``:
    'auto', 'relink' (relink everything with the stored model) or 'full' (retrain the model
    first). Deterministic: the same core tables give the same casualties and ids.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        run_id = _current_run_id(con)
        n_quarantined = _quarantine_orphans(con)
        stats = relink(con, settings, mode, run_id)
        steps = dict(stats.step_seconds)
        if stats.mode != "skipped":
            for name, step in (("casualties", lambda: build_casualties(con)),
                               ("review", lambda: build_review_list(con, settings.link.match_threshold)),
                               ("dark_figure", lambda: build_dark_figure(con))):
                t0 = time.perf_counter()
                step()
                steps[name] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        place_linked_contacts(con)
        steps["police_places"] = round(time.perf_counter() - t0, 3)
        by_source = dict(con.execute("SELECT source, count(*) FROM core.casualty GROUP BY source").fetchall())
        n_review = int(con.execute("SELECT count(*) FROM quality.link_review").fetchone()[0])
        n_placed = count_police_placed_contacts(con)
        dark = con.execute("SELECT * FROM marts.dark_figure").df()
        for name in set(_TEMP_TABLES) | set(TEMP_TABLES):
            con.execute(f"DROP TABLE IF EXISTS {name}")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    n_contacts, n_events = stats.n_contacts, stats.n_er_events
    n_police, n_candidates, n_links = stats.n_police, stats.n_candidates, stats.n_links
    report = LinkReport(
        n_er_contacts=n_contacts,
        n_er_events=n_events,
        n_police_casualties=n_police,
        n_casualties=sum(by_source.values()),
        n_links=n_links,
        n_return_visits_folded=n_contacts - n_events,
        n_candidate_pairs=n_candidates,
        n_quarantined=n_quarantined,
        n_er_contacts_placed_by_police=n_placed,
        by_source={s: by_source.get(s, 0) for s in ("both", "er", "police")},
        n_review_pairs=n_review,
        dark_figure_estimate=_rounded(dark, "total_stratified", "estimate"),
        dark_figure_ci=_total_ci(dark),
        dark_figure_pooled=_rounded(dark, "total", "estimate"),
        police_known_share_by_road_user=police_known_share_by_road_user(dark),
        mode=stats.mode,
        model_trained=stats.model_trained,
        n_contacts_changed=stats.n_contacts_changed,
        n_contacts_refolded=stats.n_contacts_refolded,
        n_er_events_rescored=stats.n_er_events_rescored,
        n_police_rescored=stats.n_police_rescored,
        n_pairs_scored=stats.n_pairs_scored,
        n_casualties_rebuilt=stats.n_casualties_rebuilt,
        step_seconds=steps,
    )
    log.info("linkage: %s", report)
    return report


def _rounded(dark, level: str, column: str) -> float | None:
    """One value of the dark-figure row of ``level``, rounded; None when missing or NaN."""
    value = dark.loc[dark["stratum_level"] == level, column]
    return None if value.empty or value.isna().iloc[0] else round(float(value.iloc[0]), 1)


def _total_ci(dark) -> tuple[float, float] | None:
    """The stratified total's interval, rounded; None when there is no estimate."""
    low, high = _rounded(dark, "total_stratified", "ci_low"), _rounded(dark, "total_stratified", "ci_high")
    return None if low is None or high is None else (low, high)


def _current_run_id(con: duckdb.DuckDBPyConnection) -> str:
    """The run in progress (newest 'running' run in ops.run), else 'link-adhoc'."""
    row = con.execute(
        "SELECT run_id FROM ops.run WHERE status = 'running' ORDER BY started_at DESC, run_id DESC LIMIT 1"
    ).fetchone()
    return row[0] if row else "link-adhoc"


def _quarantine_orphans(con: duckdb.DuckDBPyConnection) -> int:
    """Send injured police persons whose accident row is missing to quality.quarantine (once:
    a person an earlier linkage already quarantined from the same delivery is not repeated)."""
    done = set(con.execute(
        "SELECT record_key, delivery_id FROM quality.quarantine WHERE stage = 'link' AND source = 'police_person'"
    ).fetchall())
    orphans = [o for o in police_orphans(con) if (f"{o[0]}|{o[1]}|{o[2]}", o[3]) not in done]
    if not orphans:
        return 0
    run_id = _current_run_id(con)
    con.executemany(
        "INSERT INTO quality.quarantine (run_id, delivery_id, source, stage, record_key, column_name, "
        "value, reason) VALUES (?, ?, 'police_person', 'link', ?, 'uheld_id', ?, ?)",
        [
            (run_id, delivery_id, f"{uheld_id}|{elementnr}|{personnr}", uheld_id,
             f"injured person of accident {uheld_id} has no accident row in the police delivery: "
             "no date or place, so it cannot become a casualty; re-deliver the uheld_*.csv row "
             "for this UHELDS_ID")
            for uheld_id, elementnr, personnr, delivery_id in orphans
        ],
    )
    log.warning("%d injured police persons without an accident row quarantined", len(orphans))
    return len(orphans)
