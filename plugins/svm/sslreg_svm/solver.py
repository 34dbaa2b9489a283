"""Fast exact solver of the VOC07 linear-SVM protocol: every class and cost of LinearSVC's problem, all at once.

Each (class, cost) problem is scikit-learn's ``LinearSVC(C=cost, class_weight={1: w, -1: 1}, loss='squared_hinge',
dual=True, intercept_scaling=1)`` solved to its optimum (not to liblinear's tolerance). Up to KERNEL_MAX_ROWS
training rows it works in the sample space (sslreg_svm.path): the kernel X X^T + 1 is computed once and every
class, cost and cross-validation fold uses a sub-block of it. Beyond, where the kernel would not fit in memory
(COCO-sized sets), it works in the feature space on row chunks (sslreg_svm.primal).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from sslreg_svm import primal
from sslreg_svm.linalg import narrow_product
from sslreg_svm.metrics import average_precision, fold_assignment
from sslreg_svm.newton import through_features
from sslreg_svm.parallel import kernel, single_threaded_torch, thread_map, workers_for
from sslreg_svm.path import solve_each, solve_path

COSTS: tuple[float, ...] = (1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0) + tuple(
    0.5**k for k in range(4, 20)
)

#: Most training rows solved in the sample space: the float64 + float32 kernels and a fold's sub-kernel then take
#: about 12 (n^2 + (2n/3)^2) bytes, 2.5 GB at 12,000 rows; larger sets take the chunked feature-space path.
KERNEL_MAX_ROWS = 12_000
CV_EXACT = False


@dataclass
class SVMSolution:
    """Linear SVMs for C classes x K costs: score = X @ weights[c, k] + bias[c, k]."""

    weights: torch.Tensor  # (C, K, D)
    bias: torch.Tensor  # (C, K)
    n_iter: torch.Tensor | None = None  # (C, K) Newton iterations (0 = solved as a ridge regression)

    def decision(self, X: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Decision values (N, C, K) of every class and cost on the rows of X."""
        X = as_tensor(X, self.weights.device).to(self.weights.dtype)
        n_classes, n_costs, dim = self.weights.shape
        if X.ndim != 2 or X.shape[1] != dim:
            raise ValueError(f"SVMSolution.decision: expected features of shape (N, {dim}), got {tuple(X.shape)}")
        scores = X @ self.weights.reshape(n_classes * n_costs, dim).T + self.bias.reshape(1, -1)
        return scores.reshape(X.shape[0], n_classes, n_costs)


def as_tensor(x: torch.Tensor | np.ndarray, device: torch.device | None) -> torch.Tensor:
    """``x`` as a float64 tensor on ``device``."""
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float64, device=device)


def _check_inputs(X: torch.Tensor, Y: torch.Tensor, costs: Sequence[float], pos_weight: float) -> None:
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"SVM solver: expected X (N, D) and Y (N, C) with the same N, got {tuple(X.shape)} and {tuple(Y.shape)}"
        )
    if not bool(((Y == 1) | (Y == -1) | (Y == 0)).all()):
        raise ValueError("SVM solver: labels Y must be 1 (positive), -1 (negative) or 0 (ignored)")
    if len(costs) == 0 or min(costs) <= 0:
        raise ValueError(f"SVM solver: costs must be a non-empty list of positive numbers, got {list(costs)}")
    if pos_weight <= 0:
        raise ValueError(f"SVM solver: pos_weight must be positive, got {pos_weight}")


def _solver_options(solver_kw: dict[str, object], where: str) -> tuple[float, int]:
    unknown = set(solver_kw) - {"tol", "max_iter"}
    if unknown:
        raise ValueError(f"{where}: unknown solver options {sorted(unknown)} (known: tol, max_iter)")
    return float(solver_kw.get("tol", 1e-4)), int(solver_kw.get("max_iter", 2000))  # type: ignore[arg-type]


def _solution(Xs: torch.Tensor, beta: torch.Tensor, n_iter: torch.Tensor) -> SVMSolution:
    """Linear weights w = X^T beta and bias sum(beta) of kernel coefficients beta (n, C, K)."""
    n, n_classes, n_costs = beta.shape
    flat = beta.reshape(n, n_classes * n_costs)
    weights = (Xs.T @ flat).T.reshape(n_classes, n_costs, Xs.shape[1])
    return SVMSolution(weights=weights, bias=flat.sum(0).reshape(n_classes, n_costs), n_iter=n_iter)


