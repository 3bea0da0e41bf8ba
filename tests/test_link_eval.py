"""Linkage scored against the demo generator's truth (precision first), and the dark figure
(Chapman capture-recapture) against populations whose true size is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import load_and_geocode

from geodata.importer import import_geodata
from skadestue.config import load_settings
from skadestue.db import connect
from skadestue.demo import generate_demo
from skadestue.link import link_casualties
from skadestue.link.darkfigure import chapman
from skadestue.link.evaluate import Score, evaluate_linkage, read_er_truth


@pytest.fixture(scope="module")
def demo(tmp_path_factory, shared_data):
    """A small demo region through ingest -> core -> geocode -> link (no Prefect)."""
    out = tmp_path_factory.mktemp("link_demo")
    paths = generate_demo(out, scale=0.3, years=(2022, 2024), seed=5,
                          municipalities_geojson=shared_data / "boundaries" / "dagi_kommuner.geojson")
    settings = load_settings(None, inbox=out / "inbox", warehouse=out / "wh.duckdb",
                             publish_dir=out / "publish", quality_dir=out / "quality")
    con = connect(":memory:")
    import_geodata(con, addresses=paths.addresses_csv, roads=paths.roads_geojson,
                   municipalities=paths.municipalities_geojson, postcodes=paths.postcodes_geojson)
    load_and_geocode(con, settings, "test-run")
    report = link_casualties(con, settings)
    return {"con": con, "paths": paths, "report": report, "eval": evaluate_linkage(con, paths.truth_dir)}


def test_links_with_cpr_on_both_sides_meet_the_floor(demo):
    s = demo["eval"].links_cpr_both
    assert s.tp > 500
    assert s.precision >= 0.995, s
    assert s.f1 >= 0.99, s


def test_links_without_cpr_meet_the_floor(demo):
    s = demo["eval"].links_no_cpr
    assert s.tp > 80
    assert s.precision >= 0.98, s  # over-linking hides casualties from the dark figure
    assert s.f1 >= 0.90, s


def test_return_visit_dedup_meets_the_floor(demo):
    s = demo["eval"].dedup
    assert s.tp > 100
    assert s.precision >= 0.99, s
    assert s.f1 >= 0.97, s


def test_true_pairs_are_all_counted(demo):
    """TP + FN = the truth's ER-event x injured-police-person pairs that reached core."""
    ev = demo["eval"]
    con = demo["con"]
    truth = read_er_truth(demo["paths"].truth_dir).dropna(subset=["police_uheld_id"])
    con.register("t", truth)
    n_true = con.execute(
        "SELECT count(*) FROM (SELECT DISTINCT t.event_id FROM t JOIN core.er_contact USING (sygehus, kontakt_id) "
        "JOIN core.police_person p ON p.uheld_id = t.police_uheld_id AND p.elementnr = t.police_elementnr "
        "AND p.personnr = t.police_personnr WHERE p.severity <> 'uninjured')").fetchone()[0]
    con.unregister("t")
    assert ev.links_all.tp + ev.links_all.fn == n_true
    assert ev.links_cpr_both.tp + ev.links_no_cpr.tp == ev.links_all.tp
    # every link is one 'both' casualty, and no police person has two ER events
    assert demo["report"].n_links == demo["report"].by_source["both"]
    assert ev.links_all.tp + ev.links_all.fp == demo["report"].n_links


def test_score_arithmetic():
    s = Score(tp=90, fp=10, fn=30)
    assert (s.precision, s.recall) == (0.9, 0.75)
    assert s.f1 == pytest.approx(2 * 0.9 * 0.75 / 1.65)
    assert Score(0, 0, 0).precision == 1.0 and Score(0, 0, 5).f1 == 0.0


def test_chapman_known_values():
    est, low, high = chapman(np.array([100, 10, 0]), np.array([50, 10, 5]), np.array([25, 10, 0]))
    assert est[0] == pytest.approx(101 * 51 / 26 - 1)  # 197.115...
    assert low[0] < est[0] < high[0] and low[0] >= 125  # never below the 125 observed
    assert est[1] == pytest.approx(10) and low[1] == high[1] == 10  # all recaptured: nothing unseen
    assert np.isnan(est[2])  # one source empty: nothing to recapture
    with pytest.raises(ValueError):
        chapman(np.array([3]), np.array([5]), np.array([4]))


