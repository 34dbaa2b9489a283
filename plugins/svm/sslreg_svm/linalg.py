"""Dense linear algebra of the SVM solver: top eigenpairs, batched preconditioned CG, refined float32 Cholesky solves.

Everything works on torch tensors on any device. The heavy products run in float32 (half the memory traffic of
float64, twice the flops); where a result must be exact, float64 residuals refine it (mixed precision).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Operator = Callable[[torch.Tensor], torch.Tensor]

REFINE_TOL = 1e-12  # relative residual of a refined solve
CG_TOL = 1e-11  # relative residual of a tight (exact) CG solve
CG_INNER_TOL = 1e-6  # relative residual of one float32 CG round
#: Products A B with at most this many columns in B are computed as (B^T A^T)^T: the CPU BLAS runs a product with
#: a narrow right-hand side 2-5x slower than the transposed one (measured on 2 AMD EPYC cores: a 3,403-row float32
#: kernel times 3 columns, 15 ms as K @ v, 7 ms as (v^T K)^T; its n x 1,025 factor, 23 ms as F (F^T v), 2.3 ms as
#: ((v^T F) F^T)^T). Wider products stay as they are (measured: no gain or a loss from 64 columns).
NARROW = 32


def narrow_product(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """A @ B, computed as (B^T A^T)^T when B has at most NARROW columns."""
    return (B.T @ A.T).T if B.shape[1] <= NARROW else A @ B


def symmetric_product(K: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """K v for a symmetric K (as (v^T K)^T when v is narrow, which reads K in its own layout)."""
    return (v.T @ K).T if v.shape[1] <= NARROW else K @ v


def factor_product(F: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """F F^T v (a kernel from its factor F)."""
    return narrow_product(F, narrow_product(F.T, v))


def top_eigenpairs(K: torch.Tensor, k: int, iters: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Approximate top-k eigenpairs (eigenvalues ascending, float64) of a PSD matrix by seeded subspace iteration.

    Only a preconditioner uses them, so float32 and a few power iterations suffice: O(n^2 k), not eigh's O(n^3).
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
    return lam[-keep:].clamp_min(0).double(), (Q @ V[:, -keep:]).double()


def cg(
    hess: Operator, precond: Operator, b: torch.Tensor, x: torch.Tensor, atol: torch.Tensor, max_iter: int
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Preconditioned conjugate gradients on every column of b at once, until each residual norm <= its atol.

    Runs in the dtype of b (the solver's CG is float32).

    Returns the solution, a per-column convergence flag and the iterations run.
    """
    tiny = torch.finfo(b.dtype).tiny
    x = x.clone()
    r = b - hess(x)
    s = precond(r)
    p = s.clone()
    rs = (r * s).sum(0)
    done = torch.linalg.vector_norm(r, dim=0) <= atol
    it = 0
    while it < max_iter and not bool(done.all()):
        it += 1
        hp = hess(p)
        alpha = torch.where(done, 0.0, rs / (p * hp).sum(0).clamp_min(tiny))
        x += alpha * p
        r -= alpha * hp
        done = done | (torch.linalg.vector_norm(r, dim=0) <= atol)
        s = precond(r)
        rs_new = (r * s).sum(0)
        p = s + (rs_new / rs.clamp_min(tiny)) * p
        rs = rs_new
    return x, done, it


