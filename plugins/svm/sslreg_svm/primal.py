"""The feature-space (primal) path, for training sets whose N x N kernel would not fit in memory (COCO: 118k rows).

The same problem as the sample-space path (LinearSVC's, the bias regularised as an appended feature 1), in
w in R^(D+1): min 0.5 |w|^2 + C sum_i c_i max(0, 1 - y_i x~_i.w)^2, x~ = [x, 1]. The rows are first rotated into
the eigenbasis V of G = X~^T X~ (z = V^T x~, w' = V^T w: the same problem, |w'| = |w|), where the Hessian
I + 2 C sum_A c_i z_i z_i^T is nearly diagonal. All classes of one training set advance together: a Newton step
solves the Hessian system by conjugate gradients whose products are two matrix products over the rows for all
classes at once, preconditioned by the Hessian's exact diagonal (one more pass), then an exact line search. Rows
are visited in chunks: memory stays at the rotated rows (float32) plus a few N x C matrices; the kernel path's
N x N never appears.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from sslreg_svm import linalg
from sslreg_svm.metrics import average_precision, fold_assignment
from sslreg_svm.newton import LOOSE_STEPS, LOOSE_TOL, line_search
from sslreg_svm.parallel import thread_map

CHUNK = 8192  # rows per matrix product
CG_MAX_ITER = 500
#: Cross-validation folds are solved together, as one path over their columns side by side, while the n x columns
#: matrices stay within this many entries: wider products, one path instead of one per fold (measured: 13,000 x 512,
#: 20 classes, 3 folds on one thread, 85.5 -> 59.9 s, the same CV AP). A COCO-size set (118k rows x 80 classes)
#: takes its folds one at a time: batched they would need about 5 GB more.
BATCH_ENTRIES = 4_000_000


@dataclass
class PrimalProblem:
    """One training set in G's eigenbasis: rotated float32 rows, the rotation, and the labels per class."""

    Z: torch.Tensor  # (n, D+1) float32: the rows x~ = [x, 1] rotated, z = V^T x~ (they define the problem solved)
    V: torch.Tensor  # (D+1, D+1) float64: w = V w'
    pos_weight: float
    workers: int = 1  # threads sharing the row chunks
    y: torch.Tensor | None = None  # (n, J) float64 in {1, -1, 0 = ignored}
    cw: torch.Tensor | None = None  # (n, J) class weight, 0 where ignored

    @classmethod
    def build(cls, X32: torch.Tensor, pos_weight: float, workers: int = 1) -> PrimalProblem:
        """The problem of float32 rows X32 (labels set with ``with_labels``): G, its eigenbasis, the rotated rows."""
        n, dim = X32.shape[0], X32.shape[1] + 1
        problem = cls(torch.empty(n, dim, dtype=torch.float32, device=X32.device), torch.empty(0), pos_weight, workers)

        def gram(start: int, stop: int) -> torch.Tensor:
            rows = _augment(X32[start:stop]).double()
            return rows.T @ rows

        V = torch.linalg.eigh(sum(problem._map(gram)))[1]

        def rotate(start: int, stop: int) -> None:
            problem.Z[start:stop] = (_augment(X32[start:stop]).double() @ V).float()

        problem._map(rotate)
        return replace(problem, V=V)

    def with_labels(self, Y: torch.Tensor) -> PrimalProblem:
        """The same rows with labels Y (n, J) in {1, -1, 0}."""
        y = Y.to(torch.float64)
        cw = torch.where(Y == 1, self.pos_weight, 1.0).to(torch.float64) * (Y != 0)
        return replace(self, y=y, cw=cw)

    def _map(self, fn: Callable[[int, int], object]) -> list:
        """fn(start, stop) over the row chunks, split among the threads."""
        chunks = [(start, min(start + CHUNK, len(self.Z))) for start in range(0, len(self.Z), CHUNK)]
        shares = [chunks[i :: self.workers] for i in range(min(self.workers, len(chunks)))]
        return [out for share in thread_map(lambda part: [fn(*c) for c in part], shares, self.workers) for out in share]

    def forward(self, W: torch.Tensor) -> torch.Tensor:
        """Z W (n, J) in float64 (chunks of the float32 rows promoted)."""
        out = torch.empty(len(self.Z), W.shape[1], dtype=torch.float64, device=W.device)

        def rows(start: int, stop: int) -> None:
            out[start:stop] = linalg.narrow_product(self.Z[start:stop].double(), W)

        self._map(rows)
        return out

    def backward(self, U: torch.Tensor) -> torch.Tensor:
        """Z^T U (D+1, J) in float64 for U (n, J)."""
        return sum(self._map(lambda start, stop: linalg.narrow_product(self.Z[start:stop].double().T, U[start:stop])))

    def hessian_product(self, V: torch.Tensor, M: torch.Tensor, cost: float) -> torch.Tensor:
        """(I + 2 C Z^T diag(M_j) Z) v_j for every column, in the dtype of V (float32 or float64 products)."""
        weight = (2.0 * cost * M).to(V.dtype)

        def rows(start: int, stop: int) -> torch.Tensor:
            chunk = self.Z[start:stop].to(V.dtype)
            return linalg.narrow_product(chunk.T, linalg.narrow_product(chunk, V) * weight[start:stop])

        return V + sum(self._map(rows))

    def preconditioner(self, M: torch.Tensor, cost: float) -> linalg.Operator:
        """The inverse of the Hessian's diagonal per column (float32): 1 / (1 + 2 C sum_i M_ij z_ik^2)."""
        M32 = M.float()
        diagonal = sum(
            self._map(lambda start, stop: linalg.narrow_product(self.Z[start:stop].square().T, M32[start:stop]))
        )
        scale = 1.0 / (1.0 + 2.0 * cost * diagonal)
        return lambda r: scale * r


