"""The fast SVM solver against scikit-learn's LinearSVC on tiny synthetic problems."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sslreg_svm.common import l2_normalize, normalize
from sslreg_svm.metrics import average_precision
from sslreg_svm.parallel import single_threaded_torch
from sslreg_svm.reference import cross_validate_sklearn, train_svms_sklearn
from sslreg_svm.solver import (
    COSTS,
    SVMSolution,
    cross_validate,
    cross_validate_and_train,
    select_costs,
    train_svms,
)


def _data(n: int = 90, dim: int = 24, n_classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative, L2-normalised features with class structure; labels in {1, -1}."""
    rng = np.random.default_rng(seed)
    present = rng.random((n, n_classes)) < 0.3
    centers = rng.normal(size=(n_classes, dim))
    x = np.maximum(present @ centers + rng.normal(size=(n, dim)), 0.0)
    return l2_normalize(x), np.where(present, 1, -1)


def _objective(w: np.ndarray, b: float, X: np.ndarray, y: np.ndarray, cost: float) -> float:
    """LinearSVC's primal with class_weight {1: 2, -1: 1} and the regularised bias; label 0 is left out."""
    keep = y != 0
    margin = y[keep] * (X[keep] @ w + b)
    weight = np.where(y[keep] == 1, 2.0, 1.0)
    return 0.5 * (w @ w + b * b) + cost * float(np.sum(weight * np.maximum(0.0, 1.0 - margin) ** 2))


def test_costs_are_the_protocols_26() -> None:
    assert len(COSTS) == 26 and min(COSTS) == 1e-7 and max(COSTS) == 100.0
    assert 0.5**4 in COSTS and 0.5**19 in COSTS and 0.5**20 not in COSTS


def test_l2_normalize_matches_reference_formula() -> None:
    x = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    out = l2_normalize(x)
    assert out.dtype == np.float64
    assert out[0] == pytest.approx([3 / (5 + 1e-5), 4 / (5 + 1e-5)])
    assert (out[1] == 0).all()
    assert torch.allclose(l2_normalize(torch.from_numpy(x)), torch.from_numpy(out))


def test_normalize_divides_its_own_copy() -> None:
    """normalize divides in place to save memory: never the caller's array, bit for bit what l2_normalize returns."""
    for dtype in (np.float32, np.float64):
        x = np.random.default_rng(0).random((50, 7)).astype(dtype)
        before = x.copy()
        out = normalize(x)
        assert np.array_equal(x, before)
        assert torch.equal(out, l2_normalize(torch.from_numpy(before)))


def test_separable_labels_are_classified_perfectly() -> None:
    rng = np.random.default_rng(1)
    X = l2_normalize(rng.normal(size=(200, 10)))
    X = X[np.abs(X[:, 0]) > 0.3]  # a clear margin around the separating hyperplane x0 = 0
    y = np.where(X[:, 0] > 0, 1, -1)[:, None]
    sol = train_svms(X, y, costs=(10.0, 100.0))
    scores = sol.decision(X).numpy()
    assert ((scores[:, 0, :] > 0) == (y > 0)).all()


@pytest.mark.parametrize("cost", [1e-7, 1e-3, 0.0625, 1.0, 10.0, 100.0])
def test_objective_not_worse_than_liblinear(cost: float) -> None:
    X, Y = _data()
    ours = train_svms(X, Y, costs=(cost,))
    ref = train_svms_sklearn(X, Y, costs=(cost,))
    for j in range(Y.shape[1]):
        mine = _objective(ours.weights[j, 0].numpy(), float(ours.bias[j, 0]), X, Y[:, j], cost)
        theirs = _objective(ref.weights[j, 0].numpy(), float(ref.bias[j, 0]), X, Y[:, j], cost)
        assert mine <= theirs * (1 + 1e-9) + 1e-15