def mixed_cg(
    hess64: Operator,
    hess32: Operator,
    precond: Operator,
    b: torch.Tensor,
    x: torch.Tensor,
    loose: torch.Tensor,
    max_iter: int,
    loose_tol: torch.Tensor | float = CG_INNER_TOL,
    rounds: int = 8,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Float32 CG refined with float64 residuals to CG_TOL; ``loose`` columns stop after the first float32 round.

    hess32 and precond act on float32 vectors, hess64 on float64 ones; b and x are float64. A loose column ends
    at a relative residual of ``loose_tol`` (per column; CG_INNER_TOL is about what float32 reaches: enough for a
    cross-validation fit, 1e-3 for a Newton step that is not the last) and costs no float64 product at all when
    every column is loose.
    """
    bnorm = torch.linalg.vector_norm(b, dim=0)
    if bool(loose.all()):
        x32 = x.float()
        r = b.float() - hess32(x32)
        atol = (torch.as_tensor(loose_tol, dtype=bnorm.dtype, device=bnorm.device) * bnorm).float()
        step, done, it = cg(hess32, precond, r, torch.zeros_like(r), atol, max_iter)
        return (x32 + step).double(), done, it
    x, total = x.clone(), 0
    done = torch.zeros_like(loose)
    for round_ in range(rounds + 1):
        r = b - hess64(x)
        rnorm = torch.linalg.vector_norm(r, dim=0)
        done = (rnorm <= CG_TOL * bnorm) | (loose & (round_ > 0))
        if round_ == rounds or total >= max_iter or bool(done.all()):
            break
        r32 = (r * ~done).float()
        step, _, it = cg(hess32, precond, r32, torch.zeros_like(r32), CG_INNER_TOL * rnorm.float(), max_iter - total)
        x += step.double()
        total += it
    return x, done, total


def woodbury_gram(U: torch.Tensor, UtU: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """U^T diag(s) U for every column of s (J, k, k), from the fewer of the rows with s != 0 or with s != 1.

    s is 0 (inactive), 1 (active negative) or the positive weight, so whichever set is smaller (the active rows at
    large costs, the positives while every sample is active) gives the same Gram matrix at a fraction of the cost.
    """
    grams = []
    for j in range(s.shape[1]):
        sj = s[:, j]
        nonzero, not_one = sj != 0, sj != 1
        if int(nonzero.sum()) <= int(not_one.sum()):
            rows = nonzero.nonzero().squeeze(1)
            Ur = U[rows]
            grams.append((Ur * sj[rows, None]).T @ Ur)
        else:
            rows = not_one.nonzero().squeeze(1)
            Ur = U[rows]
            grams.append(UtU + (Ur * (sj[rows, None] - 1.0)).T @ Ur)
    return torch.stack(grams) if grams else UtU.new_zeros((0,) + UtU.shape)


def woodbury_preconditioner(
    lam: torch.Tensor, U: torch.Tensor, gram: torch.Tensor, s: torch.Tensor, scale: float
) -> Operator:
    """Exact inverse of diag(1 / w) + U diag(lam) U^T on the rows with w = scale s > 0 (identity elsewhere), per column.

    With (lam, U) top kernel eigenpairs, gram[c] = U^T diag(s_c) U, s the class weight of the active rows and
    scale = 2 C, this approximates the inverse of the Newton (or ridge) system K_AA + diag(1 / (2 C c_A)): only the
    kernel's spectrum below the kept eigenpairs is left to CG.
    """
    w = (scale * s).float()
    inactive = (s <= 0).float()
    if U.shape[1] == 0:
        return lambda r: w * r + inactive * r
    lam_inv = 1.0 / lam.clamp_min(1e-12 * float(lam.max().clamp_min(1e-300)))
    G = gram * scale
    G.diagonal(dim1=1, dim2=2).add_(lam_inv)
    G_chol, info = torch.linalg.cholesky_ex(G)
    if bool((info != 0).any()):  # cannot happen for lam > 0: a diagonal preconditioner then
        return lambda r: w * r + inactive * r
    G_inv = torch.cholesky_inverse(G_chol).float()  # (J, k, k): applied as one batched product per CG step
    U32 = U.float()

    def apply(r: torch.Tensor) -> torch.Tensor:
        wr = w * r
        low = torch.einsum("jkl,lj->kj", G_inv, narrow_product(U32.T, wr))
        return wr + inactive * r - w * narrow_product(U32, low)

    return apply
