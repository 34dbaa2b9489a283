"""Semismooth Newton iterations of the squared-hinge SVM in the sample space, for many classes at once.

One class and cost is scikit-learn's ``LinearSVC(C, class_weight={1: w, -1: 1}, loss='squared_hinge', dual=True)``
(liblinear regularises the bias through an appended feature 1). With the kernel K = X X^T + 1 and w = sum beta_i x_i:

    min_beta  0.5 beta^T K beta + C sum_i c_i max(0, 1 - y_i f_i)^2,   f = K beta.

A Newton step (Keerthi & DeCoste; Chapelle) solves the problem restricted to the active set A = {i: y_i f_i < 1}:
(K_AA + diag(1 / (2 C c_A))) beta_A = y_A, beta = 0 elsewhere, followed by an exact line search on the convex
piecewise-quadratic objective. When the step's target keeps its own active set it is the optimum (the KKT
conditions hold); liblinear's own rule (projected dual gradient spread <= tol) is the other way out.

Each step's systems are solved either all classes together by conjugate gradients on the kernel (one matrix
product per CG step, preconditioned by the top kernel eigenpairs; cheap while the active sets are large and the
cost small) or per class by a float32 Cholesky factorisation of K_AA (cheap once the active set is small), on a
cost model of the two. Early steps may be solved loosely (float32 accuracy: they still decrease the objective
through the line search); the last is solved to float64 accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from sslreg_svm import linalg

PRECOND_RANK = 128  # kernel eigenpairs kept for the CG preconditioner
CG_MAX_ITER = 1000  # CG steps of one solve before the class falls back to Cholesky
LOOSE_STEPS = 6  # Newton steps solved loosely at most before every later step is solved exactly
LOOSE_TOL = 1e-3  # the primal path's CG before the active set has settled (inexact Newton)
PAD_WASTE = 1.5  # factorisations are batched with padding while the padded flops stay within this factor
#: Kernel products go through the features, K v = X~ (X~^T v), when X~ = [X, 1] has at most this fraction of n columns:
#: two passes over n x (D+1) read less memory than one over n x n (measured: a CG step on 3,403 rows x 1,025
#: dimensions 1.6x faster); the n x n kernel stays for the gathers of the factorised systems.
FACTOR_RATIO = 0.5


def through_features(dim: int, rows: int) -> bool:
    """Whether kernel products over ``rows`` rows of ``dim``-dimensional features go through the features."""
    return dim + 1 <= FACTOR_RATIO * rows


@dataclass
class KernelProblem:
    """One training set: kernel, labels and what every cost and Newton step shares."""

    K: torch.Tensor  # (n, n) float64, X X^T + 1
    K32: torch.Tensor  # the same in float32, for CG products and factorisations
    y: torch.Tensor  # (n, J) float64 labels 1 / -1 (0: the sample is ignored for that class)
    cw: torch.Tensor  # (n, J) class weight of each sample (pos_weight, 1, or 0 where ignored)
    pos_weight: float
    lam: torch.Tensor  # top kernel eigenvalues, ascending
    U: torch.Tensor  # their eigenvectors (n, k)
    exact: bool = True  # solve to float64 accuracy (else float32: relative residuals ~1e-6)
    factor: torch.Tensor | None = None  # (n, r) float64 with K = factor factor^T, when r <= FACTOR_RATIO n
    factor32: torch.Tensor | None = None
    # per class, U^T diag(s) U of the weights s it was last asked for (updated by the rows that change)
    grams: torch.Tensor = field(init=False)
    gram_weights: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.gram_weights = self.cw.clone()
        UtU = self.U.T @ self.U
        self.grams = linalg.woodbury_gram(self.U, UtU, self.cw)
        self._UtU = UtU

    @classmethod
    def build(
        cls, K: torch.Tensor, Y: torch.Tensor, pos_weight: float, exact: bool = True, X: torch.Tensor | None = None
    ) -> KernelProblem:
        """Problem of kernel K = X X^T + 1 (float64) and labels Y (n, J) in {1, -1, 0}; X (n, D), when given, serves
        the kernel products while D + 1 <= FACTOR_RATIO n."""
        K32 = K.float()
        lam, U = linalg.top_eigenpairs(K32, min(PRECOND_RANK, max(K.shape[0] - 1, 1)))
        y = Y.to(K.dtype)
        cw = torch.where(Y == 1, pos_weight, 1.0).to(K.dtype) * (Y != 0)
        factor = None
        if X is not None and through_features(X.shape[1], len(K)):
            factor = torch.cat([X.to(K.dtype), torch.ones(len(X), 1, dtype=K.dtype, device=K.device)], 1)
        factor32 = factor.float() if factor is not None else None
        return cls(K, K32, y, cw, pos_weight, lam, U, exact, factor, factor32)

    @property
    def n(self) -> int:
        return self.K.shape[0]

    def product(self, v: torch.Tensor) -> torch.Tensor:
        """K v, in float64 when the problem is exact, else from the float32 kernel."""
        return self.product64(v) if self.exact else self.product32(v.float()).double()

    def product64(self, v: torch.Tensor) -> torch.Tensor:
        """K v in float64 (v float64)."""
        return linalg.symmetric_product(self.K, v) if self.factor is None else linalg.factor_product(self.factor, v)

    def product32(self, v: torch.Tensor) -> torch.Tensor:
        """K v in float32 (v float32)."""
        if self.factor32 is None:
            return linalg.symmetric_product(self.K32, v)
        return linalg.factor_product(self.factor32, v)

    def tail_eigenvalue(self) -> float:
        """The smallest kept eigenvalue: a bound on the spectrum CG is left with."""
        return float(self.lam[0]) if len(self.lam) else float("inf")

    def gram(self, cols: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """U^T diag(s_c) U for the columns ``cols`` (weights s, (n, len(cols))), updated from the last ones asked."""
        for c, j in enumerate(cols.tolist()):
            delta = s[:, c] - self.gram_weights[:, j]
            rows = delta.nonzero().squeeze(1)
            if len(rows) == 0:
                continue
            if len(rows) > min(int((s[:, c] != 0).sum()), int((s[:, c] != 1).sum())):
                self.grams[j] = linalg.woodbury_gram(self.U, self._UtU, s[:, c : c + 1])[0]
            else:
                Ur = self.U[rows]
                self.grams[j] += (Ur * delta[rows, None]).T @ Ur
            self.gram_weights[:, j] = s[:, c]
        return self.grams[cols]


def use_cholesky(problem: KernelProblem, cost: float, active_sizes: torch.Tensor) -> torch.Tensor:
    """Per column: whether factorising K_AA is cheaper than its share of the batched CG (measured cost model).

    CG takes about 4.5 sqrt(kappa) steps per solve, kappa ~ 1 + 2 C w lam_tail the preconditioned condition number
    (half again when refined to float64), each a 2 n^2 product per column; a batched float32 factorisation runs at
    about a third of the product's flop rate, and gathering K_AA costs about 150 flops per entry.
    """
    kappa = 1.0 + 2.0 * cost * problem.pos_weight * problem.tail_eigenvalue()
    cg = 4.5 * kappa**0.5 * (1.5 if problem.exact else 1.0) * 2.0 * problem.n**2
    size = active_sizes.double()
    return size**3 + 150.0 * size**2 <= cg


def _preconditioner(problem: KernelProblem, cols: torch.Tensor, s: torch.Tensor, cost: float) -> linalg.Operator:
    """Woodbury preconditioner with the eigenpairs that matter at this cost (2 C w lam > 0.05)."""
    keep = (2.0 * cost * problem.pos_weight * problem.lam > 0.05).nonzero().squeeze(1)
    gram = problem.gram(cols, s)[:, keep][:, :, keep]
    return linalg.woodbury_preconditioner(problem.lam[keep], problem.U[:, keep], gram, s, 2.0 * cost)


def cg_targets(
    problem: KernelProblem,
    cols: torch.Tensor,
    cost: float,
    s: torch.Tensor,
    start: torch.Tensor,
    loose: torch.Tensor,
    loose_tol: torch.Tensor | float = linalg.CG_INNER_TOL,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve (K_AA + diag(1 / (2 C s_A))) beta_A = y_A, beta = 0 off A = {s > 0}, for the columns ``cols`` at once.

    Mixed-precision CG; loose columns in float32 only, to the relative residual loose_tol. Returns beta and a
    per-column convergence flag.
    """
    mask = (s > 0).to(s.dtype)
    diag = torch.where(s > 0, 1.0 / (2.0 * cost * s.clamp_min(1e-300)), 1.0)
    mask32, diag32 = mask.float(), diag.float()

    def hess64(v: torch.Tensor) -> torch.Tensor:
        return mask * problem.product64(mask * v) + diag * v

    def hess32(v: torch.Tensor) -> torch.Tensor:
        return mask32 * problem.product32(mask32 * v) + diag32 * v

    precond = _preconditioner(problem, cols, s, cost)
    b = mask * problem.y[:, cols]
    beta, done, _ = linalg.mixed_cg(hess64, hess32, precond, b, start * mask, loose, CG_MAX_ITER, loose_tol)
    return beta, done


