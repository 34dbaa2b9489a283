"""The quantised ab space: bin centres on a 10×10 grid. Two sets (option ``bins`` of the task):

- ``zhang313`` (default): Zhang et al.'s Q = 313 centres (``pts_in_hull.npy``), the set the paper's logits,
  its λ/Q rebalancing term and its K = 313 point are defined on. Shipped as data (``ZHANG_313_RANGES``): a
  from -90 to 100, b from -110 to 100, a-major, b ascending, as in the original file.
- ``srgb262``: the centres some 8-bit sRGB colour lands on. Every one of the 256³ colours is converted to Lab
  with OpenCV's float path and assigned to the nearest grid centre: Q = 262, all of them in the 313 (a in
  [-90, 100], b in [-110, 90]). The other 51 of the 313 form a one-bin ring at the gamut's edge that no sRGB
  colour reaches; neither the convex hull of the gamut (233 bins) nor cells that touch it (≈ 269) give 313,
  which is why the 313 are shipped rather than derived. With this set K above 262 means "all bins".
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np

from sslreg_colorization.cache import atomic_write_bytes, resolve_cache_dir
from sslreg_colorization.lab import rgb_to_lab

#: Grid spacing of the ab bins (Zhang et al.).
BIN_SIZE = 10
#: Bin centres run from -AB_LIMIT to +AB_LIMIT in steps of BIN_SIZE.
AB_LIMIT = 110
#: Bump when the computation changes, so stale cache files are ignored.
GAMUT_VERSION = 1
#: Zhang et al.'s bin count, the paper's largest K.
PAPER_Q = 313
#: Zhang et al.'s 313 bin centres as (a, lowest b, highest b): every b in steps of BIN_SIZE over the closed range
#: (docs/protocol.md#colorization; the order of ``pts_in_hull.npy``: a-major, b ascending).
ZHANG_313_RANGES: tuple[tuple[int, int, int], ...] = (
    (-90, 50, 90),
    (-80, 20, 90),
    (-70, 0, 90),
    (-60, -20, 90),
    (-50, -30, 100),
    (-40, -40, 100),
    (-30, -50, 100),
    (-20, -50, 100),
    (-10, -60, 100),
    (0, -70, 100),
    (10, -80, 90),
    (20, -80, 90),
    (30, -90, 90),
    (40, -100, 90),
    (50, -100, 80),
    (60, -110, 80),
    (70, -110, 80),
    (80, -110, 70),
    (90, -110, 70),
    (100, -90, 0),
)
#: Names of the bin sets, for the task's ``bins`` option.
BIN_SETS: tuple[str, ...] = ("zhang313", "srgb262")


def zhang_bins() -> np.ndarray:
    """Zhang et al.'s (313, 2) float32 ab centres, in the order of their ``pts_in_hull.npy``."""
    centres = [(a, b) for a, low, high in ZHANG_313_RANGES for b in range(low, high + BIN_SIZE, BIN_SIZE)]
    return np.asarray(centres, dtype=np.float32)


def load_bins(name: str, cache_dir: str | Path | None = None) -> np.ndarray:
    """The (Q, 2) centres of bin set ``name`` (``zhang313``, or ``srgb262`` computed once and cached)."""
    if name == "zhang313":
        return zhang_bins()
    if name == "srgb262":
        return gamut_bins(cache_dir)
    raise ValueError(f"bins: unknown bin set {name!r}; known: {', '.join(BIN_SETS)}")


def compute_gamut_bins(levels: int = 256) -> np.ndarray:
    """(Q, 2) float32 ab centres hit by ``levels``³ evenly spaced sRGB colours (256: every 8-bit colour)."""
    side = 2 * AB_LIMIT // BIN_SIZE + 1
    hit = np.zeros((side, side), dtype=bool)
    values = np.linspace(0.0, 1.0, levels, dtype=np.float32)
    green, blue = np.meshgrid(values, values, indexing="ij")
    for red in values:  # one slice of the cube at a time keeps memory small
        rgb = np.stack([np.full_like(green, red), green, blue], axis=-1)
        ab = rgb_to_lab(rgb)[..., 1:].reshape(-1, 2)
        cell = np.rint(ab / BIN_SIZE).astype(np.int64) + AB_LIMIT // BIN_SIZE
        inside = ((cell >= 0) & (cell < side)).all(axis=1)
        hit[cell[inside, 0], cell[inside, 1]] = True
    a_index, b_index = np.nonzero(hit)
    centres = np.stack([a_index, b_index], axis=1) * BIN_SIZE - AB_LIMIT
    return centres.astype(np.float32)


def gamut_cache_path(cache_dir: str | Path | None = None) -> Path:
    """The cache file of the gamut bins under ``cache_dir`` (default: ``default_cache_dir()``)."""
    return resolve_cache_dir(cache_dir) / f"ab_gamut_bins_grid{BIN_SIZE}_v{GAMUT_VERSION}.npy"


@lru_cache(maxsize=8)
def _load_or_compute(path: Path) -> np.ndarray:
    if path.is_file():
        try:
            bins = np.load(path, allow_pickle=False)
            if bins.ndim == 2 and bins.shape[1] == 2:
                return bins.astype(np.float32)
        except (OSError, ValueError):
            pass  # a damaged cache file is recomputed and replaced
    bins = compute_gamut_bins()
    buffer = io.BytesIO()
    np.save(buffer, bins, allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())
    return bins


def gamut_bins(cache_dir: str | Path | None = None) -> np.ndarray:
    """The sRGB-reachable ab bin centres (262, 2), computed once (a few seconds) and cached on disk."""
    return _load_or_compute(gamut_cache_path(cache_dir).resolve()).copy()


def effective_k(k: int, num_bins: int) -> int:
    """K nearest bins actually used: K itself, or all Q bins when K exceeds Q (K = 313 with the 262 set)."""
    if k < 1:
        raise ValueError(f"num_neighbors: must be ≥ 1, got {k}")
    return min(k, num_bins)
