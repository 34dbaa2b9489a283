"""Colour priors of the training data and Zhang et al.'s class-rebalancing weights.

The empirical distribution p of nearest ab bins is smoothed with a Gaussian over ab (σ = 5) to p̃, and
w ∝ ((1 − λ)·p̃ + λ/Q)^−1 is normalised so that E_p̃[w] = Σ_q p̃_q w_q = 1. The images are read one at a time
(point-subsampled, never all held at once), so the sample can be as large as the data allows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sslreg import UserError
from sslreg_colorization.cache import atomic_write_bytes
from sslreg_colorization.encoding import nearest_bin
from sslreg_colorization.lab import rgb_to_lab

#: Bump when the histogram computation changes, so stale cache files are ignored.
PRIORS_VERSION = 2


@dataclass(frozen=True)
class PriorCounts:
    """Nearest-bin counts over a sample of training images, and what the sample was."""

    counts: np.ndarray
    num_images: int
    gray_images: int
    key: str


def is_gray(ab: np.ndarray, threshold: float | None) -> bool:
    """True when no pixel has |a| or |b| above ``threshold`` (Zhang et al.'s NonGrayMaskLayer); None: never."""
    return threshold is not None and not bool((np.abs(ab) > threshold).any())


def subsample(image: np.ndarray, max_pixels: int) -> np.ndarray:
    """Every s-th pixel in both directions so that at most about ``max_pixels`` remain (no colour mixing)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"priors: expected RGB uint8 images (H, W, 3), got {image.dtype} {image.shape}")
    stride = max(1, int(np.ceil(np.sqrt(image.shape[0] * image.shape[1] / max_pixels))))
    return np.ascontiguousarray(image[::stride, ::stride])


def ab_counts(ab: np.ndarray, bins: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Histogram (Q,) int64 of the nearest bin of every ab pair of ``ab`` (..., 2)."""
    counts = torch.zeros(len(bins), dtype=torch.int64)
    centres = torch.from_numpy(np.ascontiguousarray(bins, dtype=np.float32))
    pairs = torch.from_numpy(np.ascontiguousarray(ab, dtype=np.float32).reshape(-1, 2))
    for start in range(0, len(pairs), chunk):
        part = pairs[start : start + chunk].T.reshape(1, 2, 1, -1)
        counts += torch.bincount(nearest_bin(part, centres).flatten(), minlength=len(bins))
    return counts.numpy()


def bin_counts(images: Iterable[np.ndarray], bins: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Histogram (Q,) int64 of the nearest bin of every pixel of ``images`` (RGB uint8)."""
    counts = np.zeros(len(bins), dtype=np.int64)
    for image in images:
        counts += ab_counts(rgb_to_lab(image)[..., 1:], bins, chunk)
    return counts


def count_priors(
    images: Iterable[np.ndarray], bins: np.ndarray, max_pixels: int, gray_threshold: float | None
) -> PriorCounts:
    """Nearest-bin counts over ``images`` (RGB uint8), each point-subsampled to about ``max_pixels``, read one at
    a time. Grayscale images (``is_gray``) are counted apart and left out, as the loss leaves them out. The key is
    a hash of the subsampled pixels and the bins (the cache file name when the priors have no name)."""
    digest = hashlib.blake2b(digest_size=10)
    digest.update(f"v{PRIORS_VERSION} gray {gray_threshold}".encode())
    digest.update(np.ascontiguousarray(bins, dtype=np.float32).tobytes())
    counts = np.zeros(len(bins), dtype=np.int64)
    used = gray = 0
    for image in images:
        small = subsample(np.asarray(image), max_pixels)
        digest.update(str(small.shape).encode())
        digest.update(small.tobytes())
        ab = rgb_to_lab(small)[..., 1:]
        if is_gray(ab, gray_threshold):
            gray += 1
            continue
        counts += ab_counts(ab, bins)
        used += 1
    return PriorCounts(counts, used, gray, digest.hexdigest())


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


def priors_cache_path(cache_dir: Path, key: str) -> Path:
    """Cache file of the bin counts for ``key`` (a name from the config, or a data fingerprint)."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in key)
    return Path(cache_dir) / f"priors-{safe}.json"


def save_counts(path: Path, priors: PriorCounts, bins: np.ndarray) -> None:
    """Write the bin counts (not the weights, so λ and σ can change without recounting) and the sample's size
    atomically."""
    record = {
        "version": PRIORS_VERSION,
        "bins": np.asarray(bins).tolist(),
        "counts": [int(c) for c in priors.counts],
        "num_images": priors.num_images,
        "gray_images": priors.gray_images,
        "key": priors.key,
    }
    atomic_write_bytes(path, json.dumps(record).encode())


def load_counts(path: Path, bins: np.ndarray) -> PriorCounts | None:
    """Cached counts for exactly these bins, or None (missing, other version, other bins, damaged)."""
    try:
        record = json.loads(path.read_text())
        if record.get("version") != PRIORS_VERSION or not np.array_equal(np.asarray(record.get("bins")), bins):
            return None
        counts = np.asarray(record["counts"], dtype=np.int64)
        if counts.shape != (len(bins),):
            return None
        return PriorCounts(counts, int(record["num_images"]), int(record["gray_images"]), str(record["key"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