def test_dark_figure_on_the_demo(demo):
    """In the demo an injured person reaches an ER (88 %; 60 % of the killed) independently of
    whether the police registered the accident, so some casualties are known to neither source:
    the true dark figure. The stratified Chapman estimate's 95 % interval must cover the true
    number of casualties (those seen by neither source included)."""
    con = demo["con"]
    truth = pd.read_parquet(demo["paths"].truth_dir / "events.parquet")
    df = con.execute("SELECT * FROM marts.dark_figure").df()
    strat = df[df.stratum_level == "total_stratified"].iloc[0]
    pooled = df[df.stratum_level == "total"].iloc[0]
    true_total = len(truth)
    observed_truth = int((truth["police"] | truth["in_er"]).sum())
    assert observed_truth < true_total  # there is a dark figure to find
    assert abs(strat.n_observed - observed_truth) / observed_truth < 0.02
    assert strat.n_police == pooled.n_police == int(truth["police"].sum())
    assert strat.recapture_sample == "police_cpr" and strat.method == "stratified"
    assert strat.ci_low <= true_total <= strat.ci_high, (strat.ci_low, true_total, strat.ci_high)
    assert strat.n_observed < strat.ci_low  # the interval says there IS a dark figure
    assert abs(strat.estimate - true_total) / true_total < 0.05
    # the strata: one row each, they add up to the total, each is a cell or a documented pool
    strata = df[df.stratum_level == "stratum"]
    assert len(strata) == strat.n_strata >= 10
    # (strata counts are stored rounded: unplaced ER casualties are spread over the kommuner)
    assert strata.estimate.fillna(strata.n_observed).sum() == pytest.approx(strat.estimate, abs=len(strata))
    assert strata.n_er.sum() == pytest.approx(pooled.n_er, abs=len(strata))
    assert strata.n_both.sum() == pytest.approx(pooled.n_both, abs=len(strata))
    assert set(strata.severity) <= {"killed", "non_fatal", "rest"}
    assert (strata.n_both_cpr >= 15).sum() >= len(strata) - 1  # only the last pool may be sparser
    # the unstratified estimate is published, flagged as a lower bound
    assert pooled.method == "pooled" and pooled.is_lower_bound
    assert not strat.is_lower_bound and not strata.is_lower_bound.any()
    assert df[df.stratum_level.isin(["road_user", "kommune", "severity"])].is_lower_bound.all()
    report = demo["report"]
    assert report.dark_figure_estimate == pytest.approx(strat.estimate, abs=0.1)
    assert report.dark_figure_ci == (pytest.approx(strat.ci_low, abs=0.1), pytest.approx(strat.ci_high, abs=0.1))
    assert report.dark_figure_pooled == pytest.approx(pooled.estimate, abs=0.1)
    shares = report.police_known_share_by_road_user
    assert shares["cyclist"] < shares["car"]  # the police know cyclists least (domain.md §4)


def test_review_list_holds_pairs_near_the_threshold(demo):
    con = demo["con"]
    rows = con.execute("SELECT * FROM quality.link_review").df()
    assert len(rows) == demo["report"].n_review_pairs > 0
    assert set(rows["decision"]) <= {"linked", "below_threshold", "lost_to_better_pair"}
    below = rows[rows.decision == "below_threshold"]
    assert below.match_probability.between(0.5, 0.9, inclusive="left").all()
    linked = rows[rows.decision == "linked"]
    assert (linked.match_probability >= 0.9).all() and (linked.match_probability < 0.99).all()
    # a 'linked' pair is a 'both' casualty under the police person's id; the others are not linked
    both = {r[0] for r in con.execute("SELECT casualty_id FROM core.casualty WHERE source = 'both'").fetchall()}
    assert set(linked.police_casualty_id) <= both
    lost = rows[rows.decision == "lost_to_better_pair"]
    assert (lost.match_probability >= 0.9).all()
    assert "cpr_pseudonym" not in rows.columns  # keys and compared values only


def test_refit_model_saves_json_and_keeps_the_guard(demo, tmp_path):
    from skadestue.link.model import apply_trained_m, fit_model, trained_m
    from skadestue.link.priors import splink_settings

    con = demo["con"]
    out = tmp_path / "model.json"
    fit_model(con, load_settings(None), out, u_pairs=2e5)
    m = trained_m(out)
    assert ("cpr_pseudonym", "same CPR") in m and ("place", "< 100 m") in m
    assert m[("injury_date", "more than 7 days")] == pytest.approx(1e-8)  # pinned, never learnt
    assert m[("injury_date", "same day")] > 0.8  # true pairs are mostly dated the same day
    applied = apply_trained_m(splink_settings(1000, 365), m)
    levels = {(c["output_column_name"], lv["label_for_charts"]): lv for c in applied["comparisons"]
              for lv in c["comparison_levels"]}
    assert all(lv["m_probability"] >= 0.005 for k, lv in levels.items()
               if not lv.get("is_null_level") and k != ("injury_date", "more than 7 days"))
    assert trained_m(tmp_path / "missing.json") == {}  # no model: the priors are used
    # the warehouse's casualties are untouched by a refit
    assert con.execute("SELECT count(*) FROM core.casualty").fetchone()[0] == sum(demo["report"].by_source.values())