def test_weights_close_to_liblinear_on_a_well_conditioned_problem() -> None:
    X, Y = _data(n=80, dim=8)
    costs = (1e-3, 0.0625, 0.5)
    ours, ref = train_svms(X, Y, costs=costs), train_svms_sklearn(X, Y, costs=costs)
    scale = ref.weights.abs().amax(dim=-1, keepdim=True)
    assert torch.allclose(ours.weights / scale, ref.weights / scale, atol=2e-3)
    assert torch.allclose(ours.bias, ref.bias, atol=2e-3 * float(scale.max()))


def test_the_whole_cost_path_solves_every_problem() -> None:
    X, Y = _data(n=60, dim=12, n_classes=2)
    sol = train_svms(X, Y)
    assert sol.weights.shape == (2, len(COSTS), 12) and sol.bias.shape == (
        2,
        len(COSTS),
    )
    assert sol.n_iter is not None and int(sol.n_iter.max()) < 100
    for k in (0, COSTS.index(0.5**4), COSTS.index(100.0)):
        ref = train_svms_sklearn(X, Y, costs=(COSTS[k],))
        for j in range(2):
            mine = _objective(sol.weights[j, k].numpy(), float(sol.bias[j, k]), X, Y[:, j], COSTS[k])
            theirs = _objective(ref.weights[j, 0].numpy(), float(ref.bias[j, 0]), X, Y[:, j], COSTS[k])
            assert mine <= theirs * (1 + 1e-9) + 1e-15


def test_label_zero_samples_are_ignored() -> None:
    X, Y = _data(n=70, n_classes=1)
    rng = np.random.default_rng(3)
    ignored = rng.random(70) < 0.3
    Y0 = Y.copy()
    Y0[ignored] = 0
    X_other = X.copy()
    X_other[ignored] = l2_normalize(rng.normal(size=(int(ignored.sum()), X.shape[1])))  # garbage at ignored rows
    full = train_svms(X_other, Y0, costs=(0.01, 1.0))
    kept = train_svms(X[~ignored], Y[~ignored], costs=(0.01, 1.0))
    assert torch.allclose(full.weights, kept.weights, atol=1e-8)
    assert torch.allclose(full.bias, kept.bias, atol=1e-8)


def test_decision_shape_and_values() -> None:
    sol = SVMSolution(
        weights=torch.tensor([[[1.0, 0.0], [0.0, 2.0]]]),
        bias=torch.tensor([[0.5, -1.0]]),
    )
    out = sol.decision(np.array([[1.0, 1.0], [2.0, 0.0]]))
    assert out.shape == (2, 1, 2)
    assert out[:, 0, :].tolist() == [[1.5, 1.0], [2.5, -1.0]]
    with pytest.raises(ValueError, match="decision"):
        sol.decision(np.ones((2, 3)))


def test_cross_validate_matches_cross_val_score() -> None:
    X, Y = _data(n=96, dim=16, n_classes=3, seed=2)
    Y[::7, 1] = 0  # some ignored samples change that class's folds
    costs = (1e-5, 0.01, 0.0625, 1.0)
    ours = cross_validate(X, Y, costs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = cross_validate_sklearn(X, Y, costs)
    assert ours.shape == (3, len(costs))
    np.testing.assert_allclose(ours, ref, atol=1e-3)


def test_average_precision_is_sklearns_with_ties() -> None:
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(4)
    for trial in range(20):
        labels = np.where(rng.random(30) < 0.3, 1, -1)
        labels[0] = 1
        scores = rng.integers(0, 4, 30).astype(float) if trial % 2 else rng.normal(size=30)
        assert average_precision(labels, scores) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)


def test_select_costs_takes_the_first_maximum() -> None:
    cv = np.array([[0.1, 0.5, 0.5], [0.9, 0.2, 0.3]])
    assert select_costs(cv, (1.0, 2.0, 3.0)).tolist() == [1, 0]
    with pytest.raises(ValueError, match="select_costs"):
        select_costs(cv, (1.0, 2.0))


def test_bad_labels_and_costs_are_clear_errors() -> None:
    X, Y = _data(n=10)
    with pytest.raises(ValueError, match="labels"):
        train_svms(X, Y * 2)
    with pytest.raises(ValueError, match="costs"):
        train_svms(X, Y, costs=(0.0,))
    with pytest.raises(ValueError, match="shape|same N"):
        train_svms(X[:5], Y)


