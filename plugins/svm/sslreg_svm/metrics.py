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
    """Per-class :func:`voc07_ap` of (N, C) scores against (N, C) labels in {1, -1, 0}, and their mean.

    The mean is over the classes with a positive to rank (NaN AP otherwise); NaN when there is none.
    """
    scores, labels = np.asarray(scores), np.asarray(labels)
    if scores.ndim != 2 or scores.shape != labels.shape:
        raise ValueError(
            f"mean_ap: expected scores and labels of the same (N, C) shape, got {scores.shape} and {labels.shape}"
        )
    per_class = np.array([voc07_ap(scores[:, j], labels[:, j]) for j in range(scores.shape[1])])
    defined = per_class[~np.isnan(per_class)]
    return (float(defined.mean()) if len(defined) else float("nan")), per_class


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """scikit-learn's ``average_precision_score`` (step-wise, no interpolation) for labels in {1, -1}, vectorised.

    The cross-validation score of the protocol (``cross_val_score(..., scoring='average_precision')``); 0.0 when
    there is no positive, as scikit-learn returns.
    """
    order = np.argsort(scores, kind="mergesort")[::-1]
    ranked, hits = scores[order], (labels[order] == 1)
    cut = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]  # last index of each distinct score
    tps = np.cumsum(hits)[cut]
    if len(tps) == 0 or tps[-1] == 0:
        return 0.0
    precision = tps / (cut + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def stratified_folds(labels: np.ndarray, folds: int) -> np.ndarray:
    """Test fold of every sample under scikit-learn's ``StratifiedKFold(folds, shuffle=False)`` (cross_val_score's cv).

    The same assignment without importing scikit-learn (seconds at start-up): classes in order of first appearance,
    each class's samples dealt to folds in blocks by a round robin over the sorted labels.
    """
    labels = np.asarray(labels)
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    _, perm = np.unique(first, return_inverse=True)
    encoded = perm[inverse.ravel()]
    n_classes = len(first)
    ordered = np.sort(encoded)
    allocation = np.stack([np.bincount(ordered[i::folds], minlength=n_classes) for i in range(folds)])
    fold_of = np.empty(len(labels), dtype=np.int64)
    for k in range(n_classes):
        fold_of[encoded == k] = np.arange(folds).repeat(allocation[:, k])
    return fold_of


def fold_assignment(Y: np.ndarray, folds: int) -> np.ndarray:
    """fold_of[i, j]: the CV fold in which sample i is tested for class j (-1: ignored for that class)."""
    fold_of = np.full(Y.shape, -1)
    for j in range(Y.shape[1]):
        valid = np.flatnonzero(Y[:, j] != 0)
        fold_of[valid, j] = stratified_folds(Y[valid, j], folds)
    return fold_of
