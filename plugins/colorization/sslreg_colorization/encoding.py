"""Soft encoding of ab over the K nearest bins (Gaussian, σ = 5) and annealed-mean decoding, in torch.

Everything runs on the device of its inputs (``cdist`` + ``topk``), so the targets are encoded on the GPU
inside the loss rather than in DataLoader workers.
"""

from __future__ import annotations

import torch

from sslreg import UserError


def _pixels(ab: torch.Tensor) -> torch.Tensor:
    """(N, 2, h, w) ab maps to (N·h·w, 2) pixels, row order N, h, w."""
    if ab.dim() != 4 or ab.shape[1] != 2:
        raise ValueError(f"expected ab maps of shape (N, 2, h, w), got {tuple(ab.shape)}")
    return ab.permute(0, 2, 3, 1).reshape(-1, 2)


def soft_encode_sparse(
    ab: torch.Tensor, bins: torch.Tensor, k: int, sigma: float = 5.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (N, h, w, K) of each pixel's K nearest bins, nearest first, and their weights summing to 1.

    Weights are exp(-d²/2σ²) normalised over the K bins (computed relative to the nearest bin, so nothing
    overflows); each is floored at the dtype's smallest normal number so the support is exactly the K bins
    even where the Gaussian underflows (bins more than ~70 ab units beyond the nearest one).
    """
    n, _, h, w = ab.shape
    k = min(k, bins.shape[0])
    distances = torch.cdist(_pixels(ab).float(), bins.to(device=ab.device, dtype=torch.float32))
    if k == bins.shape[0]:  # all bins: a full sort is cheaper than topk of everything
        nearest, index = torch.sort(distances, dim=1)
    else:
        nearest, index = torch.topk(distances, k, dim=1, largest=False, sorted=True)
    logits = -(nearest.square() - nearest[:, :1].square()) / (2.0 * sigma**2)
    weights = torch.exp(logits).clamp_min(torch.finfo(torch.float32).tiny)
    weights = weights / weights.sum(dim=1, keepdim=True)
    return index.reshape(n, h, w, k), weights.reshape(n, h, w, k)


def soft_encode(ab: torch.Tensor, bins: torch.Tensor, k: int, sigma: float = 5.0) -> torch.Tensor:
    """Dense target distributions (N, Q, h, w): the sparse encoding scattered over all Q bins."""
    index, weights = soft_encode_sparse(ab, bins, k, sigma)
    n, h, w, _ = index.shape
    dense = torch.zeros(n, h, w, bins.shape[0], device=ab.device, dtype=weights.dtype)
    dense.scatter_(3, index, weights)
    return dense.permute(0, 3, 1, 2).contiguous()


def nearest_bin(ab: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Index (N, h, w) of each pixel's nearest bin."""
    n, _, h, w = ab.shape
    distances = torch.cdist(_pixels(ab).float(), bins.to(device=ab.device, dtype=torch.float32))
    return distances.argmin(dim=1).reshape(n, h, w)


def annealed_mean(logits: torch.Tensor, bins: torch.Tensor, temperature: float = 0.38) -> torch.Tensor:
    """ab maps (N, 2, h, w) from bin logits (N, Q, h, w): the mean of softmax(log p / T) (Zhang et al., T = 0.38)."""
    if temperature <= 0:
        raise UserError(f"temperature: must be > 0, got {temperature}")
    log_p = torch.log_softmax(logits.float(), dim=1)
    annealed = torch.softmax(log_p / temperature, dim=1)
    return torch.einsum("nqhw,qc->nchw", annealed, bins.to(device=logits.device, dtype=torch.float32))