def test_cross_validate_and_train_equals_the_separate_calls() -> None:
    X, Y = _data(n=72, dim=12, n_classes=2, seed=5)
    Y[::5, 0] = 0  # the refit kernel is a sub-block of the shared one
    costs = (1e-4, 0.0625, 10.0)
    cv, sol = cross_validate_and_train(X, Y, costs)
    np.testing.assert_allclose(cv, cross_validate(X, Y, costs), atol=1e-9)
    alone = train_svms(X, Y, costs)
    assert torch.allclose(sol.weights, alone.weights, atol=1e-8)
    assert torch.allclose(sol.bias, alone.bias, atol=1e-8)
    with pytest.raises(ValueError, match="unknown solver options"):
        cross_validate_and_train(X, Y, costs, tolerance=1e-3)


@pytest.mark.parametrize("batched_cg", [True, False])
def test_both_newton_modes_match_liblinear_along_the_path(batched_cg: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batched-CG Newton steps and per-class Cholesky ones both reach an objective no worse than LinearSVC's."""
    import sslreg_svm.newton as newton_module

    monkeypatch.setattr(
        newton_module,
        "use_cholesky",
        lambda problem, cost, sizes: torch.full_like(sizes, not batched_cg, dtype=torch.bool),
    )
    X, Y = _data(n=80, dim=20, n_classes=3, seed=6)
    Y[::6, 2] = 0  # an ignored sample per six for one class (masked rows in the batched systems)
    costs = (1e-3, 0.0625, 1.0, 100.0)
    ours = train_svms(X, Y, costs=costs)
    assert int(ours.n_iter.max()) > 0  # some cost was solved by Newton steps, not as a ridge regression
    ref = train_svms_sklearn(X, Y, costs=costs)
    for j in range(Y.shape[1]):
        for k, cost in enumerate(costs):
            mine = _objective(ours.weights[j, k].numpy(), float(ours.bias[j, k]), X, Y[:, j], cost)
            theirs = _objective(ref.weights[j, k].numpy(), float(ref.bias[j, k]), X, Y[:, j], cost)
            assert mine <= theirs * (1 + 1e-9) + 1e-15
    cv = cross_validate(X, Y, costs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(cv, cross_validate_sklearn(X, Y, costs), atol=1e-3)


def _problem(n: int, dim: int, seed: int, ignored_every: int = 0):
    from sslreg_svm.newton import KernelProblem

    X, Y = _data(n=n, dim=dim, n_classes=2, seed=seed)
    Y = torch.from_numpy(Y)
    if ignored_every:
        Y[::ignored_every, 1] = 0
    return KernelProblem.build(torch.from_numpy(X @ X.T + 1.0), Y, 2.0)


def _dense_solution(problem, j: int, cost: float, s: torch.Tensor) -> torch.Tensor:
    a = (s[:, j] > 0).nonzero().squeeze(1)
    system = problem.K[a][:, a] + torch.diag(1.0 / (2 * cost * s[a, j]))
    out = torch.zeros(problem.n, dtype=torch.float64)
    out[a] = torch.linalg.solve(system, problem.y[a, j])
    return out


@pytest.mark.parametrize("cost", [1e-4, 0.5, 8.0])
def test_cg_step_solves_the_active_system(cost: float) -> None:
    """The batched mixed-precision CG solves (K_AA + diag(1 / (2 C c_A))) beta_A = y_A to float64 accuracy."""
    from sslreg_svm.newton import cg_targets

    problem = _problem(50, 10, seed=7, ignored_every=4)
    s = problem.cw.clone()
    s[::3, 0] = 0.0  # inactive rows
    cols = torch.arange(2)
    beta, done = cg_targets(problem, cols, cost, s, torch.zeros_like(s), torch.zeros(2, dtype=torch.bool))
    assert bool(done.all())
    for j in range(2):
        assert torch.allclose(beta[:, j], _dense_solution(problem, j, cost, s), atol=1e-9, rtol=1e-9)


def test_loose_columns_stop_after_one_float32_round() -> None:
    """A loose column is solved to float32 accuracy only, a tight one beside it to float64 accuracy."""
    from sslreg_svm.newton import cg_targets

    problem = _problem(60, 12, seed=8)
    s, cols = problem.cw.clone(), torch.arange(2)
    beta, done = cg_targets(problem, cols, 4.0, s, torch.zeros_like(s), torch.tensor([True, False]))
    assert bool(done.all())
    errors = []
    for j in range(2):
        expected = _dense_solution(problem, j, 4.0, s)
        errors.append(float((beta[:, j] - expected).norm() / expected.norm()))
    # float32 accuracy: good enough for a Newton step that is not the last, and not refined further
    assert 1e-9 < errors[0] < 1e-4
    assert errors[1] < 1e-9


@pytest.mark.parametrize("exact", [True, False])
def test_cholesky_steps_solve_the_active_systems(exact: bool) -> None:
    """Padded batches of float32 Cholesky factorisations: each column's own active system, refined with float64
    residuals to float64 accuracy for an exact problem (else to float32 accuracy), and the targets' K products."""
    from sslreg_svm.newton import cholesky_targets

    problem = _problem(70, 16, seed=9, ignored_every=5)
    problem.exact = exact
    s = problem.cw.clone()
    s[(problem.y[:, 1] * torch.linspace(-1, 1, 70, dtype=torch.float64)) > 0.3, 1] = 0.0  # inactive rows
    s[::2, 0] = 0.0  # active sets of different sizes in one padded batch
    for cost in (2.0, 300.0):  # 300: float32 factors alone are far from float64 accuracy
        target, f_target = cholesky_targets(problem, torch.arange(2), cost, s > 0)
        assert torch.allclose(f_target, problem.K @ target, rtol=1e-12, atol=1e-12)
        for j in range(2):
            expected = _dense_solution(problem, j, cost, s)
            error = float((target[:, j] - expected).norm() / expected.norm())
            assert error < (1e-9 if exact else 1e-4)
            assert bool((target[s[:, j] == 0, j] == 0).all())


def test_line_search_finds_the_minimum_along_the_direction() -> None:
    from sslreg_svm.newton import line_search

    rng = np.random.default_rng(10)
    n, J = 40, 3
    K = torch.from_numpy(_data(n=n, dim=8, seed=11)[0] @ _data(n=n, dim=8, seed=11)[0].T + 1.0)
    y = torch.from_numpy(np.where(rng.random((n, J)) < 0.4, 1.0, -1.0))
    ccw = torch.where(y > 0, 2.0, 1.0) * 0.7
    beta, d = torch.from_numpy(rng.normal(size=(n, J))) * 0.1, torch.from_numpy(rng.normal(size=(n, J)))
    f = K @ beta
    slack = (1 - y * f).clamp_min(0)
    d[:, 0] = -(beta[:, 0] - 2 * ccw[:, 0] * slack[:, 0] * y[:, 0])  # the negative gradient: a descent direction
    df = K @ d

    def objective(t: float, j: int) -> float:
        b = beta[:, j] + t * d[:, j]
        slack = (1 - y[:, j] * (K @ b)).clamp_min(0)
        return float(0.5 * b @ K @ b + (ccw[:, j] * slack**2).sum())

    t = line_search(f, d, df, y, ccw)
    for j in range(J):
        grid = np.linspace(0, 3, 3001)
        values = [objective(float(g), j) for g in grid]
        assert objective(float(t[j]), j) <= min(values) * (1 + 1e-12)
    assert float(t[0]) > 0


@pytest.mark.parametrize("exact", [True, False])
def test_cv_and_exact_fits_reach_the_optimum_on_realistic_features(exact: bool) -> None:
    """Both accuracies of the cost path (the CV folds' float32 one, the refit's float64 one) reach liblinear's optimum
    at a tight tolerance on overlapping pooled-ReLU-like classes, where loose Newton steps once stalled the path."""
    from sklearn.svm import LinearSVC
    from sslreg_svm.path import solve_path
    from sslreg_svm.synthetic import realistic_features

    splits = realistic_features(400, 1, 512, 4, seed=3)
    X = l2_normalize(splits.train_features)
    Y = np.where(splits.train_labels == 1, 1, -1)
    costs = (0.0625, 0.1, 1.0)
    Xt = torch.as_tensor(X)
    with single_threaded_torch():
        beta, _ = solve_path(Xt @ Xt.T + 1.0, torch.as_tensor(Y), costs, 2.0, 1e-4, 2000, exact)
    tolerance = 1e-9 if exact else 1e-6  # relative objective: float64 solves, float32 ones
    for j in range(Y.shape[1]):
        for k, cost in enumerate(costs):
            b = beta[:, j, k].numpy()
            mine = _objective(X.T @ b, float(b.sum()), X, Y[:, j], cost)
            svc = LinearSVC(C=cost, class_weight={1: 2, -1: 1}, tol=1e-10, max_iter=100_000).fit(X, Y[:, j])
            best = _objective(svc.coef_[0], float(svc.intercept_[0]), X, Y[:, j], cost)
            assert mine <= best * (1 + tolerance), (j, cost, mine, best)


@pytest.mark.parametrize("exact", [True, False])
def test_kernel_products_through_the_features_give_the_same_path(exact: bool) -> None:
    """With D + 1 <= n / 2 the products go through X~ = [X, 1] (K v = X~ (X~^T v)): the same optima as through K."""
    from sslreg_svm import newton
    from sslreg_svm.path import solve_path

    X, Y = _data(n=120, dim=20, n_classes=3, seed=4)
    Xt = torch.as_tensor(X)
    assert newton.KernelProblem.build(Xt @ Xt.T + 1.0, torch.as_tensor(Y), 2.0, exact, Xt).factor is not None
    costs = (1e-3, 0.0625, 1.0, 10.0)
    with single_threaded_torch():  # as the solver runs it (OpenMP threads crawl on a busy machine)
        through_k, _ = solve_path(Xt @ Xt.T + 1.0, torch.as_tensor(Y), costs, 2.0, 1e-4, 2000, exact)
        through_x, _ = solve_path(Xt @ Xt.T + 1.0, torch.as_tensor(Y), costs, 2.0, 1e-4, 2000, exact, Xt)
    scale = through_k.abs().amax()
    assert torch.allclose(through_x / scale, through_k / scale, atol=1e-8 if exact else 1e-4)


def test_feature_space_path_matches_the_kernel_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The COCO-size path (feature space, row chunks, folds batched or one at a time) chooses the costs of the kernel
    path, with the same CV AP to float32 accuracy, and refits to liblinear's objective."""
    from sslreg_svm import primal, solver

    X, Y = _data(n=150, dim=16, n_classes=3, seed=6)
    Y[::7, 1] = 0
    costs = (1e-4, 0.0625, 1.0, 10.0)
    kernel_cv, _ = cross_validate_and_train(X, Y, costs, refit="chosen")
    monkeypatch.setattr(solver, "KERNEL_MAX_ROWS", 0)
    monkeypatch.setattr(primal, "CHUNK", 64)  # several row chunks
    cv, chosen = cross_validate_and_train(X, Y, costs, refit="chosen")
    monkeypatch.setattr(primal, "BATCH_ENTRIES", 1)  # one fold at a time
    np.testing.assert_array_equal(cross_validate(X, Y, costs), cv)
    np.testing.assert_allclose(cv, kernel_cv, atol=1e-4)
    best = select_costs(cv, costs)
    np.testing.assert_array_equal(best, select_costs(kernel_cv, costs))
    for j in range(Y.shape[1]):
        cost = costs[best[j]]
        ref = train_svms_sklearn(X, np.where(Y[:, j : j + 1] == 0, 0, Y[:, j : j + 1]), costs=(cost,))
        mine = _objective(chosen.weights[j, 0].numpy(), float(chosen.bias[j, 0]), X, Y[:, j], cost)
        theirs = _objective(ref.weights[0, 0].numpy(), float(ref.bias[0, 0]), X, Y[:, j], cost)
        assert mine <= theirs * (1 + 1e-6) + 1e-12