def _size_groups(sizes: list[int]) -> list[list[int]]:
    """Columns grouped by active-set size (largest first) so that padding each group to its largest wastes little."""
    order = sorted(range(len(sizes)), key=lambda c: -sizes[c])
    groups: list[list[int]] = []
    for c in order:
        if groups:
            group = groups[-1]
            padded = (len(group) + 1) * sizes[group[0]] ** 3
            if padded <= PAD_WASTE * (sum(sizes[g] ** 3 for g in group) + sizes[c] ** 3):
                group.append(c)
                continue
        groups.append([c])
    return groups


def cholesky_targets(
    problem: KernelProblem, cols: torch.Tensor, cost: float, active: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Newton targets of the columns ``cols`` by float32 Cholesky factorisations of their active systems, and K target.

    Columns of similar active-set size are factorised as one padded batch (identity rows pad the smaller ones).
    The solutions are refined with float64 residuals (one kernel product for all columns per round, whose last one
    gives the targets' decision values) to a relative residual of REFINE_TOL when the problem is exact, else
    CG_INNER_TOL; a group the float32 factors cannot refine is factorised again in float64.
    """
    n, dev, K = problem.n, problem.K.device, problem.K
    y, cw = problem.y[:, cols], problem.cw[:, cols]
    diag_all = torch.where(active, 1.0 / (2.0 * cost * cw.clamp_min(1e-300)), 0.0)
    rhs_all = y * active
    target = torch.zeros(n, len(cols), dtype=K.dtype, device=dev)
    sizes = active.sum(0).tolist()
    solvers = []
    for group in _size_groups(sizes):
        m = sizes[group[0]]
        if m == 0:
            continue
        g = torch.tensor(group, device=dev)
        # indices of each column's active rows, padded with row 0 (masked out)
        order = torch.argsort((~active[:, g]).to(torch.int8), dim=0, stable=True)[:m].T  # (G, m)
        valid = torch.arange(m, device=dev)[None, :] < torch.tensor([sizes[c] for c in group], device=dev)[:, None]
        idx = torch.where(valid, order, 0)
        diag = torch.where(valid, torch.gather(diag_all[:, g].T, 1, idx), 1.0)
        pair = valid[:, :, None] & valid[:, None, :]
        system = torch.where(pair, problem.K32[idx[:, :, None], idx[:, None, :]], 0.0)
        system.diagonal(dim1=1, dim2=2).add_(diag.float())
        chol, info = torch.linalg.cholesky_ex(system)
        if bool((info != 0).any()):  # float32 breaks down: factorise in float64
            system = torch.where(pair, K[idx[:, :, None], idx[:, None, :]], 0.0)
            system.diagonal(dim1=1, dim2=2).add_(diag)
            chol = torch.linalg.cholesky_ex(system)[0]
        solvers.append((g, idx, valid, chol))

    def correct(residual: torch.Tensor, todo: torch.Tensor) -> None:
        for g, idx, valid, chol in solvers:
            if not bool(todo[g].any()):
                continue
            r = torch.gather(residual[:, g].T, 1, idx) * valid
            x = torch.cholesky_solve(r.to(chol.dtype).unsqueeze(-1), chol).squeeze(-1).double() * valid
            target[:, g] += torch.zeros(len(g), n, dtype=x.dtype, device=dev).scatter_add_(1, idx, x).T * todo[g]

    tol = (linalg.REFINE_TOL if problem.exact else linalg.CG_INNER_TOL) * torch.linalg.vector_norm(rhs_all, dim=0)
    todo = torch.ones(len(cols), dtype=torch.bool, device=dev)
    correct(rhs_all, todo)
    previous = torch.full((len(cols),), float("inf"), dtype=K.dtype, device=dev)
    for round_ in range(31):
        f_target = problem.product64(target)
        residual = (rhs_all - f_target - diag_all * target) * active
        norm = torch.linalg.vector_norm(residual, dim=0)
        todo = norm > tol
        stuck = todo & (norm > 0.5 * previous)
        if bool(stuck.any()):  # refinement does not converge: float64 factors for those columns
            for position, (g, idx, valid, chol) in enumerate(solvers):
                if bool(stuck[g].any()) and chol.dtype != torch.float64:
                    diag = torch.where(valid, torch.gather(diag_all[:, g].T, 1, idx), 1.0)
                    system = torch.where(
                        valid[:, :, None] & valid[:, None, :], K[idx[:, :, None], idx[:, None, :]], 0.0
                    )
                    system.diagonal(dim1=1, dim2=2).add_(diag)
                    solvers[position] = (g, idx, valid, torch.linalg.cholesky_ex(system)[0])
        if not bool(todo.any()) or round_ == 30:
            break
        previous = norm
        correct(residual, todo)
    return target, f_target


def line_search(f: torch.Tensor, d: torch.Tensor, df: torch.Tensor, y: torch.Tensor, ccw: torch.Tensor) -> torch.Tensor:
    """Per column, the exact minimiser t >= 0 of the objective along beta + t d (safeguarded 1-D Newton).

    The objective along the line is convex and piecewise quadratic; its derivative is
    f.d + t df.d - 2 sum_i ccw_i y_i df_i max(0, 1 - y_i (f_i + t df_i)).
    """
    fd, dd = (f * d).sum(0), (df * d).sum(0)
    ydf = y * df
    slack0 = 1.0 - y * f
    ascent = fd - 2.0 * (ccw * ydf * slack0.clamp_min(0)).sum(0) >= 0  # no decrease along d at all
    t = torch.where(ascent, 0.0, 1.0)
    lo, hi = torch.zeros_like(fd), torch.where(ascent, 0.0, float("inf"))
    for _ in range(60):
        slack = slack0 - t * ydf
        grad = fd + t * dd - 2.0 * (ccw * ydf * slack.clamp_min(0)).sum(0)
        curv = dd + 2.0 * (ccw * df * df * (slack > 0)).sum(0)
        lo = torch.where(grad < 0, t, lo)
        hi = torch.where(grad > 0, t, hi)
        step = torch.where(curv > 0, t - grad / curv.clamp_min(1e-300), t)
        inside = (step > lo) & (step < hi)
        bisect = torch.where(torch.isfinite(hi), 0.5 * (lo + hi), 2.0 * t)
        t_new = torch.where((grad == 0) | ascent, t, torch.where(inside, step, bisect))
        moved = (t_new - t).abs() > 1e-12 * t.abs().clamp_min(1.0)
        t = t_new
        if not bool(moved.any()):
            break
    return t.clamp_min(0)


def _spread(problem: KernelProblem, cols: torch.Tensor, cost: float, f: torch.Tensor) -> torch.Tensor:
    """liblinear's stopping quantity: max - min of the projected dual gradient at alpha = 2 C c slack."""
    y, cw = problem.y[:, cols], problem.cw[:, cols]
    used = cw > 0
    slack = (1.0 - y * f).clamp_min(0) * used
    grad = y * problem.product(2.0 * cost * cw * slack * y) - 1.0 + slack
    projected = torch.where(slack > 0, grad, grad.clamp_max(0))
    big = torch.finfo(f.dtype).max
    return torch.where(used, projected, -big).amax(0) - torch.where(used, projected, big).amin(0)


def _cg_decisions(
    problem: KernelProblem, cols: torch.Tensor, cost: float, s: torch.Tensor, target: torch.Tensor, loose: torch.Tensor,
    loose_tol: torch.Tensor | float,
) -> torch.Tensor:  # fmt: skip
    """K target of CG targets: in float64 where refined; for float32 ones solved to CG_INNER_TOL, on the active rows
    from the system itself (K_AA t_A = y_A - t_A / (2 C s_A), to the solver's residual, so that the margin decisions
    do not carry a float32 product's error) and from the float32 kernel on the others (4x cheaper than float64).
    A target solved only to LOOSE_TOL takes the float32 product everywhere: the system's identity holds only to its
    residual, and a line search on such decisions can stall (measured: a CV fit stopped 0.25 % above its optimum).
    """
    if not bool(loose.any()):
        return problem.product64(target)
    out = problem.product32(target.float()).double()
    tight = torch.as_tensor(loose_tol, dtype=torch.float64, device=target.device).expand(len(cols))
    system = (s > 0) & (tight <= linalg.CG_INNER_TOL)
    out = torch.where(system, problem.y[:, cols] - target / (2.0 * cost * s.clamp_min(1e-300)), out)
    exact = (~loose).nonzero().squeeze(1)
    if len(exact):
        out[:, exact] = problem.product64(target[:, exact])
    return out


def step_targets(
    problem: KernelProblem,
    cols: torch.Tensor,
    cost: float,
    active: torch.Tensor,
    start: torch.Tensor,
    loose: torch.Tensor,
    force_chol: torch.Tensor,
    loose_tol: torch.Tensor | float = linalg.CG_INNER_TOL,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Newton targets of the columns ``cols`` for their active sets, by batched CG or Cholesky (the cheaper).

    Returns the targets, their decision values K target (float64), whether each was solved (CG converged) and
    whether it was factorised (an exact problem's factorised targets are refined to float64 accuracy).
    """
    chol = use_cholesky(problem, cost, active.sum(0)) | force_chol
    target = torch.zeros_like(start)
    f_target = torch.zeros_like(start)
    solved = torch.ones(len(cols), dtype=torch.bool, device=cols.device)
    by_cg = (~chol).nonzero().squeeze(1)
    if len(by_cg):
        s = problem.cw[:, cols[by_cg]] * active[:, by_cg]
        tol = loose_tol[by_cg] if isinstance(loose_tol, torch.Tensor) else loose_tol
        target[:, by_cg], solved[by_cg] = cg_targets(problem, cols[by_cg], cost, s, start[:, by_cg], loose[by_cg], tol)
        f_target[:, by_cg] = _cg_decisions(problem, cols[by_cg], cost, s, target[:, by_cg], loose[by_cg], tol)
    by_chol = chol.nonzero().squeeze(1)
    if len(by_chol):
        target[:, by_chol], f_target[:, by_chol] = cholesky_targets(problem, cols[by_chol], cost, active[:, by_chol])
    return target, f_target, solved, chol


def newton(
    problem: KernelProblem,
    cols: torch.Tensor,
    cost: float,
    beta: torch.Tensor,
    f: torch.Tensor,
    tol: float,
    max_iter: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Newton iterations at one cost for the columns ``cols`` from (beta, f = K beta); returns beta, f, iterations."""
    y, cw = problem.y[:, cols], problem.cw[:, cols]
    used, ccw = cw > 0, cost * cw
    beta, f = beta.clone(), f.clone()
    n_iter = torch.full((len(cols),), max_iter, dtype=torch.long)
    live = torch.arange(len(cols), device=cols.device)
    tight = torch.zeros(len(cols), dtype=torch.bool, device=cols.device)  # solve this step exactly
    force_chol = torch.zeros_like(tight)  # CG did not converge for this column
    drift = torch.ones_like(tight)  # f may differ from K beta by more than the final accuracy (refreshed when tight)
    for it in range(1, max_iter + 1):
        stale = live[tight & drift[live]]
        if len(stale):  # decisions carried through loose steps: recomputed before a final-accuracy step
            f[:, stale] = problem.product(beta[:, stale])
            drift[stale] = False
        yl, fl, bl = y[:, live], f[:, live], beta[:, live]
        active = used[:, live] & (yl * fl < 1)
        chol = force_chol[live]
        # inexact Newton: loose steps until the active set settles; the last to float64 accuracy (exact problems)
        # or float32 accuracy (CV fits)
        loose = ~tight | (not problem.exact)
        loose_tol = torch.where(tight, linalg.CG_INNER_TOL, LOOSE_TOL).to(torch.float64)
        target, f_target, solved, chol_used = step_targets(
            problem, cols[live], cost, active, bl, loose, chol, loose_tol
        )
        d, df = target - bl, f_target - fl
        # the target solves the problem restricted to the active set: where it keeps that set, it is the optimum
        reaches = solved & (active == (used[:, live] & (yl * f_target < 1))).all(0)
        final = tight | chol_used  # solved to the final accuracy (float64 when exact, else float32's CG_INNER_TOL)
        exact = reaches & final
        t = torch.ones_like(exact, dtype=d.dtype)
        search = (~exact).nonzero().squeeze(1)
        if len(search):
            t[search] = line_search(fl[:, search], d[:, search], df[:, search], yl[:, search], ccw[:, live[search]])
        t = torch.where(solved, t, 0.0)
        beta[:, live] = bl + t * d
        f[:, live] = torch.where(t == 1.0, f_target, fl + t * df)
        drift[live] |= ~final & (t != 0)
        finished = exact.clone()
        check = (~finished & (tight if problem.exact else torch.full_like(tight, it >= LOOSE_STEPS))).nonzero()
        if len(check):
            check = check.squeeze(1)
            finished[check] = _spread(problem, cols[live[check]], cost, f[:, live[check]]) <= tol
        # a final-accuracy step that does not move: the iterate is optimal to working precision
        finished |= final & solved & (t == 0)
        force_chol[live[~solved]] = True
        n_iter[live[finished].cpu()] = it
        # a loose step that does not descend (t = 0) is solved to the final accuracy next
        tight = (reaches | (it >= LOOSE_STEPS) | ~solved | (t == 0) | tight)[~finished]
        live = live[~finished]
        if len(live) == 0:
            break
    return beta, f, n_iter
