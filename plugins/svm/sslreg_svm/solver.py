"""Fast exact solver of the VOC07 linear-SVM protocol: all classes and costs of LinearSVC's problem at once.

Each (class, cost) problem is scikit-learn's ``LinearSVC(C=cost, class_weight={1: w, -1: 1}, loss='squared_hinge',
dual=True, intercept_scaling=1)``, i.e. (liblinear regularises the bias through an appended constant feature 1)

    min_{w,b}  0.5 (||w||^2 + b^2) + C sum_i c_i max(0, 1 - y_i (w.x_i + b))^2 .

We solve it in the sample space (the kernel trick, w = sum_i beta_i x_i, b = sum_i beta_i): the kernel
K = X X^T + 1 is computed once and every class, cost and cross-validation fold uses a sub-block of it. Costs are
walked in increasing order (warm starts along the path). Two exact steps:

* while every training sample violates the margin (small costs: the problem is a weighted ridge regression), the
  optimum solves one linear system; we solve it for all classes at once by conjugate gradients, preconditioned
  per class by the exact (Woodbury) inverse of diag(1 / (2 C c)) + U diag(lam) U^T, with (lam, U) the top-k
  kernel eigenpairs from seeded randomized subspace iteration (O(n^2 k), not a full O(n^3) eigendecomposition,
  which alone took ~90 s per 5011-sample kernel on 2 cores); the CG's kernel products are float32 (memory-bound
  at VOC size), refined to float64 accuracy with float64 residuals;
* otherwise the primal semismooth Newton method of Keerthi & DeCoste / Chapelle: solve the active-set system
  (K_AA + diag(1 / (2 C c_A))) beta_A = y_A, exact line search on the piecewise-quadratic objective, until the
  active set is stable (then the solution is exact) or liblinear's own stopping rule (dual projected-gradient
  spread <= tol) holds. Where the preconditioned condition number is small (moderate costs; see _cg_pays_off)
  all classes' active-set systems are solved together by the same CG (one matrix-matrix product per step,
  Woodbury preconditioner per class), the early steps only to float32 accuracy (inexact Newton: a loose step
  still decreases the objective through the line search; the last one is solved to float64 accuracy and is exact
  when its target keeps the active set); at large costs each class factorises its (smaller) active set instead
  (float32 Cholesky refined to float64 accuracy, downdated when samples leave), classes in parallel threads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

COSTS: tuple[float, ...] = (
    1e-7,
    1e-6,
    1e-5,
    1e-4,
    1e-3,
    1e-2,
    0.1,
    1.0,
    10.0,
    100.0,
) + tuple(0.5**k for k in range(4, 20))

_PCG_TOL = 1e-11  # relative residual of the conjugate-gradient solves
_PCG_INNER_TOL = 1e-6  # relative residual of the float32-operator CG inside the float64 refinement
_REFINE_ROUNDS = 8  # float64 refinement rounds of the mixed-precision CG
_PCG_MAX_ITER = 1000  # CG steps of one batched Newton step before falling back to Cholesky
_REFINE_TOL = 1e-12  # relative residual of the refined float32-Cholesky solves
# Newton steps solved loosely at most, before every later step is solved exactly
_LOOSE_NEWTON_STEPS = 6
_PRECOND_RANK = 128  # kernel eigenpairs in the all-active CG preconditioner


def l2_normalize(x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Divide each row by (its L2 norm + 1e-5), in float64, as the reference's ``normalize_features``."""
    if isinstance(x, torch.Tensor):
        x = x.to(torch.float64)
        return x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + 1e-5)
    x = np.asarray(x, dtype=np.float64)
    return x / (np.linalg.norm(x, axis=1) + 1e-5)[:, None]