def _augment(rows: torch.Tensor) -> torch.Tensor:
    return torch.cat([rows, torch.ones(len(rows), 1, dtype=rows.dtype, device=rows.device)], 1)


def _newton(
    problem: PrimalProblem, cols: torch.Tensor, cost: float, W: torch.Tensor, F: torch.Tensor, tol: float,
    max_iter: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """Newton-CG iterations at one cost for the columns ``cols`` from (W, F = X~ W); returns W, F, iterations."""
    y, cw = problem.y[:, cols], problem.cw[:, cols]
    used, ccw = cw > 0, cost * cw
    W, F = W.clone(), F.clone()
    n_iter = torch.full((len(cols),), max_iter, dtype=torch.long)
    live = torch.arange(len(cols), device=cols.device)
    tight = torch.zeros(len(cols), dtype=torch.bool, device=cols.device)
    for it in range(1, max_iter + 1):
        yl, Fl, Wl, ccwl = y[:, live], F[:, live], W[:, live], ccw[:, live]
        slack = (1.0 - yl * Fl).clamp_min(0) * used[:, live]
        active = slack > 0
        grad = Wl - 2.0 * problem.backward(ccwl * slack * yl)
        M = cw[:, live] * active
        precond = problem.preconditioner(M, cost)

        def hess(v: torch.Tensor, M: torch.Tensor = M) -> torch.Tensor:
            return problem.hessian_product(v, M, cost)

        # float32 CG, inexact Newton: 1e-3 until the active set settles, then CG_INNER_TOL
        loose_tol = torch.where(tight, linalg.CG_INNER_TOL, LOOSE_TOL).to(torch.float64)
        every = torch.ones_like(tight)
        d, solved, _ = linalg.mixed_cg(
            hess, hess, precond, -grad, torch.zeros_like(grad), every, CG_MAX_ITER, loose_tol
        )
        dF = problem.forward(d)
        target_active = used[:, live] & (yl * (Fl + dF) < 1)
        reaches = solved & (target_active == active).all(0)
        final = tight
        exact = reaches & final
        # line search in the kernel path's terms: f.d -> w.d and df.d -> d.d (same piecewise quadratic)
        t = torch.ones(len(live), dtype=torch.float64, device=W.device)
        search = (~exact).nonzero().squeeze(1)
        if len(search):
            t[search] = _line_search(Wl[:, search], d[:, search], Fl[:, search], dF[:, search], yl[:, search],
                                     ccwl[:, search])  # fmt: skip
        W[:, live] = Wl + t * d
        F[:, live] = Fl + t * dF
        finished = exact | (final & (t == 0))
        check = (~finished & (tight | (it >= LOOSE_STEPS))).nonzero()
        if len(check):
            check = check.squeeze(1)
            finished[check] = _spread(problem, cols[live[check]], cost, F[:, live[check]]) <= tol
        n_iter[live[finished].cpu()] = it
        tight = (reaches | (it >= LOOSE_STEPS) | tight)[~finished]
        live = live[~finished]
        if len(live) == 0:
            break
    return W, F, n_iter


def _line_search(
    W: torch.Tensor, d: torch.Tensor, F: torch.Tensor, dF: torch.Tensor, y: torch.Tensor, ccw: torch.Tensor
) -> torch.Tensor:
    """The kernel path's exact line search with the primal's inner products: phi'(t) = w.d + t d.d - 2 sum ..."""
    # line_search uses (f.d, df.d) as the regulariser's derivative terms; feed them through one augmented row
    reg_f = torch.cat([F, W], 0)
    reg_df = torch.cat([dF, d], 0)
    reg_d = torch.cat([torch.zeros_like(F), d], 0)
    reg_y = torch.cat([y, torch.zeros_like(W)], 0)
    reg_ccw = torch.cat([ccw, torch.zeros_like(W)], 0)
    # with d = 0 on the first n rows and (f, df) = (w, d) on the others: f.d = w.d and df.d = d.d;
    # the loss terms only see the first n rows, where ccw is set
    return line_search(reg_f, reg_d, reg_df, reg_y, reg_ccw)


def _spread(problem: PrimalProblem, cols: torch.Tensor, cost: float, F: torch.Tensor) -> torch.Tensor:
    """liblinear's stopping quantity at alpha = 2 C c slack: spread of the projected dual gradient."""
    y, cw = problem.y[:, cols], problem.cw[:, cols]
    used = cw > 0
    slack = (1.0 - y * F).clamp_min(0) * used
    alpha_y = 2.0 * cost * cw * slack * y
    f_alpha = problem.forward(problem.backward(alpha_y))
    grad = y * f_alpha - 1.0 + slack
    projected = torch.where(slack > 0, grad, grad.clamp_max(0))
    big = torch.finfo(F.dtype).max
    return torch.where(used, projected, -big).amax(0) - torch.where(used, projected, big).amin(0)


def solve_path(
    problem: PrimalProblem, costs: Sequence[float], tol: float, max_iter: int, stop_after: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (D+1, J, len(costs)) of every class along the costs in increasing order, warm-started; iterations.

    stop_after[j]: the last cost index class j needs (it leaves the path after it; its later columns stay 0).
    """
    dim, n_classes = problem.Z.shape[1], problem.y.shape[1]
    dev = problem.Z.device
    order = np.argsort(np.asarray(costs, dtype=np.float64), kind="stable")
    W_out = torch.zeros(dim, n_classes, len(costs), dtype=torch.float64, device=dev)
    n_iter = torch.zeros(n_classes, len(costs), dtype=torch.long)
    W = torch.zeros(dim, n_classes, dtype=torch.float64, device=dev)
    F = torch.zeros(len(problem.Z), n_classes, dtype=torch.float64, device=dev)
    rank = {int(k): position for position, k in enumerate(order)}
    for position, k in enumerate(order.tolist()):
        wanted = [j for j in range(n_classes) if stop_after is None or rank[int(stop_after[j])] >= position]
        if not wanted:
            break
        cols = torch.tensor(wanted, device=dev)
        W[:, cols], F[:, cols], its = _newton(problem, cols, float(costs[k]), W[:, cols], F[:, cols], tol, max_iter)
        W_out[:, cols, k] = W[:, cols]
        n_iter[cols.cpu(), k] = its
    return W_out, n_iter


def _solution(problem: PrimalProblem, W: torch.Tensor, n_iter: torch.Tensor):  # -> SVMSolution
    """Weights w = V w' and bias of rotated weights W (D+1, J, K)."""
    from sslreg_svm.solver import SVMSolution

    dim, n_classes, n_costs = W.shape
    W = (problem.V @ W.reshape(dim, -1)).reshape(dim, n_classes, n_costs)
    return SVMSolution(weights=W[:-1].permute(1, 2, 0).contiguous(), bias=W[-1].contiguous(), n_iter=n_iter)


def _problem(X: torch.Tensor, pos_weight: float, workers: int) -> PrimalProblem:
    return PrimalProblem.build(X if X.dtype == torch.float32 else X.float(), pos_weight, workers)


def train(
    X: torch.Tensor, Y: torch.Tensor, costs: Sequence[float], pos_weight: float, tol: float, max_iter: int,
    workers: int = 1,
):  # fmt: skip
    """train_svms in feature space: every class at every cost, exactly (for the float32 features)."""
    problem = _problem(X, pos_weight, workers).with_labels(Y)
    W, n_iter = solve_path(problem, costs, tol, max_iter)
    return _solution(problem, W, n_iter)


def train_each(
    X: torch.Tensor, Y: torch.Tensor, class_costs: Sequence[float], pos_weight: float, tol: float, max_iter: int,
    problem: PrimalProblem | None = None, workers: int = 1,
):  # fmt: skip
    """Each class at its own cost, exactly (a solution with one cost column); ``problem``: X's, if built already."""
    distinct = sorted(set(class_costs))
    problem = (problem or _problem(X, pos_weight, workers)).with_labels(Y)
    stop = np.array([distinct.index(c) for c in class_costs])
    W, n_iter = solve_path(problem, distinct, tol, max_iter, stop)
    columns = torch.as_tensor(stop)
    rows = torch.arange(len(class_costs))
    return _solution(problem, W[:, rows, columns][:, :, None], n_iter[rows, columns][:, None])


def cross_validate(
    X: torch.Tensor, Yn: np.ndarray, costs: Sequence[float], folds: int, pos_weight: float, tol: float,
    max_iter: int, workers: int = 1,
) -> tuple[np.ndarray, PrimalProblem]:  # fmt: skip
    """Mean CV AP (C, K) in feature space, each fold masking its test rows per class (labels set to 0).

    The folds' systems are solved to float32 accuracy, as the kernel path's. Also returns the problem (for a refit).
    """
    n_classes = Yn.shape[1]
    fold_of = fold_assignment(Yn, folds)
    cv_ap = np.zeros((n_classes, len(costs)))
    base = _problem(X, pos_weight, workers)
    together = max(1, BATCH_ENTRIES // (len(Yn) * n_classes))
    for first in range(0, folds, together):
        batch = list(range(first, min(first + together, folds)))
        masked = np.concatenate([np.where(fold_of != f, Yn, 0) for f in batch], 1)
        W, _ = solve_path(base.with_labels(torch.as_tensor(masked, device=X.device)), costs, tol, max_iter)
        for position, f in enumerate(batch):
            for j in range(n_classes):
                test = np.flatnonzero(fold_of[:, j] == f)
                weights = W[:, position * n_classes + j, :]
                rows = torch.as_tensor(test, device=X.device).split(CHUNK)  # a COCO fold's rows: 0.65 GB in float64
                scores = torch.cat([base.Z[part].double() @ weights for part in rows]).cpu().numpy()
                for k in range(len(costs)):
                    cv_ap[j, k] += average_precision(Yn[test, j], scores[:, k]) / folds
    return cv_ap, base
