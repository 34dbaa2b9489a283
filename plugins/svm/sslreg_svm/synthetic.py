"""Synthetic features that look like a real trunk's pooled ReLU features, for the SVM benchmarks and tests.

Real pooled features (a ResNet's res4 averaged to 1024 channels x 3 x 3) are non-negative, about half zeros,
heavy-tailed, strongly correlated (the positions of a channel, channels driven by shared factors), and the
VOC classes overlap, so that the protocol scores 50-85 mAP rather than the ~97 of separable toy data (where
liblinear is at its slowest and the speed-up of a fast solver is flattering). This generator draws:

* multi-label VOC-like labels: one frequent class ('person', ~40 %), the others 3-12 %, at least one per image,
  'difficult' positives (15 %, label 0: negatives in training, ignored at test);
* a latent code per image: the present classes' centres (weak, `signal`) plus shared nuisance factors;
* channels = a random mixing of the latent code, repeated over `positions` spatial cells with cell-specific
  gains and noise (correlated dimensions), shifted down and rectified (sparse), raised to a power > 1 and
  scaled per channel by a log-normal factor (heavy tails).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FeatureSplits:
    """Train/test features (float32) and devkit labels (int8: 1 present, -1 absent, 0 difficult)."""

    train_features: np.ndarray
    train_labels: np.ndarray
    test_features: np.ndarray
    test_labels: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        """The four arrays under the names of a ``sslreg evaluate voc07_svm --features`` file."""
        return {
            "train_features": self.train_features,
            "train_labels": self.train_labels,
            "test_features": self.test_features,
            "test_labels": self.test_labels,
        }


def _labels(rng: np.random.Generator, n: int, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Presence (n, C) with VOC-like frequencies (at least one class per image) and a 'difficult' flag."""
    freq = np.clip(rng.lognormal(np.log(0.06), 0.45, n_classes), 0.03, 0.12)
    freq[0] = 0.4  # a 'person'-like class
    present = rng.random((n, n_classes)) < freq
    empty = ~present.any(1)
    present[empty, rng.choice(n_classes, int(empty.sum()), p=freq / freq.sum())] = True
    difficult = present & (rng.random((n, n_classes)) < 0.15)
    return present, difficult


def _positions(dim: int) -> int:
    for cells in (9, 4, 1):
        if dim % cells == 0 and dim // cells >= 8:
            return cells
    return 1


def realistic_features(
    n_train: int,
    n_test: int,
    dim: int,
    n_classes: int = 20,
    *,
    signal: float = 0.40,
    noise: float = 0.3,
    latent: int = 96,
    seed: int = 0,
    chunk: int = 4096,
) -> FeatureSplits:
    """Pooled-ReLU-like features and labels; at 2,500 x 4,096 with 20 classes the protocol scores ~75 mAP.

    Deterministic in ``seed``; rows are generated in chunks (float32), so COCO-sized sets fit in memory.
    """
    if min(n_train, n_test, dim, n_classes) < 1:
        raise ValueError("realistic_features: sizes must be positive")
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    present, difficult = _labels(rng, n, n_classes)
    positions = _positions(dim)
    channels = dim // positions
    centres = rng.normal(size=(n_classes, latent))
    mixing = (rng.normal(size=(latent, channels)) / np.sqrt(latent)).astype(np.float32)
    gains = rng.uniform(0.5, 1.0, size=(channels, positions)).astype(np.float32)
    scale = rng.lognormal(0.0, 0.8, size=(channels, 1)).astype(np.float32)
    # a few dominant shared factors (lighting, scene layout) on top of isotropic nuisance
    factor_sd = np.where(np.arange(latent) < 8, 2.0, 1.0)
    features = np.empty((n, channels * positions), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        z = present[start:stop] @ centres * signal + rng.normal(size=(stop - start, latent)) * factor_sd
        h = (z.astype(np.float32) @ mixing)[:, :, None] * gains
        h += noise * rng.standard_normal(size=h.shape, dtype=np.float32)
        x = np.maximum(h - 0.3, 0.0) ** 1.5 * scale
        features[start:stop] = x.reshape(stop - start, -1)
    if features.shape[1] < dim:  # dims not divisible by the cells: pad with sparse noise channels
        extra = np.maximum(rng.standard_normal((n, dim - features.shape[1]), dtype=np.float32) - 0.5, 0)
        features = np.concatenate([features, extra], axis=1)
    labels = np.where(present, 1, -1).astype(np.int8)
    labels[difficult] = 0
    return FeatureSplits(features[:n_train], labels[:n_train], features[n_train:], labels[n_train:])
