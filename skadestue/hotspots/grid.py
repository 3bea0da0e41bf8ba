"""Det Danske Kvadratnet cell names and the Getis-Ord Gi* statistic on the 100 m grid."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: Use the O(permutations x cells) path of the permutation p where it applies (tests switch it off).
_FAST_PERMUTATIONS = True


def cell_label(size_m: int) -> tuple[str, int]:
    """The Kvadratnet size label and the unit its corner coordinates are written in.

    100 m -> ('100m', 100), 1 km -> ('1km', 1000), 250 m -> ('250m', 10): the corner is
    divided by the largest power of ten that divides the cell size.
    """
    if size_m <= 0:
        raise ValueError(f"grid cell size must be positive, got {size_m}")
    label = f"{size_m // 1000}km" if size_m % 1000 == 0 else f"{size_m}m"
    unit = 1
    while size_m % (unit * 10) == 0:
        unit *= 10
    return label, unit


def kvadratnet_cell_id(x: float, y: float, size_m: int) -> str:
    """The Kvadratnet id of the cell holding (x=easting, y=northing), northing first.

    >>> kvadratnet_cell_id(728838, 6166977, 100)
    '100m_61669_7288'
    """
    label, unit = cell_label(size_m)
    e0 = math.floor(x / size_m) * size_m
    n0 = math.floor(y / size_m) * size_m
    return f"{label}_{n0 // unit}_{e0 // unit}"


def grid_size_table(sizes_m: list[int]) -> pd.DataFrame:
    """Rows (size_m, label, unit_m) for the grid query."""
    rows = [(s, *cell_label(s)) for s in sorted(set(sizes_m))]
    return pd.DataFrame(rows, columns=["size_m", "label", "unit_m"])


def _cell_keys(corners: np.ndarray, size_m: int, origin: np.ndarray, span: int) -> np.ndarray:
    """One int64 key per cell corner (k x 2): row-major index on the grid from ``origin``."""
    ij = (corners - origin) // size_m
    return ij[..., 0] * span + ij[..., 1]


def pad_with_empty_cells(e0: np.ndarray, n0: np.ndarray, size_m: int, band_m: float) -> np.ndarray:
    """Corners (k x 2) of the occupied cells followed by the empty cells within ``band_m``.

    Gi* compares a cell's neighbourhood with the whole study area, so the empty cells around
    the casualties must take part as zeros; the sea of empty cells far away does not.
    Empty cells come in (e0, n0) order. Cells are handled as int64 keys (1-D sorts and
    searches), not as coordinate pairs.
    """
    occupied = np.column_stack([e0, n0]).astype(np.int64)
    offsets = band_offsets(size_m, band_m)
    reach = int(np.abs(offsets).max()) if len(offsets) else 0
    origin = occupied.min(axis=0) - reach
    span = int((occupied[:, 1].max() + reach - origin[1]) // size_m) + 1
    occ_keys = _cell_keys(occupied, size_m, origin, span)
    around = np.unique((occ_keys[:, None] + _cell_keys(offsets + origin, size_m, origin, span)[None, :]).ravel())
    new = around[~np.isin(around, occ_keys)]
    corners_new = np.column_stack([new // span, new % span]) * size_m + origin
    return np.vstack([occupied, corners_new])


def band_offsets(size_m: int, band_m: float) -> np.ndarray:
    """Corner offsets (k x 2, metres) of the cells whose centres lie within ``band_m``; self first."""
    reach = int(band_m // size_m)
    d = np.arange(-reach, reach + 1)
    dx, dy = np.meshgrid(d, d)
    keep = (dx**2 + dy**2) * size_m**2 <= band_m**2 + 1e-6
    offsets = np.column_stack([dx[keep], dy[keep]]) * size_m
    order = np.argsort((offsets**2).sum(axis=1), kind="stable")
    return offsets[order]


def getis_ord_gi_star(
    cells: pd.DataFrame,
    size_m: int,
    band_m: float,
    permutations: int,
    seed: int,
    chunk: int = 500,
) -> pd.DataFrame:
    """Gi* z and p for ``cells`` (columns cell_id, e0, n0, value): one row per cell_id.

    The statistic of ``esda.G_Local(y, w, transform="B", star=True)`` with binary
    distance-band weights on cell centres (self included) over the occupied cells plus the
    empty cells within the band (zeros). On a regular grid the weights are fixed offsets,
    so this computes the same z (analytic moments) and the same kind of conditional
    permutation p (``p_sim``: folded, one-sided, (larger + 1) / (permutations + 1)) in
    vectorised numpy, only for the occupied cells: esda builds weights for every padded
    cell and loops in Python without numba, which takes minutes on a regional grid.
    test_hotspots checks the z against esda. Fewer than 3 cells or no variation: NULLs.
    """
    out = pd.DataFrame({"cell_id": cells["cell_id"].to_numpy(), "gi_z": np.nan, "gi_p": np.nan})
    if len(cells) < 3:
        return out
    corners = pad_with_empty_cells(cells["e0"].to_numpy(), cells["n0"].to_numpy(), size_m, band_m)
    n_all, m = len(corners), len(cells)
    y = np.zeros(n_all)
    y[:m] = cells["value"].to_numpy(dtype=float)
    if np.ptp(y) == 0:
        return out
    offsets = band_offsets(size_m, band_m)
    origin = corners.min(axis=0) - int(np.abs(offsets).max())
    span = int((corners[:, 1].max() + int(np.abs(offsets).max()) - origin[1]) // size_m) + 1
    keys = _cell_keys(corners, size_m, origin, span)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    near = keys[:m, None] + _cell_keys(offsets + origin, size_m, origin, span)[None, :]   # m x k
    pos = np.minimum(np.searchsorted(sorted_keys, near), len(sorted_keys) - 1)
    found = sorted_keys[pos] == near
    near_idx = np.where(found, order[pos], -1)
    present = near_idx >= 0                                             # always, thanks to the padding
    card = present.sum(axis=1)
    y_sum = y.sum()
    gs = np.where(present, y[np.where(present, near_idx, 0)], 0.0).sum(axis=1) / y_sum
    mean = y_sum / n_all
    var = (y**2).sum() / n_all - mean**2
    expected = card / n_all
    variance = card * (n_all - card) / (n_all - 1) / n_all**2 * var / mean**2
    out["gi_z"] = (gs - expected) / np.sqrt(variance)
    if permutations > 0:
        out["gi_p"] = _permutation_p(y, gs, card, y_sum, permutations, seed, chunk)
    else:
        from scipy.stats import norm

        out["gi_p"] = norm.sf(np.abs(out["gi_z"].to_numpy()))
    log.info("Gi* on %d cells (%d empty cells as zeros)", m, n_all - m)
    return out


def _permutation_p(
    y: np.ndarray, gs: np.ndarray, card: np.ndarray, y_sum: float, permutations: int, seed: int, chunk: int
) -> np.ndarray:
    """Conditional randomisation as in esda's crand: keep y_i, draw its card-1 neighbours
    without replacement from the other cells, the same draws for every cell."""
    rng = np.random.default_rng(seed)
    n_all, k = len(y), int(card.max()) - 1
    draws = np.stack([rng.choice(n_all - 1, size=k, replace=False) for _ in range(permutations)])
    if _FAST_PERMUTATIONS and (card == k + 1).all() and np.array_equal(y, np.round(y)) and y_sum < 2**52:
        return _permutation_p_sorted(y, gs, y_sum, draws)
    use = np.arange(k)[None, None, :] < (card[:, None, None] - 1)
    p = np.empty(len(gs))
    for lo in range(0, len(gs), chunk):
        i = np.arange(lo, min(lo + chunk, len(gs)))
        ids = draws[None, :, :] + (draws[None, :, :] >= i[:, None, None])   # skip cell i itself
        sims = (np.where(use[i], y[ids], 0.0).sum(axis=2) + y[i, None]) / y_sum
        larger = (sims >= gs[i, None]).sum(axis=1)
        larger = np.where(permutations - larger < larger, permutations - larger, larger)
        p[i] = (larger + 1) / (permutations + 1)
    return p


def _permutation_p_sorted(y: np.ndarray, gs: np.ndarray, y_sum: float, draws: np.ndarray) -> np.ndarray:
    """The same p as the chunked loop of ``_permutation_p`` when every cell has all its
    neighbours and y holds counts, in O(permutations x cells) instead of x neighbours.

    For cell i a draw d stands for cell d + (d >= i) (cell i itself is skipped). With the
    draws of one permutation sorted, the sum over them for cell i is the sum of y[d] plus,
    for the draws at or above i, y[d + 1] - y[d]: a suffix sum found by binary search.
    Counts add up exactly in float64, so the simulated values equal the loop's bit for bit.
    """
    m, permutations = len(gs), len(draws)
    cells = np.arange(m)
    y_cells = y[:m]
    larger = np.zeros(m, dtype=np.int64)
    for d in np.sort(draws, axis=1):
        delta = y[d + 1] - y[d]
        suffix = np.concatenate([np.cumsum(delta[::-1])[::-1], [0.0]])
        sims = (y[d].sum() + suffix[np.searchsorted(d, cells, side="left")] + y_cells) / y_sum
        larger += sims >= gs
    larger = np.where(permutations - larger < larger, permutations - larger, larger)
    return (larger + 1) / (permutations + 1)
