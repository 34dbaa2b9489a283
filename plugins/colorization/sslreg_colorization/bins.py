"""The quantised ab space: centres of a 10×10 grid over [-110, 110]² kept where an sRGB colour lands.

Every 8-bit sRGB colour (256³ of them) is converted to Lab with OpenCV's float path and assigned to the
nearest grid centre; the centres hit form the in-gamut bins. This gives Q = 262 bins, not the 313 of Zhang
et al.'s ``pts_in_hull.npy`` (same bounding box: a in [-90, 100], b in [-110, 90]): their set is larger than
the sRGB gamut (it also holds bins no sRGB colour reaches; neither the convex hull of the gamut (233 bins)
nor cells that touch it (≈ 269) give 313). K = 313 therefore means "all bins" here (see ``effective_k``).
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
    """The in-gamut ab bin centres (Q, 2), computed once (a few seconds) and cached on disk."""
    return _load_or_compute(gamut_cache_path(cache_dir).resolve()).copy()


def effective_k(k: int, num_bins: int) -> int:
    """K nearest bins actually used: K itself, or all Q bins when K exceeds Q (e.g. the paper's K = 313)."""
    if k < 1:
        raise ValueError(f"num_neighbors: must be ≥ 1, got {k}")
    return min(k, num_bins)
