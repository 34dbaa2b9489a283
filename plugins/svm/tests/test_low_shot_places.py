"""low_shot on class-labelled data (Places205): k images per class, one-vs-rest SVMs, top-1 of the argmax."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sslreg_svm import low_shot
from sslreg_svm.low_shot import (
    LowShot,
    class_pools,
    class_shortfalls,
    draw_class_shots,
    one_vs_rest,
    run_class_low_shot,
    top1_per_cost,
)
from sslreg_svm.solver import train_svms


def blobs(per_class: int, classes: int = 4, dim: int = 12, noise: float = 0.05, seed: int = 0):
    """Well-separated classes: each row is its class's centre plus a little noise; labels in class order."""
    centres = np.random.default_rng(42).normal(size=(classes, dim))
    labels = np.repeat(np.arange(classes), per_class)
    rng = np.random.default_rng(seed)
    return (centres[labels] + noise * rng.normal(size=(len(labels), dim))).astype(np.float32), labels


def test_a_draw_has_exactly_k_images_of_every_class_and_depends_only_on_the_seed():
    labels = np.random.default_rng(0).integers(0, 5, 400)
    pools = class_pools(labels, 5)
    assert [len(pool) for pool in pools] == np.bincount(labels, minlength=5).tolist()
    for k in (1, 2, 4, 8, 16):
        rows = draw_class_shots(pools, k, np.random.default_rng((3, 0, k)))
        assert np.bincount(labels[rows], minlength=5).tolist() == [k] * 5
        assert len(set(rows.tolist())) == len(rows)  # without replacement
        np.testing.assert_array_equal(rows, draw_class_shots(pools, k, np.random.default_rng((3, 0, k))))
        assert not np.array_equal(rows, draw_class_shots(pools, k, np.random.default_rng((4, 0, k))))


def test_a_class_with_fewer_than_k_images_gives_all_it_has_and_is_recorded():
    labels = np.array([0, 0, 0, 1, 2, 2, 2])
    rows = draw_class_shots(class_pools(labels, 4), 2, np.random.default_rng(0))
    assert np.bincount(labels[rows], minlength=4).tolist() == [2, 1, 2, 0]
    assert class_shortfalls(labels, 2, ["a", "b", "c", "d"]) == {"b": {"positives": 1}, "d": {"positives": 0}}
    assert class_shortfalls(labels, 1, ["a", "b", "c", "d"]) == {"d": {"positives": 0}}


def test_one_vs_rest_targets():
    assert one_vs_rest(np.array([2, 0]), 3).tolist() == [[-1, -1, 1], [1, -1, -1]]


def test_top1_is_the_argmax_over_the_class_svms_in_chunks(monkeypatch):
    x, y = blobs(10)
    solution = train_svms(torch.as_tensor(x, dtype=torch.float64), one_vs_rest(y, 4), [0.01, 10.0])
    whole = top1_per_cost(solution, x, y)
    monkeypatch.setattr(low_shot, "TEST_CHUNK", 7)
    np.testing.assert_array_equal(top1_per_cost(solution, x, y), whole)
    scores = solution.decision(torch.as_tensor(x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-5)))
    expected = (scores.argmax(dim=1).numpy() == y[:, None]).mean(axis=0)
    np.testing.assert_allclose(whole, expected)


def test_separable_classes_reach_top1_100_from_one_shot_and_repeat_per_seed():
    train_x, train_y = blobs(30, seed=1)
    test_x, test_y = blobs(10, seed=2)
    options = dict(num_classes=4, shots=[1, 4], samples=3, seed=5, costs=[0.1, 1.0, 10.0])
    outcome = run_class_low_shot(train_x, train_y, test_x, test_y, **options)
    assert outcome.score_per_cost.shape == (3, 2, 3)
    for shot_index in range(2):
        assert outcome.best(shot_index)[1].tolist() == [1.0, 1.0, 1.0]
    again = run_class_low_shot(train_x, train_y, test_x, test_y, **options)
    np.testing.assert_array_equal(outcome.score_per_cost, again.score_per_cost)


def test_overlapping_classes_score_between_chance_and_perfect_and_draws_differ():
    train_x, train_y = blobs(40, noise=1.5, seed=1)
    test_x, test_y = blobs(25, noise=1.5, seed=2)
    outcome = run_class_low_shot(
        train_x, train_y, test_x, test_y, num_classes=4, shots=[1, 16], samples=4, seed=0, costs=[0.1, 1.0]
    )
    one, sixteen = outcome.best(0)[1], outcome.best(1)[1]
    assert len(set(one.tolist())) > 1  # independent draws give different classifiers
    assert 0.25 < sixteen.mean() < 1.0 and sixteen.mean() > one.mean()  # more shots help


def test_places205_low_shot_end_to_end(tmp_path, make_trunk, context, make_places):
    pytest.importorskip("sslreg_datasets")
    root = str(make_places(tmp_path / "places205"))
    data = {split: {"name": "places205", "root": root, "split": name, "num_classes": 4} for split, name in
            (("train", "train"), ("test", "val"))}  # fmt: skip
    config = LowShot.Config(name="low_shot", **data, image_size=32, samples=2, costs=[0.1, 1.0], batch_size=8)
    assert config.shots is None  # the paper's k for the data's target kind
    trunk = make_trunk()
    results = LowShot(config).evaluate(trunk, context)
    assert [result.metric for result in results] == [f"low-shot top-1 k={k}" for k in (1, 2, 4, 8, 16)]
    for result in results:
        assert set(result.layers) == {"l1", "l2"}
        assert all(0.0 <= score.mean <= 100.0 and score.n == 2 for score in result.layers.values())
        assert result.details["classes"] == 4 and result.details["test_images"] == 12
    assert results[0].details["shortfalls"] == {}
    assert results[-1].details["shortfalls"] == {f"scene{c}": {"positives": 6} for c in range(4)}
    assert all(score.mean == 100.0 for r in results for score in r.layers.values())  # 4 solid colours
    calls = trunk.calls
    again = LowShot(config).evaluate(trunk, context)
    assert trunk.calls == calls  # features came from the cache
    assert [r.layers for r in again] == [r.layers for r in results]


def test_class_and_multilabel_data_cannot_be_mixed(tmp_path, make_trunk, context, voc_data, make_places):
    pytest.importorskip("sslreg_datasets")
    root = str(make_places(tmp_path / "places205", 2, 1))
    config = LowShot.Config(
        name="low_shot",
        train={"name": "places205", "root": root, "num_classes": 4},
        test=voc_data["test"],
        costs=[1.0],
        samples=1,
    )
    with pytest.raises(ValueError, match="expected 'class'"):
        LowShot(config).evaluate(make_trunk(), context)
