"""Colour priors of the training data and Zhang et al.'s class-rebalancing weights.

The empirical distribution p of nearest ab bins is smoothed with a Gaussian over ab (σ = 5) to p̃, and
w ∝ ((1 − λ)·p̃ + λ/Q)^−1 is normalised so that E_p̃[w] = Σ_q p̃_q w_q = 1.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from sslreg import UserError
from sslreg_colorization.cache import atomic_write_bytes
from sslreg_colorization.encoding import nearest_bin
from sslreg_colorization.lab import rgb_to_lab

#: Bump when the histogram computation changes, so stale cache files are ignored.
PRIORS_VERSION = 1


def subsample(image: np.ndarray, max_pixels: int) -> np.ndarray:
    """Every s-th pixel in both directions so that at most about ``max_pixels`` remain (no colour mixing)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"priors: expected RGB uint8 images (H, W, 3), got {image.dtype} {image.shape}")
    stride = max(1, int(np.ceil(np.sqrt(image.shape[0] * image.shape[1] / max_pixels))))
    return np.ascontiguousarray(image[::stride, ::stride])


def bin_counts(images: Iterable[np.ndarray], bins: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Histogram (Q,) int64 of the nearest bin of every pixel of ``images`` (RGB uint8)."""
    counts = torch.zeros(len(bins), dtype=torch.int64)
    centres = torch.from_numpy(bins)
    for image in images:
        ab = torch.from_numpy(rgb_to_lab(image)[..., 1:].reshape(-1, 2))
        for start in range(0, len(ab), chunk):
            part = ab[start : start + chunk].T.reshape(1, 2, 1, -1)
            counts += torch.bincount(nearest_bin(part, centres).flatten(), minlength=len(bins))
    return counts.numpy()


def smooth_priors(counts: np.ndarray, bins: np.ndarray, sigma: float = 5.0) -> np.ndarray:
    """p̃: the empirical distribution convolved with a Gaussian of ``sigma`` ab units over the bins, sum 1."""
    total = counts.sum()
    if total <= 0:
        raise UserError("priors: no pixels were counted (empty training images?)")
    p = counts.astype(np.float64) / total
    d2 = ((bins[:, None, :].astype(np.float64) - bins[None, :, :]) ** 2).sum(-1)
    smoothed = np.exp(-d2 / (2.0 * sigma**2)) @ p
    return smoothed / smoothed.sum()


def rebalance_weights(smoothed: np.ndarray, lam: float = 0.5) -> np.ndarray:
    """w ∝ ((1 − λ)·p̃ + λ/Q)^−1, scaled so that Σ_q p̃_q w_q = 1."""
    weights = 1.0 / ((1.0 - lam) * smoothed + lam / len(smoothed))
    return weights / (smoothed * weights).sum()


def fingerprint(images: list[np.ndarray], bins: np.ndarray) -> str:
    """A short hash of the (subsampled) images and the bins: the cache key when no name is given."""
    digest = hashlib.blake2b(digest_size=10)
    digest.update(f"v{PRIORS_VERSION}".encode())
    digest.update(np.ascontiguousarray(bins, dtype=np.float32).tobytes())
    for image in images:
        digest.update(str(image.shape).encode())
        digest.update(image.tobytes())
    return digest.hexdigest()


def priors_cache_path(cache_dir: Path, key: str) -> Path:
    """Cache file of the bin counts for ``key`` (a name from the config, or a data fingerprint)."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in key)
    return Path(cache_dir) / f"priors-{safe}.json"


def save_counts(path: Path, counts: np.ndarray, bins: np.ndarray, num_images: int) -> None:
    """Write the bin counts (not the weights, so λ and σ can change without recounting) atomically."""
    record = {
        "version": PRIORS_VERSION,
        "bins": np.asarray(bins).tolist(),
        "counts": [int(c) for c in counts],
        "num_images": int(num_images),
    }
    atomic_write_bytes(path, json.dumps(record).encode())


def load_counts(path: Path, bins: np.ndarray) -> np.ndarray | None:
    """Cached counts for exactly these bins, or None (missing, other version, other bins, damaged)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("version") != PRIORS_VERSION or not np.array_equal(np.asarray(record.get("bins")), bins):
        return None
    return np.asarray(record["counts"], dtype=np.int64)
