"""The cost path of one training set in the sample space: every class and cost, warm-started in increasing cost.

While every sample violates the margin (small costs) the SVM is a weighted ridge regression whose optimum solves
one linear system; all classes still in that regime are solved together by preconditioned CG, warm-started from
the previous cost's solution scaled by the cost ratio (the solution is nearly linear in C there). A class whose
ridge solution leaves a sample inside the margin switches to Newton iterations (sslreg_svm.newton), which start
from the previous cost's optimum along the ridge direction, and stays there for the larger costs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from sslreg_svm.newton import KernelProblem, cg_targets, line_search, newton, step_targets
from sslreg_svm.parallel import thread_map


def solve_path(
    K: torch.Tensor,
    Y: torch.Tensor,
    costs: Sequence[float],
    pos_weight: float,
    tol: float,
    max_iter: int,
    exact: bool = True,
    X: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel coefficients beta (n, J, len(costs)) of every class and cost, and Newton iterations (J, len(costs)).

    K = X X^T + 1 in float64; Y (n, J) in {1, -1, 0 = ignored}. Iterations 0: solved as a ridge regression.
    exact=False solves every system to float32 accuracy only (relative residual ~1e-6, no float64 product).
    X: the features, for the kernel products when they are cheaper (KernelProblem.build).
    """
    problem = KernelProblem.build(K, Y, pos_weight, exact, X)
    n, n_classes = Y.shape
    dev = K.device
    order = np.argsort(np.asarray(costs, dtype=np.float64), kind="stable")
    beta_out = torch.zeros(n, n_classes, len(costs), dtype=K.dtype, device=dev)
    n_iter = torch.zeros(n_classes, len(costs), dtype=torch.long)
    beta = torch.zeros(n, n_classes, dtype=K.dtype, device=dev)
    f = torch.zeros_like(beta)
    ridge = torch.ones(n_classes, dtype=torch.bool, device=dev)
    used = problem.cw > 0
    prev_cost = None
    for k in order.tolist():
        cost = float(costs[k])
        cols = ridge.nonzero().squeeze(1)
        if len(cols):
            start = beta[:, cols] * (cost / prev_cost if prev_cost else 0.0)
            s = problem.cw[:, cols]
            loose = torch.full((len(cols),), not exact, dtype=torch.bool, device=dev)
            b, ok = cg_targets(problem, cols, cost, s, start, loose)
            fb = problem.product(b)
            # every valid sample active <=> y_i f_i < 1 <=> y_i beta_i > 0 (f = y - beta / (2 C c) on valid rows)
            stays = ok & ((problem.y[:, cols] * b > 0) | ~used[:, cols]).all(0)
            leaves = ok & ~stays
            if bool(leaves.any()):  # a Newton step from the previous optimum towards this ridge solution
                lc = cols[leaves]
                d, df = b[:, leaves] - beta[:, lc], fb[:, leaves] - f[:, lc]
                t = line_search(f[:, lc], d, df, problem.y[:, lc], cost * problem.cw[:, lc])
                b[:, leaves], fb[:, leaves] = beta[:, lc] + t * d, f[:, lc] + t * df
            moved = stays | leaves
            beta[:, cols[moved]], f[:, cols[moved]] = b[:, moved], fb[:, moved]
            ridge[cols[~stays]] = False
            beta_out[:, cols[stays], k] = b[:, stays]
        prev_cost = cost
        cols = (~ridge).nonzero().squeeze(1)
        if len(cols):
            b, fb, its = newton(problem, cols, cost, beta[:, cols], f[:, cols], tol, max_iter)
            beta[:, cols], f[:, cols] = b, fb
            beta_out[:, cols, k] = b
            n_iter[cols.cpu(), k] = its
    return beta_out, n_iter


def solve_each(
    K: torch.Tensor,
    Y: torch.Tensor,
    class_costs: Sequence[float],
    pos_weight: float,
    tol: float,
    max_iter: int,
    guess: torch.Tensor | None = None,
    workers: int = 1,
    X: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel coefficients beta (n, J) of each class j at its own cost class_costs[j], exactly; Newton iterations.

    ``guess`` (n, J): a predicted active set per class (e.g. from the cross-validation fits at that cost). The first
    Newton step solves that active set's system directly, so that a good guess leaves only a step or two. The
    classes are split into ``workers`` groups of about equal size, solved in parallel threads (one group per cost
    and thread at most).
    """
    problem = KernelProblem.build(K, Y, pos_weight, True, X)
    n, n_classes = Y.shape
    beta = torch.zeros(n, n_classes, dtype=K.dtype, device=K.device)
    n_iter = torch.zeros(n_classes, dtype=torch.long)
    costs = np.asarray(class_costs, dtype=np.float64)
    order = np.argsort(costs, kind="stable")  # classes of one cost together, then cut into equal groups
    groups = [part for part in np.array_split(order, max(1, min(workers, n_classes))) if len(part)]

    def solve(group: np.ndarray) -> None:
        for cost in np.unique(costs[group]).tolist():
            cols = torch.as_tensor(group[costs[group] == cost], device=K.device)
            b = torch.zeros(n, len(cols), dtype=K.dtype, device=K.device)
            f = torch.zeros_like(b)
            if guess is not None:
                active = guess[:, cols] & (problem.cw[:, cols] > 0)
                none = torch.zeros(len(cols), dtype=torch.bool, device=K.device)
                b, f, _, _ = step_targets(problem, cols, cost, active, b, ~none, none)
            b, _, its = newton(problem, cols, cost, b, f, tol, max_iter)
            beta[:, cols], n_iter[cols.cpu()] = b, its

    thread_map(solve, groups, workers)
    return beta, n_iter