@dataclass
class SVMSolution:
    """Linear SVMs for C classes x K costs: score = X @ weights[c, k] + bias[c, k]."""

    weights: torch.Tensor  # (C, K, D)
    bias: torch.Tensor  # (C, K)
    n_iter: torch.Tensor | None = None  # (C, K) Newton iterations (0 = solved by the all-active CG step)

    def decision(self, X: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Decision values (N, C, K) of every class and cost on the rows of X."""
        X = _as_tensor(X, self.weights.device).to(self.weights.dtype)
        n_classes, n_costs, dim = self.weights.shape
        if X.ndim != 2 or X.shape[1] != dim:
            raise ValueError(f"SVMSolution.decision: expected features of shape (N, {dim}), got {tuple(X.shape)}")
        scores = X @ self.weights.reshape(n_classes * n_costs, dim).T + self.bias.reshape(1, -1)
        return scores.reshape(X.shape[0], n_classes, n_costs)


def _as_tensor(x: torch.Tensor | np.ndarray, device: torch.device | None) -> torch.Tensor:
    return torch.as_tensor(
        np.asarray(x) if not isinstance(x, torch.Tensor) else x,
        dtype=torch.float64,
        device=device,
    )


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


def _top_eigenpairs(K: torch.Tensor, k: int, iters: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Approximate top-k eigenpairs (ascending) of the PSD kernel by seeded randomized subspace iteration.

    Used only as a preconditioner, so float32 and a few power iterations suffice; costs O(n^2 k), not eigh's O(n^3).
    """
    n = K.shape[0]
    p = min(n, k + 16)
    Kf = K.float()
    gen = torch.Generator(device=K.device).manual_seed(0)
    Q = torch.randn(n, p, generator=gen, dtype=torch.float32, device=K.device)
    for _ in range(iters):
        Q = torch.linalg.qr(Kf @ Q).Q
    lam, V = torch.linalg.eigh(Q.T @ Kf @ Q)
    keep = min(k, p)
    return lam[-keep:].clamp_min(0).to(K.dtype), (Q @ V[:, -keep:]).to(K.dtype)


def _woodbury_gram(U: torch.Tensor, UtU: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """U^T diag(s) U from the fewer of the rows with s != 0 or with s != 1 (U^T U is given).

    s is 0 (inactive), 1 (active negative) or the positive weight, so whichever set is smaller (the active rows at
    large costs, the positives while every sample is active) gives the same Gram matrix at a fraction of the cost.
    It stays float64: at large costs the Woodbury correction cancels most of its input.
    """
    nonzero, not_one = s != 0, s != 1
    if int(nonzero.sum()) <= int(not_one.sum()):
        rows = nonzero.nonzero().squeeze(1)
        Ur = U[rows]
        return (Ur * s[rows, None]).T @ Ur
    rows = not_one.nonzero().squeeze(1)
    Ur = U[rows]
    return UtU + (Ur * (s[rows, None] - 1.0)).T @ Ur


def _pcg_all_active(
    K: torch.Tensor,
    lam: torch.Tensor,
    U: torch.Tensor,
    cw: torch.Tensor,
    y: torch.Tensor,
    cost: float,
    beta0: torch.Tensor,
    max_iter: int,
    K32: torch.Tensor | None = None,
    loose: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Solve (K_AA + diag(1 / (2C cw_A))) beta_A = y_A, beta = 0 elsewhere, for every column (A: rows with cw > 0).

    With A the active set this is a Newton step of the SVM; with every valid sample active it is the optimum
    of the weighted ridge regression the SVM reduces to at small costs. Conjugate gradients on all columns at
    once, preconditioned by the exact inverse (Woodbury, a k x k Cholesky per column) of
    diag(1 / (2C cw_A)) + U_A diag(lam) U_A^T, with (lam, U) the top-k kernel eigenpairs, so only the kernel's
    tail spectrum (<= lam_{k+1}) slows it down. With K32 the CG runs on the float32 kernel and float64 residuals
    refine it to 1e-11; columns flagged ``loose`` stop after the first float32 round (a relative residual of
    ~1e-6, enough for a Newton step that is not the last). Returns beta, a per-column convergence flag, the
    CG iterations.
    """
    active = cw > 0
    mask = active.to(K.dtype)
    w = mask * (2.0 * cost) * cw  # inverse of the diagonal on active rows, 0 elsewhere
    lam_inv = 1.0 / lam.clamp_min(1e-12 * float(lam.max().clamp_min(1e-300)))
    UtU, s = U.T @ U, mask * cw
    G = torch.stack([_woodbury_gram(U, UtU, s[:, j]) for j in range(s.shape[1])])
    G *= 2.0 * cost
    G.diagonal(dim1=1, dim2=2).add_(lam_inv)
    G_chol, info = torch.linalg.cholesky_ex(G)
    if bool((info != 0).any()):  # numerically indefinite (cannot happen for lam > 0): diagonal preconditioner
        G_chol = None

    diag = torch.where(active, 1.0 / (2.0 * cost * cw.clamp_min(1e-300)), 1.0)

    def hess(v: torch.Tensor) -> torch.Tensor:
        return mask * (K @ (mask * v)) + diag * v

    def hess32(
        v: torch.Tensor,
    ) -> torch.Tensor:  # float32 kernel product: half the memory traffic
        return mask * (K32 @ (mask * v).float()).to(v.dtype) + diag * v

    def precond(r: torch.Tensor) -> torch.Tensor:
        wr = w * r
        out = wr + (1.0 - mask) * r
        if G_chol is not None:
            low = torch.cholesky_solve((U.T @ wr).T.unsqueeze(-1), G_chol).squeeze(-1).T
            out = out - w * (U @ low)
        return out

    b = mask * y
    bnorm = torch.linalg.vector_norm(b, dim=0).clamp_min(1e-300)
    beta = beta0 * mask
    if K32 is None:
        return _cg(hess, precond, b, beta, _PCG_TOL * bnorm, max_iter)
    loose = torch.zeros(b.shape[1], dtype=torch.bool, device=b.device) if loose is None else loose
    if bool(loose.all()):  # one float32 round, no float64 kernel product at all
        r = b - hess32(beta)
        step, done, it = _cg(hess32, precond, r, torch.zeros_like(r), _PCG_INNER_TOL * bnorm, max_iter)
        return beta + step, done, it
    # mixed precision: CG on the float32 operator to a loose tolerance, refined with float64 residuals
    total = 0
    for rounds in range(_REFINE_ROUNDS):
        r = b - hess(beta)
        rnorm = torch.linalg.vector_norm(r, dim=0)
        done = (rnorm <= _PCG_TOL * bnorm) | (loose & (rounds > 0))
        if bool(done.all()) or total >= max_iter:
            break
        step, _, it = _cg(
            hess32,
            precond,
            r * ~done,
            torch.zeros_like(r),
            _PCG_INNER_TOL * rnorm,
            max_iter - total,
        )
        beta += step
        total += it
    else:
        rnorm = torch.linalg.vector_norm(b - hess(beta), dim=0)
        done = (rnorm <= _PCG_TOL * bnorm) | loose
    return beta, done, total


def _cg(
    hess: Callable[[torch.Tensor], torch.Tensor],
    precond: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    x: torch.Tensor,
    atol: torch.Tensor,
    max_iter: int,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Preconditioned conjugate gradients on every column of b, until each residual norm <= its atol."""
    x = x.clone()
    r = b - hess(x)
    s = precond(r)
    p = s.clone()
    rs = (r * s).sum(0)
    done = torch.linalg.vector_norm(r, dim=0) <= atol
    it = 0
    while not bool(done.all()) and it < max_iter:
        it += 1
        hp = hess(p)
        alpha = torch.where(done, torch.zeros_like(rs), rs / (p * hp).sum(0).clamp_min(1e-300))
        x += alpha * p
        r -= alpha * hp
        done = done | (torch.linalg.vector_norm(r, dim=0) <= atol)
        s = precond(r)
        rs_new = (r * s).sum(0)
        p = s + (rs_new / rs.clamp_min(1e-300)) * p
        rs = rs_new
    return x, done, it


def _line_search(
    f: torch.Tensor,
    d: torch.Tensor,
    df: torch.Tensor,
    y: torch.Tensor,
    ccw: torch.Tensor,
) -> float:
    """Exact minimiser t >= 0 of the convex piecewise quadratic objective along beta + t d (1-D Newton)."""
    fd, dd = float(f @ d), float(df @ d)
    ydf = y * df
    slack0 = 1.0 - y * f
    t = 1.0
    for _ in range(100):
        slack = slack0 - t * ydf
        on = slack > 0
        grad = fd + t * dd - 2.0 * float((ccw * ydf * slack.clamp_min(0)).sum())
        curv = dd + 2.0 * float((ccw * df * df * on).sum())
        if curv <= 0:
            break
        t_new = max(t - grad / curv, 0.0)
        if abs(t_new - t) <= 1e-12 * max(1.0, abs(t)):
            t = t_new
            break
        t = t_new
    return t


def _refine(
    system: torch.Tensor,
    rhs: torch.Tensor,
    approx: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor | None:
    """Iterative refinement of ``system x = rhs`` in float64 around an approximate (float32) solver; None if stuck."""
    rhs_norm = float(torch.linalg.vector_norm(rhs))
    x = torch.zeros_like(rhs)
    residual = rhs
    for _ in range(30):  # converges when cond(system) * (error of approx) < 1
        x += approx(residual)
        residual = rhs - system @ x
        if float(torch.linalg.vector_norm(residual)) <= _REFINE_TOL * rhs_norm:
            return x
    return None


def _chol_solver(chol: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda r: torch.cholesky_solve(r.float().reshape(len(r), -1), chol).reshape(r.shape).double()


def _spd_solve(system: torch.Tensor, rhs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Solve an SPD float64 system by float32 Cholesky (twice as fast) refined to float64 accuracy (else float64).

    Also returns the float32 factor (None if it was not usable) for later low-rank downdates.
    """
    chol, info = torch.linalg.cholesky_ex(system.float())
    if int(info) == 0:
        x = _refine(system, rhs, _chol_solver(chol))
        if x is not None:
            return x, chol
    chol, info = torch.linalg.cholesky_ex(system)
    if int(info) == 0:
        return torch.cholesky_solve(rhs.unsqueeze(1), chol).squeeze(1), None
    return torch.linalg.lstsq(system, rhs.unsqueeze(1)).solution.squeeze(1), None  # numerically indefinite


def _downdated_solve(
    system: torch.Tensor,
    rhs: torch.Tensor,
    chol: torch.Tensor,
    keep: torch.Tensor,
    drop: torch.Tensor,
) -> torch.Tensor | None:
    """Solve the sub-system on rows ``keep`` of a factored system without refactoring (few rows ``drop`` removed).

    The sub-system's solution is the factored system's solution under the constraint x_drop = 0 (a Lagrange
    multiplier per dropped row): x = u - W G^-1 u_drop with u = M^-1 v, W = M^-1 E_drop, G = W_drop.
    """
    solve = _chol_solver(chol)
    eye = torch.zeros(chol.shape[0], len(drop), dtype=rhs.dtype, device=rhs.device)
    eye[drop, torch.arange(len(drop), device=rhs.device)] = 1.0
    W = solve(eye)
    G = W[drop]
    G = 0.5 * (G + G.T)

    def approx(r: torch.Tensor) -> torch.Tensor:
        v = torch.zeros(chol.shape[0], dtype=rhs.dtype, device=rhs.device)
        v[keep] = r
        u = solve(v)
        return (u - W @ torch.linalg.solve(G, u[drop]))[keep]

    return _refine(system, rhs, approx)


def _newton(
    K: torch.Tensor,
    y: torch.Tensor,
    cw: torch.Tensor,
    cost: float,
    beta: torch.Tensor,
    f: torch.Tensor,
    tol: float,
    max_iter: int,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Primal semismooth Newton in the sample space for one class and cost, from (beta, f = K beta).

    Converged when a full step keeps the active set (then the step solved the KKT system exactly), or with
    liblinear's own criterion: the dual point alpha_i = 2 C c_i max(0, 1 - y_i f_i) has a projected-gradient
    spread (max - min) of at most ``tol``.
    """
    ccw = cost * cw
    used = cw > 0
    beta, f = beta.clone(), f.clone()
    factored: tuple[torch.Tensor, torch.Tensor] | None = None  # (active indices, float32 Cholesky factor)
    for it in range(1, max_iter + 1):
        active = (cw > 0) & (y * f < 1)
        idx = active.nonzero().squeeze(1)
        target = torch.zeros_like(beta)
        if len(idx):
            system = K[idx.unsqueeze(1), idx]
            system.diagonal().add_(1.0 / (2.0 * ccw[idx]))
            solution = None
            if factored is not None:  # a few samples left the factored active set: downdate instead of refactor
                ref_idx, ref_chol = factored
                in_ref = torch.zeros(len(y), dtype=torch.bool, device=y.device)
                in_ref[ref_idx] = True
                n_drop = len(ref_idx) - len(idx)
                if bool(in_ref[idx].all()) and 0 < n_drop <= max(8, len(ref_idx) // 6):
                    keep = torch.searchsorted(ref_idx, idx)
                    drop = (~active[ref_idx]).nonzero().squeeze(1)
                    solution = _downdated_solve(system, y[idx], ref_chol, keep, drop)
            if solution is None:
                solution, chol = _spd_solve(system, y[idx])
                factored = (idx, chol) if chol is not None else None
            target[idx] = solution
        d = target - beta
        df = K @ target - f
        t = _line_search(f, d, df, y, ccw)
        beta += t * d
        f += t * df
        if abs(t - 1.0) < 1e-9 and bool(torch.equal(active, (cw > 0) & (y * f < 1))):
            return beta, f, it
        slack = (1.0 - y * f).clamp_min(0) * used
        grad = y * (K @ (2.0 * ccw * slack * y)) - 1.0 + slack  # dual gradient at alpha = 2 C c slack
        projected = torch.where(slack > 0, grad, grad.clamp_max(0))[used]
        if float(projected.max() - projected.min()) <= tol:
            return beta, f, it
    return beta, f, max_iter


def _cg_pays_off(lam_tail: float, cost: float, pos_weight: float, n: int) -> bool:
    """Whether batched CG Newton steps beat per-class Cholesky ones at this cost (a flop-count heuristic).

    The preconditioned condition number is about 1 + 2 C pos_weight lam_tail, CG needs ~13 sqrt(kappa) steps
    of 2 n^2 flops per class for 1e-11, a factorisation ~|A|^3 / 3 with |A| ~ n / 2: CG when 13 sqrt(kappa) <= n / 40.
    """
    return 13.0 * (1.0 + 2.0 * cost * pos_weight * lam_tail) ** 0.5 <= n / 40.0


def _newton_batched(
    K: torch.Tensor,
    lam: torch.Tensor,
    U: torch.Tensor,
    y: torch.Tensor,
    cw: torch.Tensor,
    cost: float,
    beta: torch.Tensor,
    f: torch.Tensor,
    tol: float,
    max_iter: int,
    K32: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``_newton`` for all columns (classes) at once, each active-set system solved by the batched CG above.

    The columns share the kernel products (one matrix-matrix product per CG step instead of a Cholesky
    factorisation per class). Inexact Newton: a column's steps are solved loosely (one float32 CG round) until
    one's target keeps the active set (or for _LOOSE_NEWTON_STEPS steps); later steps are solved to 1e-11, and a
    column is done when such a target keeps its active set (the optimum) or its projected gradient spread is
    within tol. Returns beta, f and the Newton iterations per column, -1 where CG did not converge or an exact
    step made no progress (the caller then falls back to the factorising ``_newton`` from the returned point).
    """
    ccw = cost * cw
    used = cw > 0
    beta, f = beta.clone(), f.clone()
    n_iter = torch.zeros(y.shape[1], dtype=torch.long)
    live = torch.arange(y.shape[1], device=K.device)
    # per live column: solve this step exactly (else loosely)
    tight = torch.zeros(y.shape[1], dtype=torch.bool, device=K.device)
    for it in range(1, max_iter + 1):
        yc, cwc, fc, bc = y[:, live], cw[:, live], f[:, live], beta[:, live]
        active = used[:, live] & (yc * fc < 1)
        target, cg_ok, _ = _pcg_all_active(K, lam, U, cwc * active, yc, cost, bc, _PCG_MAX_ITER, K32, loose=~tight)
        d = target - bc
        df = K @ target - fc
        # the step's target solves the problem restricted to the active set, so where the target keeps that set
        # it is the optimum (the gradients agree there): no line search, whose rounding on tiny steps can stall
        reaches = cg_ok & (active == (used[:, live] & (yc * (fc + df) < 1))).all(0)
        exact = reaches & tight
        moved = torch.zeros_like(cg_ok)
        for col in range(len(live)):
            if not bool(cg_ok[col]):
                continue
            t = (
                1.0
                if bool(exact[col])
                else _line_search(fc[:, col], d[:, col], df[:, col], yc[:, col], ccw[:, live[col]])
            )
            bc[:, col] += t * d[:, col]
            fc[:, col] += t * df[:, col]
            moved[col] = t > 0
        beta[:, live], f[:, live] = bc, fc
        slack = (1.0 - yc * fc).clamp_min(0) * used[:, live]
        grad = yc * (K @ (2.0 * ccw[:, live] * slack * yc)) - 1.0 + slack
        projected = torch.where(slack > 0, grad, grad.clamp_max(0))
        big, small = torch.finfo(K.dtype).max, -torch.finfo(K.dtype).max
        spread = torch.where(used[:, live], projected, small).amax(0) - torch.where(used[:, live], projected, big).amin(
            0
        )
        finished = exact | (spread <= tol)
        # CG failed, or an exact step went nowhere
        stalled = ~finished & ~(cg_ok & (moved | ~tight))
        ended = finished | stalled
        n_iter[live[ended].cpu()] = torch.where(stalled, -1, it)[ended].cpu()
        tight = (reaches | (it >= _LOOSE_NEWTON_STEPS))[~ended]
        live = live[~ended]
        if len(live) == 0:
            break
    if len(live):
        n_iter[live.cpu()] = max_iter
    return beta, f, n_iter


def _solve_kernel(
    K: torch.Tensor,
    Y: torch.Tensor,
    costs: Sequence[float],
    pos_weight: float,
    tol: float,
    max_iter: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel coefficients beta (n, C, K) of every class and cost on one training set, and Newton counts (C, K)."""
    n, n_classes = Y.shape
    y = Y.to(K.dtype)
    cw = torch.where(Y == 1, pos_weight, 1.0).to(K.dtype) * (Y != 0)
    order = np.argsort(np.asarray(costs, dtype=np.float64), kind="stable")
    beta = torch.zeros(n, n_classes, len(costs), dtype=K.dtype, device=K.device)
    n_iter = torch.zeros(n_classes, len(costs), dtype=torch.long)
    lam, U = _top_eigenpairs(K, _PRECOND_RANK)
    K32 = K.float()  # the CG steps' kernel products, refined to float64 accuracy
    beta_prev = torch.zeros(n, n_classes, dtype=K.dtype, device=K.device)
    f_prev = torch.zeros(n, n_classes, dtype=K.dtype, device=K.device)
    on_path = list(range(n_classes))
    first_newton = [len(order)] * n_classes  # position in `order` of each class's first Newton cost
    prev_cost = None
    # 1) the all-active CG step, batched over the classes, while its solution keeps every sample active
    for pos_k, k in enumerate(order):
        if not on_path:
            break
        cost, cols = float(costs[k]), torch.tensor(on_path, device=K.device)
        start = beta_prev[:, cols] * (cost / prev_cost if prev_cost else 0.0)  # beta is ~linear in C at small C
        b, conv, _ = _pcg_all_active(K, lam, U, cw[:, cols], y[:, cols], cost, start, max(max_iter, 500), K32)
        prev_cost = cost
        # every valid sample active <=> y_i f_i < 1 <=> y_i beta_i > 0 (f = y - beta / (2 C cw) on valid rows)
        ok = (conv & ((y[:, cols] * b > 0) | (cw[:, cols] == 0)).all(0)).tolist()
        f = K @ b
        for col, j in enumerate(on_path):
            if ok[col]:
                beta_prev[:, j], f_prev[:, j] = b[:, col], f[:, col]
                beta[:, j, k] = b[:, col]
            else:
                first_newton[j] = pos_k
        on_path = [j for col, j in enumerate(on_path) if ok[col]]

    # 2) Newton along the rest of each class's cost path, warm-started, all classes at one cost batched together
    f_cur = f_prev.clone()
    beta_cur = torch.stack(
        [
            beta[:, j, order[first_newton[j] - 1]] if first_newton[j] > 0 else torch.zeros_like(y[:, j])
            for j in range(n_classes)
        ],
        1,
    )
    workers = torch.get_num_threads() if K.device.type == "cpu" else 1
    for pos_k, k in enumerate(order):
        cols = [j for j in range(n_classes) if first_newton[j] <= pos_k]
        if not cols:
            continue
        cost, ct = float(costs[k]), torch.tensor(cols, device=K.device)
        if _cg_pays_off(float(lam[0]), cost, pos_weight, n):
            b, fb, its = _newton_batched(
                K,
                lam,
                U,
                y[:, ct],
                cw[:, ct],
                cost,
                beta_cur[:, ct],
                f_cur[:, ct],
                tol,
                max_iter,
                K32,
            )
        else:
            b, fb = beta_cur[:, ct].clone(), f_cur[:, ct].clone()
            its = torch.full((len(cols),), -1, dtype=torch.long)

        def finish(
            col: int,
            cols: list[int] = cols,
            b: torch.Tensor = b,
            fb: torch.Tensor = fb,
            its: torch.Tensor = its,
            cost: float = cost,
        ) -> None:  # Cholesky-based Newton where CG was not used or did not converge
            j = cols[col]
            if int(its[col]) < 0:
                b[:, col], fb[:, col], its[col] = _newton(
                    K, y[:, j], cw[:, j], cost, b[:, col], fb[:, col], tol, max_iter
                )

        todo = [col for col in range(len(cols)) if int(its[col]) < 0]
        if workers > 1 and len(todo) > 1:
            torch.set_num_threads(1)  # one BLAS thread per class: no fork-join barriers on small, shared cores
            try:
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    list(pool.map(finish, todo))
            finally:
                torch.set_num_threads(workers)
        else:
            for col in todo:
                finish(col)
        for col, j in enumerate(cols):
            beta[:, j, k] = b[:, col]
            n_iter[j, k] = int(its[col])
        beta_cur[:, ct], f_cur[:, ct] = b, fb
    return beta, n_iter


def _resolve_device(device: str | torch.device | None) -> torch.device:
    return torch.device(device) if device is not None else torch.device("cpu")


def _fit_on_kernel(
    X: torch.Tensor,
    Y: torch.Tensor,
    K_full: torch.Tensor | None,
    costs: Sequence[float],
    pos_weight: float,
    tol: float,
    max_iter: int,
) -> SVMSolution:
    """train_svms on checked tensors; K_full (X X^T + 1 of all rows) is reused when given."""
    used = (Y != 0).any(1).nonzero().squeeze(1)
    Xs, Ys = X[used], Y[used]
    if K_full is None:
        K = Xs @ Xs.T + 1.0
    elif len(used) == len(X):
        K = K_full
    else:
        K = K_full[used][:, used]
    beta, n_iter = _solve_kernel(K, Ys, costs, pos_weight, tol, max_iter)
    n_classes, n_costs = Y.shape[1], len(costs)
    flat = beta.reshape(len(used), n_classes * n_costs)
    weights = (Xs.T @ flat).T.reshape(n_classes, n_costs, X.shape[1])
    bias = flat.sum(0).reshape(n_classes, n_costs)
    return SVMSolution(weights=weights, bias=bias, n_iter=n_iter)


def _labels_tensor(Y: torch.Tensor | np.ndarray, dev: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(Y) if not isinstance(Y, torch.Tensor) else Y, device=dev)


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
    dev = _resolve_device(device)
    X, Y = _as_tensor(X, dev), _labels_tensor(Y, dev)
    _check_inputs(X, Y, costs, pos_weight)
    return _fit_on_kernel(X, Y, None, costs, pos_weight, tol, max_iter)


def stratified_folds(labels: np.ndarray, folds: int) -> list[np.ndarray]:
    """Test indices of scikit-learn's StratifiedKFold(folds, shuffle=False) on binary labels (cross_val_score's cv)."""
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=False)
    return [test for _, test in splitter.split(np.zeros(len(labels)), labels)]


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """scikit-learn's ``average_precision_score`` (step-wise, no interpolation) for labels in {1, -1}, vectorised."""
    order = np.argsort(scores, kind="mergesort")[::-1]
    ranked, hits = scores[order], (labels[order] == 1)
    cut = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]  # last index of each distinct score
    tps = np.cumsum(hits)[cut]
    if tps[-1] == 0:
        return 0.0
    precision = tps / (cut + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _solver_options(solver_kw: dict[str, object], where: str) -> tuple[float, int]:
    unknown = set(solver_kw) - {"tol", "max_iter"}
    if unknown:
        raise ValueError(f"{where}: unknown solver options {sorted(unknown)} (known: tol, max_iter)")
    return float(solver_kw.get("tol", 1e-4)), int(solver_kw.get("max_iter", 2000))  # type: ignore[arg-type]


def _cv_on_kernel(
    K_full: torch.Tensor,
    Yn: np.ndarray,
    costs: Sequence[float],
    folds: int,
    pos_weight: float,
    tol: float,
    max_iter: int,
) -> np.ndarray:
    """cross_validate on a precomputed kernel X X^T + 1 of all rows (every fold's kernel is a sub-block of it)."""
    dev = K_full.device
    n, n_classes = Yn.shape
    # fold_of[i, j] = fold in which sample i is tested for class j (-1: ignored for that class)
    fold_of = np.full((n, n_classes), -1)
    for j in range(n_classes):
        valid = np.flatnonzero(Yn[:, j] != 0)
        for f, test in enumerate(stratified_folds(Yn[valid, j], folds)):
            fold_of[valid[test], j] = f
    cv_ap = np.zeros((n_classes, len(costs)))
    for f in range(folds):
        train_mask = (fold_of != f) & (fold_of >= 0)
        used = np.flatnonzero(train_mask.any(1))
        Yf = torch.as_tensor(np.where(train_mask[used], Yn[used], 0), device=dev)
        used_t = torch.as_tensor(used, device=dev)
        beta, _ = _solve_kernel(K_full[used_t][:, used_t], Yf, costs, pos_weight, tol, max_iter)
        for j in range(n_classes):
            test = np.flatnonzero(fold_of[:, j] == f)
            test_t = torch.as_tensor(test, device=dev)
            scores = (K_full[test_t][:, used_t] @ beta[:, j, :]).cpu().numpy()
            for k in range(len(costs)):
                cv_ap[j, k] += average_precision(Yn[test, j], scores[:, k]) / folds
    return cv_ap


def _cv_inputs(
    X: torch.Tensor | np.ndarray,
    Y: torch.Tensor | np.ndarray,
    costs: Sequence[float],
    folds: int,
    pos_weight: float,
    dev: torch.device,
) -> tuple[torch.Tensor, np.ndarray]:
    X = _as_tensor(X, dev)
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
    tol, max_iter = _solver_options(solver_kw, "cross_validate")
    X, Yn = _cv_inputs(X, Y, costs, folds, pos_weight, _resolve_device(device))
    return _cv_on_kernel(X @ X.T + 1.0, Yn, costs, folds, pos_weight, tol, max_iter)


def cross_validate_and_train(
    X: torch.Tensor | np.ndarray,
    Y: torch.Tensor | np.ndarray,
    costs: Sequence[float] = COSTS,
    *,
    folds: int = 3,
    pos_weight: float = 2.0,
    device: str | torch.device | None = None,
    **solver_kw: object,
) -> tuple[np.ndarray, SVMSolution]:
    """``cross_validate`` and ``train_svms`` on the same data, sharing one kernel matrix (the whole protocol's fits)."""
    tol, max_iter = _solver_options(solver_kw, "cross_validate_and_train")
    X, Yn = _cv_inputs(X, Y, costs, folds, pos_weight, _resolve_device(device))
    K_full = X @ X.T + 1.0
    cv_ap = _cv_on_kernel(K_full, Yn, costs, folds, pos_weight, tol, max_iter)
    Y_t = torch.as_tensor(Yn, device=X.device)
    return cv_ap, _fit_on_kernel(X, Y_t, K_full, costs, pos_weight, tol, max_iter)


def select_costs(cv_ap: np.ndarray, costs: Sequence[float]) -> np.ndarray:
    """Index of the best cost per class (the first maximum of the mean CV AP, as np.argmax)."""
    cv_ap = np.asarray(cv_ap)
    if cv_ap.ndim != 2 or cv_ap.shape[1] != len(costs):
        raise ValueError(f"select_costs: expected cv_ap of shape (C, {len(costs)}), got {cv_ap.shape}")
    return np.argmax(cv_ap, axis=1)
