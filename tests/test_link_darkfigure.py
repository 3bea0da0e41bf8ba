"""The dark figure: stratified Chapman capture-recapture (skadestue.link.darkfigure) against
populations whose true size is known: hand-made strata for the collapsing rule, replicates
drawn in the test from the independence model, and demo regions at several seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import insert, load_and_geocode

from skadestue.link.darkfigure import build_dark_figure, chapman, collapse_strata, dark_figure_frame

#: (P(police), P(ER)) by road user for non-fatal casualties: both sources see car occupants
#: more often than cyclists, so pooling the road users biases Chapman downward.
CAPTURE = {"cyclist": (0.12, 0.70), "moped": (0.25, 0.78), "pedestrian": (0.35, 0.82), "car": (0.50, 0.90)}
ROAD_USER_SHARE = {"cyclist": 0.45, "moped": 0.15, "pedestrian": 0.10, "car": 0.30}
#: Kommune factors on (police, ER) capture, and the kommuner's shares of the casualties.
KOMMUNE = {"0561": (1.0, 1.0, 0.5), "0540": (0.7, 0.9, 0.3), "0563": (1.2, 0.8, 0.2)}


def population(rng: np.random.Generator, n: int, *, police_cpr: float = 0.85,
               missed_no_cpr_links: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """core.casualty and core.police_person rows of ``n`` synthetic casualties captured
    independently by the two sources within each kommune x road user x severity stratum
    (1 % killed: police 97 %, ER 60 %). ``missed_no_cpr_links`` of the linked casualties whose
    police record has no CPR pseudonym are split in two, as a linker missing them would."""
    ru = rng.choice(list(ROAD_USER_SHARE), size=n, p=list(ROAD_USER_SHARE.values()))
    k = rng.choice(list(KOMMUNE), size=n, p=[v[2] for v in KOMMUNE.values()])
    killed = rng.random(n) < 0.01
    p_pol = np.array([CAPTURE[r][0] for r in ru]) * np.array([KOMMUNE[c][0] for c in k])
    p_er = np.array([CAPTURE[r][1] for r in ru]) * np.array([KOMMUNE[c][1] for c in k])
    p_pol, p_er = np.where(killed, 0.97, p_pol), np.where(killed, 0.6, p_er)
    pol, er = rng.random(n) < p_pol, rng.random(n) < p_er
    cpr = pol & (rng.random(n) < police_cpr)
    missed = pol & er & ~cpr & (rng.random(n) < missed_no_cpr_links)
    seen = pol | er
    # a missed link: the ER half becomes an ER-only casualty of its own
    idx = np.concatenate([np.flatnonzero(seen), np.flatnonzero(missed)])
    extra = np.concatenate([np.zeros(int(seen.sum()), bool), np.ones(int(missed.sum()), bool)])
    source = np.where(extra, "er", np.where(pol[idx] & er[idx] & ~missed[idx], "both",
                                            np.where(pol[idx], "police", "er")))
    ids = np.array([f"C{i}" for i in range(len(idx))], dtype=object)
    casualty = pd.DataFrame({
        "casualty_id": ids, "source": source, "injury_date": pd.Timestamp("2024-05-01").date(),
        "kommunekode": k[idx], "geocode_quality": "A", "road_user": ru[idx], "counterpart": "car",
        "severity": np.where(killed[idx], "killed", "slight"), "age_band": "25-44",
        "n_er_contacts": (source != "police").astype(int),
    })
    is_police = source != "er"
    persons = pd.DataFrame({
        "uheld_id": ids[is_police], "elementnr": 1, "personnr": 1, "delivery_id": "pol-test",
        "road_user": ru[idx][is_police], "counterpart": "car", "severity": "slight",
        "cpr_pseudonym": np.where(cpr[idx][is_police], ids[is_police], None), "casualty_id": ids[is_police],
    })
    return casualty, persons


def load(con, casualty: pd.DataFrame, persons: pd.DataFrame) -> None:
    con.execute("DELETE FROM core.casualty")
    con.execute("DELETE FROM core.police_person")
    insert(con, "core.casualty", casualty.to_dict("records"))
    insert(con, "core.police_person", persons.to_dict("records"))


def cell(k: str, ru: str, sev: str, n_er: int, n_police: int, m: int, **kw) -> dict:
    return {"kommunekode": k, "road_user": ru, "severity": sev, "n_er": n_er, "n_police": n_police,
            "n_both": m, "n_police_cpr": kw.get("n_police_cpr", n_police), "n_both_cpr": kw.get("n_both_cpr", m),
            "period_start": pd.Timestamp("2024-01-01"), "period_end": pd.Timestamp("2024-12-31")}


def test_sparse_cells_collapse_by_the_documented_rule():
    cells = pd.DataFrame([
        cell("0561", "car", "slight", 90, 50, 40),          # a stratum of its own
        cell("0561", "car", "unknown", 3, 1, 1, n_police_cpr=0, n_both_cpr=0),
        cell("0561", "cyclist", "slight", 60, 25, 20),      # with its serious cell: one non_fatal stratum
        cell("0561", "cyclist", "serious", 9, 4, 3),
        cell("0540", "cyclist", "slight", 20, 7, 5),        # sparse: pooled over kommuner ...
        cell("0550", "cyclist", "slight", 40, 16, 12),
        cell("unknown", "cyclist", "slight", 40, 0, 0),     # unplaced: spread over the cyclist cells
        cell("unknown", "pedestrian", "slight", 10, 0, 0),  # no placed pedestrian: pooled at the end
        cell("0563", "car", "slight", 30, 20, 16, n_police_cpr=14, n_both_cpr=10),
        cell("0540", "car", "slight", 25, 14, 10),
        cell("0540", "moped", "slight", 9, 5, 3),           # ... then over road users ...
        cell("0561", "car", "killed", 5, 8, 4),             # ... then everything left
    ])
    strata = collapse_strata(cells, min_both=15).set_index(["kommunekode", "road_user", "severity"])
    assert strata["n_both"].to_dict() == {
        ("0561", "car", "non_fatal"): 41, ("0561", "cyclist", "non_fatal"): 23,
        ("rest", "car", "non_fatal"): 26, ("rest", "cyclist", "non_fatal"): 17, ("rest", "rest", "rest"): 7,
    }
    # the 40 unplaced cyclists go 69:20:40 to the placed cyclists of 0561, 0540 and 0550
    assert strata.loc[("0561", "cyclist", "non_fatal"), "n_er"] == pytest.approx(69 + 40 * 69 / 129)
    assert strata.loc[("rest", "cyclist", "non_fatal"), "n_er"] == pytest.approx(60 + 40 * 60 / 129)
    assert strata.loc[("rest", "rest", "rest"), ["n_er", "n_police"]].tolist() == [24, 13]
    assert strata[["n_er", "n_police", "n_both"]].sum().to_dict() == pytest.approx(
        cells[["n_er", "n_police", "n_both"]].sum().to_dict())
    # sized by the recapture count in use: with all police persons 0563's car cell stands alone
    by_all = collapse_strata(cells, min_both=15, sample="police_all")
    by_all = by_all.set_index(["kommunekode", "road_user", "severity"])
    assert by_all["n_both"].to_dict() == {
        ("0561", "car", "non_fatal"): 41, ("0561", "cyclist", "non_fatal"): 23, ("0563", "car", "non_fatal"): 16,
        ("rest", "cyclist", "non_fatal"): 17, ("rest", "rest", "rest"): 17,
    }
    # with no minimum every cell of a known kommune stands alone (8); the unplaced
    # pedestrians, with no placed pedestrian to be spread over, still pool at the end
    assert len(collapse_strata(cells, min_both=1)) == 9


def test_stratified_interval_covers_the_truth_on_replicates(fresh_warehouse):
    """Ten replicates of the independence model with capture rates that differ between
    strata: the stratified interval covers the true total (a 95 % interval may miss 1 in 20,
    so at least 8 of 10), and the pooled estimate falls below the truth: a lower bound."""
    con = fresh_warehouse
    covered, below, errors = 0, 0, []
    for seed in range(10):
        n = 9_000
        casualty, persons = population(np.random.default_rng(seed), n)
        assert len(casualty) < n  # there is a dark figure
        load(con, casualty, persons)
        df = build_dark_figure(con)
        strat = df[df.stratum_level == "total_stratified"].iloc[0]
        pooled = df[df.stratum_level == "total"].iloc[0]
        covered += bool(strat.ci_low <= n <= strat.ci_high)
        below += bool(pooled.ci_high < n)
        errors.append((strat.estimate - n) / n)
        assert strat.recapture_sample == "police_cpr"
        assert pooled.is_lower_bound and pooled.estimate < strat.estimate
    assert covered >= 8, (covered, errors)
    assert below >= 9  # heterogeneity: the pooled interval lies wholly below the truth
    assert abs(np.mean(errors)) < 0.01 and max(map(abs, errors)) < 0.04, errors
    # the marts table holds the strata of the last replicate: all 12 kommune x road user cells
    # of the non-fatal are dense enough to stand alone; the killed are kept apart from them
    strata = con.execute("SELECT kommunekode, road_user, severity, n_both_cpr FROM marts.dark_figure "
                         "WHERE stratum_level = 'stratum'").df()
    non_fatal = strata[strata.severity == "non_fatal"]
    assert len(non_fatal) == 12 and set(non_fatal.kommunekode) == set(KOMMUNE)
    assert set(strata.severity) <= {"killed", "non_fatal", "rest"} and "killed" in set(strata.severity)
    rest = (strata.kommunekode == "rest") & (strata.road_user == "rest") & (strata.severity == "rest")
    assert (strata[~rest].n_both_cpr >= 15).all()


def test_police_persons_with_cpr_make_the_estimate_robust_to_missed_links(fresh_warehouse):
    """Missed links among police persons without a CPR pseudonym inflate m's shortfall into N;
    the CPR recapture sample is not affected, all police persons are."""
    con = fresh_warehouse
    n = 12_000
    casualty, persons = population(np.random.default_rng(42), n, missed_no_cpr_links=0.4)
    load(con, casualty, persons)
    cpr = dark_figure_frame(con)
    every = dark_figure_frame(con, sample="police_all")
    strat_cpr = cpr[cpr.stratum_level == "total_stratified"].iloc[0]
    strat_all = every[every.stratum_level == "total_stratified"].iloc[0]
    assert strat_cpr.recapture_sample == "police_cpr" and strat_all.recapture_sample == "police_all"
    assert strat_cpr.ci_low <= n <= strat_cpr.ci_high, (strat_cpr.ci_low, strat_cpr.ci_high)
    assert strat_all.ci_low > n  # the missed links push the all-police estimate up
    # too few CPR pseudonyms at the police: all police persons are the recapture sample
    casualty, persons = population(np.random.default_rng(43), n, police_cpr=0.3)
    load(con, casualty, persons)
    df = dark_figure_frame(con)
    strat = df[df.stratum_level == "total_stratified"].iloc[0]
    assert strat.recapture_sample == "police_all"
    assert strat.ci_low <= n <= strat.ci_high


def test_empty_and_single_source_warehouses(fresh_warehouse):
    con = fresh_warehouse
    assert build_dark_figure(con).empty
    casualty, persons = population(np.random.default_rng(1), 500)
    er_only = casualty[casualty.source == "er"]
    load(con, er_only, persons.iloc[:0])
    df = build_dark_figure(con)
    strat = df[df.stratum_level == "total_stratified"].iloc[0]
    # nothing to recapture: the stratified total counts what was seen, the pooled one is NaN
    assert strat.estimate == strat.n_observed == len(er_only)
    assert np.isnan(df[df.stratum_level == "total"].iloc[0].estimate)


def _demo_dark_figure(out, shared_data, seed: int) -> tuple[pd.Series, pd.DataFrame]:
    """A small demo region through ingest -> core -> geocode -> link; its stratified total
    and the generator's events (the truth)."""
    from geodata.importer import import_geodata
    from skadestue.config import load_settings
    from skadestue.db import connect
    from skadestue.demo import generate_demo
    from skadestue.link import link_casualties

    paths = generate_demo(out, scale=0.15, years=(2023, 2024), seed=seed,
                          municipalities_geojson=shared_data / "boundaries" / "dagi_kommuner.geojson")
    settings = load_settings(None, inbox=out / "inbox", warehouse=out / "wh.duckdb",
                             publish_dir=out / "publish", quality_dir=out / "quality")
    con = connect(":memory:")
    import_geodata(con, addresses=paths.addresses_csv, roads=paths.roads_geojson,
                   municipalities=paths.municipalities_geojson, postcodes=paths.postcodes_geojson)
    load_and_geocode(con, settings, "test-run")
    link_casualties(con, settings)
    row = con.execute("SELECT * FROM marts.dark_figure WHERE stratum_level = 'total_stratified'").df().iloc[0]
    con.close()
    return row, pd.read_parquet(paths.truth_dir / "events.parquet")


def test_demo_interval_covers_the_truth_across_seeds(tmp_path, shared_data):
    """Three small demo regions (seeds 1-3, chosen before looking): the stratified interval
    covers the true total on at least two. A 95 % interval may miss; where it does, the miss
    must be the sample's, not the pipeline's: Chapman on the generator's own capture flags
    (perfect linkage) misses as well. (Seed 1 is such a sample: 92 % of its police-known
    casualties reached an ER against 88 % expected.)"""
    covered = 0
    for seed in (1, 2, 3):
        row, events = _demo_dark_figure(tmp_path / f"seed{seed}", shared_data, seed)
        true_total = len(events)
        assert row.recapture_sample == "police_cpr"
        assert row.n_observed < true_total and abs(row.estimate - true_total) / true_total < 0.07
        if row.ci_low <= true_total <= row.ci_high:
            covered += 1
            continue
        n1, n2 = int(events["in_er"].sum()), int(events["police"].sum())
        m = int((events["in_er"] & events["police"]).sum())
        _, low, high = chapman(n1, n2, m)
        assert not low <= true_total <= high, (seed, row.ci_low, row.ci_high, true_total)
    assert covered >= 2
