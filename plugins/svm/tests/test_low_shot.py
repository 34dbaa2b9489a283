"""low_shot: the per-class draws, the reference's aggregation over draws, and the evaluator end to end."""

from __future__ import annotations

import numpy as np
import pytest
from sslreg_svm.low_shot import LowShot, LowShotOutcome, draw_low_shot, run_low_shot, shortfalls


def synthetic(n: int, classes: int = 3, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features = sum of the present classes' centres + noise; labels 1/-1 with some 0 (difficult)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(classes, dim)) * 3
    present = rng.random((n, classes)) < 0.35
    features = present.astype(float) @ centres + rng.normal(size=(n, dim))
    labels = np.where(present, 1, -1).astype(np.int8)
    labels[rng.random((n, classes)) < 0.05] = 0
    return features.astype(np.float32), labels


def test_draw_takes_k_positives_and_c_minus_1_k_absent_never_difficult() -> None:
    _, labels = synthetic(300)
    draw = draw_low_shot(labels, 4, np.random.default_rng(0))
    assert ((draw == 1).sum(0) == 4).all() and ((draw == -1).sum(0) == 8).all()
    assert (labels[draw == 1] == 1).all() and (labels[draw == -1] == -1).all()
    np.testing.assert_array_equal(draw, draw_low_shot(labels, 4, np.random.default_rng(0)))
    assert not np.array_equal(draw, draw_low_shot(labels, 4, np.random.default_rng(1)))


def test_draw_takes_what_there_is_and_records_it() -> None:
    labels = np.array([[1, -1], [-1, -1], [0, 1], [-1, -1]], dtype=np.int8)
    draw = draw_low_shot(labels, 2, np.random.default_rng(0))
    assert (draw[:, 0] == [1, -1, 0, -1]).all()  # one positive, both absent ones; the difficult one ignored
    assert shortfalls(labels, 2, ["a", "b"]) == {
        "a": {"positives": 1, "negatives": 2},
        "b": {"positives": 1, "negatives": 3},
    }
    assert shortfalls(labels, 1, ["a", "b"]) == {}


def test_best_cost_is_argmax_of_mean_over_draws() -> None:
    per_cost = np.array([[[0.5, 0.9, 0.1]], [[0.6, 0.4, 0.2]]])  # 2 draws, 1 shot, 3 costs
    cost, values = LowShotOutcome([1], [0.1, 1.0, 10.0], per_cost).best(0)
    assert cost == 1 and values.tolist() == [0.9, 0.4]  # one cost for all draws, not each draw's best


def test_run_low_shot_learns_and_is_deterministic() -> None:
    train_x, train_y = synthetic(400, seed=1)
    test_x, test_y = synthetic(200, seed=2)
    kwargs = dict(shots=[1, 8], samples=2, seed=3, costs=[0.01, 0.1, 1.0])
    outcome = run_low_shot(train_x, train_y, test_x, test_y, **kwargs)
    assert outcome.score_per_cost.shape == (2, 2, 3)
    assert ((outcome.score_per_cost >= 0) & (outcome.score_per_cost <= 1)).all()
    assert outcome.best(1)[1].mean() > 0.8  # 8 shots of well-separated classes
    again = run_low_shot(train_x, train_y, test_x, test_y, **kwargs)
    np.testing.assert_array_equal(outcome.score_per_cost, again.score_per_cost)


def test_low_shot_evaluator_end_to_end(trunk, context, voc_data) -> None:
    options = dict(image_size=32, shots=[1, 2], samples=2, costs=[0.1, 1.0], batch_size=8)
    config = LowShot.Config(name="low_shot", **voc_data, **options)
    results = LowShot(config).evaluate(trunk, context)
    assert [result.metric for result in results] == ["low-shot mAP k=1", "low-shot mAP k=2"]
    for result in results:
        assert set(result.layers) == {"l1", "l2"}
        for score in result.layers.values():
            assert 0.0 <= score.mean <= 100.0 and score.n == 2 and score.std is not None
        assert result.details["best_cost"]["l1"] in (0.1, 1.0)
    calls = trunk.calls
    again = LowShot(config).evaluate(trunk, context)
    assert trunk.calls == calls  # features came from the cache
    assert [r.layers for r in again] == [r.layers for r in results]


def test_low_shot_config_is_checked() -> None:
    with pytest.raises(ValueError):
        LowShot.Config(name="low_shot", shots=[0])
    with pytest.raises(ValueError):
        LowShot.Config(name="low_shot", samples=0)


def test_classes_without_positives_are_left_out_of_the_mean() -> None:
    train_x, train_y = synthetic(300, seed=4)
    test_x, test_y = synthetic(120, seed=5)
    train_y[:, 2] = -1  # nothing to draw a positive from
    outcome = run_low_shot(train_x, train_y, test_x, test_y, shots=[2], samples=1, costs=[0.1])
    assert outcome.excluded == {2: "no positive in train"}
    kept = run_low_shot(train_x[:, :], train_y[:, :2], test_x, test_y[:, :2], shots=[2], samples=1, costs=[0.1])
    assert np.isfinite(outcome.score_per_cost).all() and 0 < outcome.score_per_cost[0, 0, 0] <= 1
    assert kept.excluded == {}
    with pytest.raises(ValueError, match="no class can be scored"):
        run_low_shot(train_x, -np.ones_like(train_y), test_x, test_y, shots=[1], samples=1, costs=[0.1])
