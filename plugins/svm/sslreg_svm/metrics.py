"""VOC07 test metrics: the all-point interpolated AP of fair_self_supervision_benchmark's tools/svm, and mAP."""

from __future__ import annotations

import numpy as np


def voc07_ap(scores: np.ndarray, labels: np.ndarray) -> float:
    """VOC2010-style all-point AP: precision made monotone (non-increasing), summed over the recall steps.

    ``labels`` are 1 (positive) / -1 (negative); entries with label 0 (VOC 'difficult') are ignored. Ties are
    ranked as the reference's ``np.argsort(scores)[::-1]`` with a stable sort (later index first). Returns NaN
    when no positive is left, as the reference would.
    """
    scores, labels = (
        np.asarray(scores, dtype=np.float64).ravel(),
        np.asarray(labels).ravel(),
    )
    if scores.shape != labels.shape:
        raise ValueError(f"voc07_ap: scores {scores.shape} and labels {labels.shape} differ in shape")
    keep = labels != 0
    scores, positive = scores[keep], labels[keep] > 0
    n_pos = int(positive.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(scores, kind="stable")[::-1]
    tp = np.cumsum(positive[order], dtype=np.float64)
    precision = tp / np.arange(1, len(tp) + 1)
    recall = tp / n_pos
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mpre[steps]))


def mean_ap(scores: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Per-class :func:`voc07_ap` of (N, C) scores against (N, C) labels in {1, -1, 0}, and their mean."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    if scores.ndim != 2 or scores.shape != labels.shape:
        raise ValueError(
            f"mean_ap: expected scores and labels of the same (N, C) shape, got {scores.shape} and {labels.shape}"
        )
    per_class = np.array([voc07_ap(scores[:, j], labels[:, j]) for j in range(scores.shape[1])])
    return float(per_class.mean()), per_class