def _kernel_rows(Y: torch.Tensor) -> torch.Tensor:
    """Rows that some class uses (label != 0)."""
    return (Y != 0).any(1).nonzero().squeeze(1)


def _sub_kernel(K_full: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    return K_full if len(rows) == len(K_full) else K_full[rows.unsqueeze(1), rows]


def _fit_on_kernel(
    X: torch.Tensor, Y: torch.Tensor, K_full: torch.Tensor, costs: Sequence[float], tol: float, max_iter: int,
    pos_weight: float,
) -> SVMSolution:  # fmt: skip
    """train_svms in the sample space on the kernel X X^T + 1 of all rows."""
    rows = _kernel_rows(Y)
    beta, n_iter = solve_path(_sub_kernel(K_full, rows), Y[rows], costs, pos_weight, tol, max_iter, X=X[rows])
    return _solution(X[rows], beta, n_iter)


def _uses_kernel(n: int) -> bool:
    return n <= KERNEL_MAX_ROWS


def train_svms(
    X: torch.Tensor | np.ndarray,
    Y: torch.Tensor | np.ndarray,
    costs: Sequence[float] = COSTS,
    *,
    pos_weight: float = 2.0,
    tol: float = 1e-4,
    max_iter: int = 2000,
    device: str | torch.device | None = None,
) -> SVMSolution:
    """Fit LinearSVC's problem for every class (columns of Y in {1, -1, 0 = ignore}) and every cost, exactly."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    X = as_tensor(X, dev)
    Y = torch.as_tensor(np.asarray(Y) if not isinstance(Y, torch.Tensor) else Y, device=dev)
    _check_inputs(X, Y, costs, pos_weight)
    workers = workers_for(dev)
    with single_threaded_torch(dev.type == "cpu"):
        if not _uses_kernel(len(X)):
            return primal.train(X, Y, costs, pos_weight, tol, max_iter, workers)
        rows = _kernel_rows(Y)
        K = kernel(X[rows], workers)
        return _fit_on_kernel(X[rows], Y[rows], K, costs, tol, max_iter, pos_weight)


@dataclass
class _FoldFits:
    """One CV fold's fits: the kernel rows it trained on and the coefficients (n_f, C, K) of every class and cost."""

    used: torch.Tensor
    beta: torch.Tensor


def _cv_on_kernel(
    X: torch.Tensor, K_full: torch.Tensor, Yn: np.ndarray, costs: Sequence[float], folds: int, pos_weight: float,
    tol: float, max_iter: int, workers: int = 1,
) -> tuple[np.ndarray, list[_FoldFits]]:  # fmt: skip
    """Mean CV AP (C, K) on a precomputed kernel X X^T + 1 of all rows (every fold's kernel is a sub-block of it).

    The folds run in parallel threads. Their systems are solved to float32 accuracy (CV_EXACT False): their
    optima to a relative residual of ~1e-6, against liblinear's tolerance of 1e-4 on the dual gradient. Also
    returns each fold's fits.
    """
    dev = K_full.device
    n_classes = Yn.shape[1]
    fold_of = fold_assignment(Yn, folds)
    tasks = _fold_tasks(folds, n_classes, workers)

    def fold(task: tuple[int, list[int]]) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        f, classes = task
        train_mask = (fold_of[:, classes] != f) & (fold_of[:, classes] >= 0)
        used = np.flatnonzero(((fold_of != f) & (fold_of >= 0)).any(1))  # the fold's rows, whatever the classes
        Yf = torch.as_tensor(np.where(train_mask[used], Yn[used][:, classes], 0), device=dev)
        used_t = torch.as_tensor(used, device=dev)
        K_fold = _sub_kernel(K_full, used_t)
        beta, _ = solve_path(K_fold, Yf, costs, pos_weight, tol, max_iter, CV_EXACT, X[used_t])
        decide = _decisions(X, K_full, used_t, beta)
        ap = np.zeros((len(classes), len(costs)))
        for c, j in enumerate(classes):
            test = np.flatnonzero(fold_of[:, j] == f)
            scores = decide(torch.as_tensor(test, device=dev), c).cpu().numpy()
            for k in range(len(costs)):
                ap[c, k] = average_precision(Yn[test, j], scores[:, k])
        return ap, used_t, beta

    cv_ap = np.zeros((n_classes, len(costs)))
    fits: dict[int, _FoldFits] = {}
    for (f, classes), (ap, used_t, beta) in zip(tasks, thread_map(fold, tasks, workers)):
        cv_ap[classes] += ap / folds
        if f not in fits:
            fits[f] = _FoldFits(used_t, torch.zeros(len(used_t), n_classes, len(costs), dtype=beta.dtype, device=dev))
        fits[f].beta[:, classes] = beta
    return cv_ap, [fits[f] for f in range(folds)]


def _fold_tasks(folds: int, n_classes: int, workers: int) -> list[tuple[int, list[int]]]:
    """(fold, classes) work items for ``workers`` threads: whole folds, and the folds left over after the last full
    round of workers split by classes (3 folds on 2 threads: 2 whole folds, then the third in two halves), so that
    no thread idles while one fold finishes alone."""
    every = list(range(n_classes))
    whole = folds - folds % workers if workers > 1 and n_classes > 1 else folds
    tasks = [(f, every) for f in range(whole)]
    for f in range(whole, folds):
        tasks += [(f, every[i::workers]) for i in range(min(workers, n_classes))]
    return tasks


def _decisions(
    X: torch.Tensor, K_full: torch.Tensor, used: torch.Tensor, beta: torch.Tensor
) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """decide(rows, c) = K[rows, used] beta[:, c] (rows x costs) for the coefficients beta (n_f, C, K) of a fit.

    Through the fit's linear weights w = X~^T beta where the kernel products go through the features: one product
    serves every class, where the kernel needs a block gathered per class (measured: 5,011 x 1,024, 66 ms a class).
    """
    if not through_features(X.shape[1], len(used)):
        return lambda rows, c: K_full[rows.unsqueeze(1), used] @ beta[:, c]
    fit = _solution(X[used], beta, None)
    return lambda rows, c: X[rows] @ fit.weights[c].T + fit.bias[c]


def _refit_guess(
    X: torch.Tensor, K_full: torch.Tensor, Y: torch.Tensor, fits: list[_FoldFits], best: np.ndarray
) -> torch.Tensor:
    """Predicted active sets (n, C) of the refits: y f < 1 for f the mean decision value of the folds' fits."""
    columns = torch.arange(len(best), device=K_full.device)
    chosen = torch.as_tensor(best, device=K_full.device)
    total = torch.zeros(Y.shape, dtype=K_full.dtype, device=K_full.device)
    for fit in fits:
        b = fit.beta[:, columns, chosen]  # (n_f, C): each class at its chosen cost
        if through_features(X.shape[1], len(fit.used)):
            total += narrow_product(X, narrow_product(X[fit.used].T, b)) + b.sum(0)
        else:
            total += narrow_product(K_full[:, fit.used], b)
    return Y.to(total.dtype) * (total / len(fits)) < 1


def _cv_inputs(
    X: torch.Tensor | np.ndarray,
    Y: torch.Tensor | np.ndarray,
    costs: Sequence[float],
    folds: int,
    pos_weight: float,
    device: str | torch.device | None,
) -> tuple[torch.Tensor, np.ndarray]:
    dev = torch.device(device) if device is not None else torch.device("cpu")
    X = as_tensor(X, dev)
    Yn = np.asarray(Y.cpu() if isinstance(Y, torch.Tensor) else Y).astype(np.int64)
    _check_inputs(X, torch.as_tensor(Yn), costs, pos_weight)
    if folds < 2:
        raise ValueError(f"cross_validate: folds must be >= 2, got {folds}")
    return X, Yn


def cross_validate(
    X: torch.Tensor | np.ndarray,
    Y: torch.Tensor | np.ndarray,
    costs: Sequence[float] = COSTS,
    *,
    folds: int = 3,
    pos_weight: float = 2.0,
    device: str | torch.device | None = None,
    **solver_kw: object,
) -> np.ndarray:
    """Mean cross-validated average precision (C, K) per class and cost, with the folds of cross_val_score(cv=folds).

    Samples labelled 0 for a class are left out of that class; the score is sklearn's average_precision_score
    on the decision values, as ``cross_val_score(..., scoring='average_precision')``.
    """
    return _protocol(X, Y, costs, folds, pos_weight, device, None, solver_kw, "cross_validate")[0]


def cross_validate_and_train(
    X: torch.Tensor | np.ndarray,
    Y: torch.Tensor | np.ndarray,
    costs: Sequence[float] = COSTS,
    *,
    folds: int = 3,
    pos_weight: float = 2.0,
    device: str | torch.device | None = None,
    refit: str = "all",
    **solver_kw: object,
) -> tuple[np.ndarray, SVMSolution]:
    """``cross_validate`` and ``train_svms`` on the same data, sharing one kernel (the whole protocol's fits).

    refit='chosen' fits each class only at its best CV cost (an SVMSolution with one cost column; the cost is
    ``select_costs``' choice), starting from the active sets the folds' fits predict; refit='all' fits every cost.
    """
    if refit not in ("chosen", "all"):
        raise ValueError(f"cross_validate_and_train: refit must be 'chosen' or 'all', got {refit!r}")
    cv_ap, solution = _protocol(X, Y, costs, folds, pos_weight, device, refit, solver_kw, "cross_validate_and_train")
    assert solution is not None
    return cv_ap, solution


def _protocol(
    X: torch.Tensor | np.ndarray, Y: torch.Tensor | np.ndarray, costs: Sequence[float], folds: int,
    pos_weight: float, device: str | torch.device | None, refit: str | None, solver_kw: dict[str, object], where: str,
) -> tuple[np.ndarray, SVMSolution | None]:  # fmt: skip
    """CV AP of every class and cost and (unless refit is None) the refit; the folds in parallel threads."""
    tol, max_iter = _solver_options(solver_kw, where)
    X, Yn = _cv_inputs(X, Y, costs, folds, pos_weight, device)
    workers = workers_for(X.device)
    with single_threaded_torch(X.device.type == "cpu"):
        if not _uses_kernel(len(X)):
            cv_ap, problem = primal.cross_validate(X, Yn, costs, folds, pos_weight, tol, max_iter, workers)
            if refit is None:
                return cv_ap, None
            Y_t = torch.as_tensor(Yn, device=X.device)
            if refit == "all":
                return cv_ap, primal.train(X, Y_t, costs, pos_weight, tol, max_iter, workers)
            chosen = [costs[k] for k in select_costs(cv_ap, costs)]
            return cv_ap, primal.train_each(X, Y_t, chosen, pos_weight, tol, max_iter, problem)
        K_full = kernel(X, workers)
        cv_ap, fits = _cv_on_kernel(X, K_full, Yn, costs, folds, pos_weight, tol, max_iter, workers)
        if refit is None:
            return cv_ap, None
        Y_t = torch.as_tensor(Yn, device=X.device)
        if refit == "all":
            return cv_ap, _fit_on_kernel(X, Y_t, K_full, costs, tol, max_iter, pos_weight)
        best = select_costs(cv_ap, costs)
        rows = _kernel_rows(Y_t)
        guess = _refit_guess(X, K_full, Y_t, fits, best)[rows]
        beta, n_iter = solve_each(
            _sub_kernel(K_full, rows),
            Y_t[rows],
            [costs[k] for k in best],
            pos_weight,
            tol,
            max_iter,
            guess,
            workers,
            X[rows],
        )
        return cv_ap, _solution(X[rows], beta[:, :, None], n_iter[:, None])


def select_costs(cv_ap: np.ndarray, costs: Sequence[float]) -> np.ndarray:
    """Index of the best cost per class (the first maximum of the mean CV AP, as np.argmax)."""
    cv_ap = np.asarray(cv_ap)
    if cv_ap.ndim != 2 or cv_ap.shape[1] != len(costs):
        raise ValueError(f"select_costs: expected cv_ap of shape (C, {len(costs)}), got {cv_ap.shape}")
    return np.argmax(cv_ap, axis=1)
