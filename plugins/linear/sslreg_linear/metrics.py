"""Scores of a linear head: top-k accuracy for single-label data, mAP for multi-label data."""

from __future__ import annotations

import numpy as np
import torch

from sslreg import UserError


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """Percentage of rows whose label is among the k highest logits (ties broken by torch.topk)."""
    top = logits.topk(min(k, logits.shape[1]), dim=1).indices
    return 100.0 * (top == labels[:, None]).any(dim=1).float().mean().item()


def mean_average_precision(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean over classes of average precision (percent); targets are 1 present, -1 absent, 0 difficult (ignored).

    Classes without a positive test image are left out of the mean; with none at all it is an error.
    """
    from sklearn.metrics import average_precision_score  # heavy import, only needed for multi-label data

    scores_np, targets_np = scores.double().numpy(), targets.numpy()
    aps = []
    for column in range(targets_np.shape[1]):
        keep = targets_np[:, column] != 0
        positives = targets_np[keep, column] > 0
        if positives.any():
            aps.append(average_precision_score(positives, scores_np[keep, column]))
    if not aps:
        raise UserError("linear_probe: no class has a positive (non-difficult) test image; mAP is undefined")
    return 100.0 * float(np.mean(aps))
