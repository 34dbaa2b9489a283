"""The reference's discretisation of normals: k-means centres of the training normals, labels and decoding.

Training pixels are labelled with their nearest centre (largest dot product; invalid pixels are ignored); a
prediction is the probability-weighted sum of the centres, renormalised to unit length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from sslreg import Collate, DatasetSource, Sample, UserError, make_loader

#: Label of pixels without a valid normal (cross-entropy's ignore_index).
IGNORE = -1


@dataclass(frozen=True)
class PickNormals:
    """Per-sample transform: up to ``count`` random valid normals of a target, float32 (M, 3) (picklable)."""

    count: int

    def __call__(self, sample: Sample, rng: np.random.Generator) -> np.ndarray:
        normals = np.asarray(sample.target, dtype=np.float32).reshape(-1, 3)
        valid = np.flatnonzero(np.any(normals != 0, axis=1))
        chosen = rng.choice(valid, size=min(self.count, len(valid)), replace=False) if len(valid) else valid
        return normals[np.sort(chosen)]


def sample_normals(source: DatasetSource, total: int, seed: int, num_workers: int = 0) -> tuple[np.ndarray, int]:
    """About ``total`` valid normals drawn evenly from every readable training image, and the unreadable count."""
    per_image = max(1, math.ceil(total / max(1, len(source))))
    loader: DataLoader = make_loader(
        source, PickNormals(per_image), batch_size=16, seed=seed, num_workers=num_workers,
        collate=Collate(list), rank=0, world_size=1,
    )  # fmt: skip
    chunks, bad = [], 0
    for batch in loader:
        bad += batch.bad
        if batch.data is not None:
            chunks.extend(batch.data)
    return (np.concatenate(chunks) if chunks else np.zeros((0, 3), np.float32)), bad


def kmeans_centres(normals: np.ndarray, clusters: int, seed: int) -> np.ndarray:
    """``clusters`` unit-length k-means centres (float32 (K, 3)) of unit normals, deterministic for ``seed``."""
    from sklearn.cluster import KMeans

    distinct = len(np.unique(np.round(normals, 4), axis=0))
    if distinct < clusters:
        raise UserError(
            f"nyuv2_normals: the training normals have {distinct} distinct directions, fewer than"
            f" num_clusters={clusters}; lower num_clusters or use more training data"
        )
    model = KMeans(n_clusters=clusters, n_init=3, random_state=seed).fit(normals.astype(np.float64))
    centres = model.cluster_centers_
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    return centres.astype(np.float32)


def labels(target: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Nearest-centre label (N, H, W) int64 of targets (N, 3, H, W); IGNORE where the target is a zero vector."""
    scores = torch.einsum("nchw,kc->nkhw", target, centres)
    result = scores.argmax(dim=1)
    return torch.where(target.abs().sum(dim=1) > 0, result, torch.full_like(result, IGNORE))


def decode(logits: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Unit normals (N, 3, H, W): the softmax-weighted sum of the centres, renormalised."""
    weighted = torch.einsum("nkhw,kc->nchw", torch.softmax(logits.float(), dim=1), centres)
    return torch.nn.functional.normalize(weighted, dim=1)
