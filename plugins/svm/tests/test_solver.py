"""The fast SVM solver against scikit-learn's LinearSVC on tiny synthetic problems."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sslreg_svm.reference import cross_validate_sklearn, train_svms_sklearn
from sslreg_svm.solver import (
    COSTS,
    SVMSolution,
    average_precision,
    cross_validate,
    cross_validate_and_train,
    l2_normalize,
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
    import sslreg_svm.solver as solver_module

    monkeypatch.setattr(solver_module, "_cg_pays_off", lambda *args: batched_cg)
    X, Y = _data(n=80, dim=20, n_classes=3, seed=6)
    Y[::6, 2] = 0  # an ignored sample per six for one class (masked rows in the batched systems)
    costs = (1e-3, 0.0625, 1.0, 100.0)
    ours = train_svms(X, Y, costs=costs)
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


@pytest.mark.parametrize("mixed_precision", [False, True])
def test_all_active_step_solves_the_weighted_ridge_system(
    mixed_precision: bool,
) -> None:
    """The preconditioned CG step equals a dense solve of (K_AA + diag(1 / (2 C cw_A))) beta_A = y_A."""
    from sslreg_svm.solver import _pcg_all_active, _top_eigenpairs

    X, Y = _data(n=50, dim=10, n_classes=2, seed=7)
    K = torch.from_numpy(X @ X.T + 1.0)
    y = torch.from_numpy(Y).double()
    cw = torch.where(y > 0, 2.0, 1.0)
    cw[::4, 1] = 0.0
    lam, U = _top_eigenpairs(K, 8)
    K32 = K.float() if mixed_precision else None  # float32 products refined to float64 accuracy
    beta, done, _ = _pcg_all_active(K, lam, U, cw, y, 0.5, torch.zeros_like(y), 500, K32)
    assert bool(done.all())
    for j in range(2):
        a = (cw[:, j] > 0).nonzero().squeeze(1)
        system = K[a][:, a] + torch.diag(1.0 / (2 * 0.5 * cw[a, j]))
        expected = torch.linalg.solve(system, y[a, j])
        assert torch.allclose(beta[a, j], expected, atol=1e-9)
        assert bool((beta[cw[:, j] == 0, j] == 0).all())


def test_loose_columns_stop_after_one_float32_round() -> None:
    """A loose column is solved to float32 accuracy only, a tight one beside it to float64 accuracy."""
    from sslreg_svm.solver import _pcg_all_active, _top_eigenpairs

    X, Y = _data(n=60, dim=12, n_classes=2, seed=8)
    K = torch.from_numpy(X @ X.T + 1.0)
    y = torch.from_numpy(Y).double()
    cw = torch.where(y > 0, 2.0, 1.0)
    lam, U = _top_eigenpairs(K, 8)
    loose = torch.tensor([True, False])
    beta, done, _ = _pcg_all_active(K, lam, U, cw, y, 4.0, torch.zeros_like(y), 500, K.float(), loose=loose)
    assert bool(done.all())
    errors = []
    for j in range(2):
        system = K + torch.diag(1.0 / (2 * 4.0 * cw[:, j]))
        expected = torch.linalg.solve(system, y[:, j])
        errors.append(float((beta[:, j] - expected).norm() / expected.norm()))
    # float32 accuracy: good enough for a Newton step that is not the last, and not refined further
    assert 1e-9 < errors[0] < 1e-4
    assert errors[1] < 1e-9
    only_loose, done, _ = _pcg_all_active(
        K,
        lam,
        U,
        cw,
        y,
        4.0,
        torch.zeros_like(y),
        500,
        K.float(),
        loose=torch.tensor([True, True]),
    )
    assert bool(done.all())
    assert torch.allclose(only_loose[:, 0], beta[:, 0], rtol=1e-4, atol=1e-6)
