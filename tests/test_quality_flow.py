"""The real stop, through the Prefect flow: a critical expectation fails on a later night,
the run is marked failed with the reason, and yesterday's layers stay published.

Night 1 publishes normally. Before night 2 a "correction" of the 2024 police accidents
arrives whose injured counts no longer match the person rows (a person file from another
extract): the raw_police counts gate must stop publication.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import duckdb
import pytest


pytestmark = pytest.mark.slow


def _digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (relative path -> hash)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _plant_count_mismatch(police_dir: Path) -> int:
    """Write uheld_2024_rettelse.csv: the 2024 accidents with one slight casualty too many."""
    src = police_dir / "uheld_2024.csv"
    with src.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    col = rows[0].index("ANTAL_LET_TILSKADEKOMNE")
    for r in rows[1:]:
        r[col] = str(int(r[col] or 0) + 1)
    with (police_dir / "uheld_2024_rettelse.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, delimiter=";").writerows(rows)
    return len(rows) - 1


def test_critical_failure_stops_publication_and_fails_the_run(tmp_path, demo_setup):
    from flows.nightly import CriticalQualityFailure, nightly

    paths, settings, kwargs = demo_setup(tmp_path, scale=0.15, years=(2023, 2024), seed=23)

    first = nightly(**kwargs, run_id="night-1")
    assert first["run_id"] == "night-1"
    yesterday = _digest(settings.publish_dir)
    assert any(k.endswith(".gpkg") for k in yesterday)
    assert (settings.quality_dir / "index.html").exists()

    n_planted = _plant_count_mismatch(paths.police_dir)
    assert n_planted > 50
    with pytest.raises(CriticalQualityFailure) as stop:
        nightly(**kwargs, run_id="night-2")
    why = str(stop.value)
    assert "publication stopped" in why
    assert "raw_police: raw_police_counts.expect_column_pair_values_to_be_equal[antal_let,n_slight_persons]" in why

    # yesterday's layers are untouched
    assert _digest(settings.publish_dir) == yesterday
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        runs = dict(con.execute("SELECT run_id, status FROM ops.run").fetchall())
        assert runs == {"night-1": "succeeded", "night-2": "failed"}
        message = con.execute("SELECT message FROM ops.run WHERE run_id = 'night-2'").fetchone()[0]
        assert "antal_let,n_slight_persons" in message
        stored = con.execute(
            "SELECT unexpected_count, element_count FROM quality.validation_result WHERE run_id = 'night-2' "
            "AND suite = 'raw_police_counts' AND column_name = 'antal_let,n_slight_persons' AND critical"
        ).fetchone()
        assert stored[0] >= n_planted and not con.execute(
            "SELECT success FROM quality.validation_result WHERE run_id = 'night-1' AND suite = 'raw_police_counts' "
            "AND column_name = 'antal_let,n_slight_persons' AND critical").fetchone()[0] is False
        # the trend has both nights; night 1's key ratios are plausible
        trend = con.execute("SELECT run_id, placed_share, linked_share, rows_er_contact "
                            "FROM quality.nightly_trend ORDER BY run_id").fetchall()
        assert [t[0] for t in trend] == ["night-1", "night-2"]
        assert 0.5 < trend[0][1] <= 1 and 0.02 < trend[0][2] < 0.9 and trend[0][3] > 100
    finally:
        con.close()
