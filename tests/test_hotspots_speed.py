"""The fast paths of the hotspot build give the same answers as the plain ones (issue 7)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skadestue.hotspots import grid


def _cells(seed: int, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    e0 = rng.integers(0, 60, n) * 100 + 600_000
    n0 = rng.integers(0, 60, n) * 100 + 6_100_000
    frame = pd.DataFrame({"e0": e0, "n0": n0}).drop_duplicates().reset_index(drop=True)
    frame["cell_id"] = [f"100m_{b // 100}_{a // 100}" for a, b in zip(frame["e0"], frame["n0"])]
    frame["value"] = rng.poisson(1.5, len(frame)) + 1
    frame.loc[:4, "value"] = 25                              # a planted hot spot
    return frame


def _pad_reference(e0, n0, size_m, band_m):
    """The padding as first written: 2-D unique of coordinate pairs."""
    occupied = np.column_stack([e0, n0]).astype(np.int64)
    offsets = grid.band_offsets(size_m, band_m)
    around = np.unique((occupied[:, None, :] + offsets[None, :, :]).reshape(-1, 2), axis=0)
    occ = pd.MultiIndex.from_arrays([occupied[:, 0], occupied[:, 1]])
    is_new = ~pd.MultiIndex.from_arrays([around[:, 0], around[:, 1]]).isin(occ)
    return np.vstack([occupied, around[is_new]])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_padding_equals_the_pairwise_version(seed):
    cells = _cells(seed)
    got = grid.pad_with_empty_cells(cells["e0"].to_numpy(), cells["n0"].to_numpy(), 100, 300.0)
    want = _pad_reference(cells["e0"].to_numpy(), cells["n0"].to_numpy(), 100, 300.0)
    assert got.shape == want.shape and len(got) > len(cells)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sorted_permutation_p_equals_the_loop(seed):
    cells = _cells(seed)
    corners = grid.pad_with_empty_cells(cells["e0"].to_numpy(), cells["n0"].to_numpy(), 100, 300.0)
    n_all, m = len(corners), len(cells)
    y = np.zeros(n_all)
    y[:m] = cells["value"].to_numpy(dtype=float)
    k = len(grid.band_offsets(100, 300.0))
    card = np.full(m, k)
    rng = np.random.default_rng(seed)
    gs = (y[:m] + rng.integers(0, 40, m)) / y.sum()          # any observed values
    rng = np.random.default_rng(99)
    draws = np.stack([rng.choice(n_all - 1, size=k - 1, replace=False) for _ in range(99)])
    fast = grid._permutation_p_sorted(y, gs, y.sum(), draws)
    # the chunked loop, forced by a non-integer y of the same ordering: compare on the counts
    use = np.ones((m, k - 1), dtype=bool)
    slow = np.empty(m)
    for i in range(m):
        ids = draws + (draws >= i)
        sims = (np.where(use[i], y[ids], 0.0).sum(axis=1) + y[i]) / y.sum()
        larger = (sims >= gs[i]).sum()
        larger = min(larger, 99 - larger)
        slow[i] = (larger + 1) / 100
    np.testing.assert_array_equal(fast, slow)
    assert fast.min() == pytest.approx(1 / 100) and fast.max() <= 0.51


def test_gi_star_fast_path_equals_the_loop(monkeypatch):
    cells = _cells(4)
    fast = grid.getis_ord_gi_star(cells, 100, 300.0, 199, seed=5)
    monkeypatch.setattr(grid, "_FAST_PERMUTATIONS", False)
    slow = grid.getis_ord_gi_star(cells, 100, 300.0, 199, seed=5)
    pd.testing.assert_frame_equal(fast, slow)
    assert fast["gi_p"].min() == pytest.approx(1 / 200) and fast["gi_z"].max() > 3


def test_stage_timings_cover_the_build_and_gi_needs_no_update():
    """build_hotspots reports wall/CPU seconds per stage; a window with casualties only
    outside the grid (no kommune) still builds (empty Gi* input)."""
    import datetime as dt

    from skadestue import db
    from skadestue.config import Settings
    from skadestue.hotspots import build_hotspots

    con = db.connect(":memory:")
    con.execute(
        "INSERT INTO core.casualty BY NAME SELECT 'C' || i AS casualty_id, 'er' AS source, "
        "DATE '2023-12-01' AS injury_date, NULL AS kommunekode, 700000.0 + i AS x, 6100000.0 AS y, "
        "'slight' AS severity, 'cyclist' AS road_user, 'A' AS geocode_quality, 'car' AS counterpart, "
        "'25-44' AS age_band, 1 AS n_er_contacts FROM range(5) t(i)"
    )
    report = build_hotspots(con, Settings(), as_of=dt.date(2024, 6, 1))
    assert {"grid_counts", "gi_star", "grid_insert", "junctions", "segment_snap", "expected", "commit"} <= set(
        report.timings
    )
    assert all(v["wall_s"] >= 0 and v["cpu_s"] >= 0 for v in report.timings.values())
    assert report.gi_cells == 0 and report.n_no_kommune == 5
    assert con.execute("SELECT count(*) FROM marts.hotspot_grid").fetchone()[0] == 0
