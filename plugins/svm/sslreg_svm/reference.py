"""The slow scikit-learn reference of the VOC07 SVM protocol (``solver: sklearn``): one LinearSVC per class and cost."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .solver import COSTS, SVMSolution


def _linear_svc(cost: float, pos_weight: float):  # -> sklearn.svm.LinearSVC
    from sklearn.svm import LinearSVC

    return LinearSVC(
        C=cost,
        class_weight={1: pos_weight, -1: 1},
        intercept_scaling=1.0,
        penalty="l2",
        loss="squared_hinge",
        tol=1e-4,
        dual=True,
        max_iter=2000,
        random_state=0,
    )


def _labels(Y: np.ndarray | torch.Tensor) -> np.ndarray:
    Y = np.asarray(Y.cpu() if isinstance(Y, torch.Tensor) else Y).astype(np.int64)
    if Y.ndim != 2 or not np.isin(Y, (-1, 0, 1)).all():
        raise ValueError("sklearn SVM reference: labels Y must be an (N, C) array of 1, -1 or 0 (ignored)")
    return Y


def _features(X: np.ndarray | torch.Tensor) -> np.ndarray:
    return np.asarray(X.cpu() if isinstance(X, torch.Tensor) else X, dtype=np.float64)


def _map(n_jobs: int, fn, args: list[tuple]) -> list:
    """fn(*a) for every a, over n_jobs joblib workers (in-process when n_jobs == 1)."""
    if n_jobs == 1:
        return [fn(*a) for a in args]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=n_jobs)(delayed(fn)(*a) for a in args)


def _fit_one(X: np.ndarray, y: np.ndarray, cost: float, pos_weight: float) -> tuple[np.ndarray, float]:
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    keep = y != 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the reference runs liblinear to max_iter at large costs
        clf = _linear_svc(cost, pos_weight).fit(X[keep], y[keep])
    return clf.coef_.ravel(), float(clf.intercept_[0])


def _cv_one(X: np.ndarray, y: np.ndarray, cost: float, pos_weight: float, folds: int) -> float:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import cross_val_score

    keep = y != 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(
            _linear_svc(cost, pos_weight),
            X[keep],
            y[keep],
            cv=folds,
            scoring="average_precision",
        )
    return float(scores.mean())


def train_svms_sklearn(
    X: np.ndarray | torch.Tensor,
    Y: np.ndarray | torch.Tensor,
    costs: Sequence[float] = COSTS,
    *,
    pos_weight: float = 2.0,
    n_jobs: int = 1,
) -> SVMSolution:
    """LinearSVC(tol=1e-4, max_iter=2000) per class per cost, as tools/svm/train_svm_kfold.py.

    The classes x costs fits are spread over ``n_jobs`` joblib workers.
    """
    X, Y = _features(X), _labels(Y)
    jobs = [(j, cost) for j in range(Y.shape[1]) for cost in costs]
    fits = _map(n_jobs, _fit_one, [(X, Y[:, j], cost, pos_weight) for j, cost in jobs])
    weights = np.stack([w for w, _ in fits]).reshape(Y.shape[1], len(costs), X.shape[1])
    bias = np.array([b for _, b in fits]).reshape(Y.shape[1], len(costs))
    return SVMSolution(weights=torch.from_numpy(weights), bias=torch.from_numpy(bias))


def cross_validate_sklearn(
    X: np.ndarray | torch.Tensor,
    Y: np.ndarray | torch.Tensor,
    costs: Sequence[float] = COSTS,
    *,
    folds: int = 3,
    pos_weight: float = 2.0,
    n_jobs: int = 1,
) -> np.ndarray:
    """Mean ``cross_val_score(LinearSVC, cv=folds, scoring='average_precision')`` per class and cost, shape (C, K)."""
    X, Y = _features(X), _labels(Y)
    jobs = [(j, cost) for j in range(Y.shape[1]) for cost in costs]
    aps = _map(n_jobs, _cv_one, [(X, Y[:, j], cost, pos_weight, folds) for j, cost in jobs])
    return np.array(aps).reshape(Y.shape[1], len(costs))
