"""The reference VOC07 SVM protocol with scikit-learn's LinearSVC, classes in parallel: the benchmarks' baseline.

Per class, as fair_self_supervision_benchmark's train_svm_kfold.py and VISSL's SVM trainer: for each of the 26
costs ``cross_val_score(LinearSVC(...), X, y, cv=3, scoring='average_precision')`` on trainval (difficult counted as
negative), the cost with the best mean CV AP, LinearSVC refit at that cost on all of trainval, decision values on
test. Only the chosen cost is refit (the reference refits all 26; skipping 25 of them makes the baseline stronger).
Classes run in ``n_jobs`` joblib worker processes, as VISSL runs them. Test AP is sslreg_svm.metrics' VOC07 AP,
the same function our side uses.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_val_score
from sklearn.svm import LinearSVC
from sslreg_svm.metrics import mean_ap


def _svc(cost: float) -> LinearSVC:
    return LinearSVC(
        C=cost,
        class_weight={1: 2, -1: 1},
        intercept_scaling=1.0,
        penalty="l2",
        loss="squared_hinge",
        tol=1e-4,
        dual=True,
        max_iter=2000,
    )


def one_class(X: np.ndarray, y: np.ndarray, X_test: np.ndarray, costs: Sequence[float]) -> tuple[int, np.ndarray]:
    """CV AP over the costs, the best cost's index, and that cost's decision values on X_test."""
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", ConvergenceWarning
        )  # liblinear hits max_iter at large costs, as in the reference
        cv = [cross_val_score(_svc(c), X, y, cv=3, scoring="average_precision").mean() for c in costs]
        best = int(np.argmax(cv))
        scores = _svc(costs[best]).fit(X, y).decision_function(X_test)
    return best, scores


def normalize(x: np.ndarray) -> np.ndarray:
    """The reference's normalize_features: float64 rows / (L2 norm + 1e-5)."""
    x = np.asarray(x, dtype=np.float64)
    return x / (np.linalg.norm(x, axis=1) + 1e-5)[:, None]


def sklearn_protocol(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    costs: Sequence[float],
    n_jobs: int = 2,
) -> tuple[float, np.ndarray]:
    """Test mAP (fraction) and the chosen cost index per class of the reference protocol on devkit labels."""
    X, X_test = normalize(train_features), normalize(test_features)
    Y = np.where(np.asarray(train_labels) == 1, 1, -1)
    results = Parallel(n_jobs=n_jobs)(delayed(one_class)(X, Y[:, j], X_test, costs) for j in range(Y.shape[1]))
    best = np.array([b for b, _ in results])
    scores = np.stack([s for _, s in results], axis=1)
    value, _ = mean_ap(scores, np.asarray(test_labels))
    return value, best
