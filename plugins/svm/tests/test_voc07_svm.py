"""voc07_svm: label handling, the protocol on ready features, and the evaluator end to end on a VOC folder."""

from __future__ import annotations

import numpy as np
import pytest
from sslreg_svm.common import training_labels
from sslreg_svm.voc07_svm import VOC07SVM, run_voc07_svm

from sslreg.plugins import get_registry

COSTS = [0.01, 0.1, 1.0, 10.0]


def test_difficult_counts_as_negative_in_training() -> None:
    labels = np.array([[1, 0, -1], [0, 1, -1]], dtype=np.int8)
    np.testing.assert_array_equal(training_labels(labels), [[1, -1, -1], [-1, 1, -1]])


def test_protocol_on_separable_features() -> None:
    rng = np.random.default_rng(0)
    labels = np.where(rng.random((150, 2)) < 0.4, 1, -1).astype(np.int8)
    features = labels @ np.eye(2, 8) * 2 + rng.normal(size=(150, 8)) * 0.3
    test_labels = labels[100:].copy()
    test_labels[0, 0] = 0  # difficult at test: left out of class 0's AP
    outcome = run_voc07_svm(features[:100], labels[:100], features[100:], test_labels, costs=COSTS)
    assert outcome.mean_ap > 0.95 and outcome.per_class_ap.shape == (2,)
    assert outcome.cv_ap.shape == (2, len(COSTS)) and set(outcome.chosen_costs) <= set(COSTS)
    flipped = features[100:].copy()
    flipped[0] = -flipped[0]  # a wrong score on the difficult image changes nothing for class 0
    again = run_voc07_svm(features[:100], labels[:100], flipped, test_labels, costs=COSTS)
    assert again.per_class_ap[0] == outcome.per_class_ap[0]


def test_sklearn_solver_agrees_on_separable_features() -> None:
    rng = np.random.default_rng(1)
    labels = np.where(rng.random((90, 2)) < 0.4, 1, -1).astype(np.int8)
    features = labels @ np.eye(2, 6) + rng.normal(size=(90, 6)) * 0.5
    args = (features[:60], labels[:60], features[60:], labels[60:])
    fast = run_voc07_svm(*args, costs=COSTS)
    reference = run_voc07_svm(*args, costs=COSTS, solver_kind="sklearn")
    np.testing.assert_allclose(fast.cv_ap, reference.cv_ap, atol=2e-3)
    assert abs(fast.mean_ap - reference.mean_ap) < 2e-3


def test_registered_with_checked_options() -> None:
    entry = get_registry().get("evaluator", "voc07_svm")
    assert entry.cls is VOC07SVM and entry.summary
    config = VOC07SVM.Config(name="voc07_svm")
    assert len(config.costs) == 26 and config.folds == 3 and config.pos_weight == 2.0
    assert config.train.name == "embedded_shapes" and config.train.model_extra == {"split": "train"}
    for bad in ({"costs": [0.1, -1.0]}, {"folds": 1}, {"solver": "liblinear"}, {"image_size": 4}):
        with pytest.raises(ValueError):
            VOC07SVM.Config(name="voc07_svm", **bad)


def test_end_to_end_on_voc_folder(trunk, context, voc_data) -> None:
    config = VOC07SVM.Config(name="voc07_svm", **voc_data, image_size=32, costs=[0.1, 1.0], batch_size=8)
    [result] = VOC07SVM(config).evaluate(trunk, context)
    assert result.metric == "VOC07 SVM mAP" and set(result.layers) == {"l1", "l2"}
    for layer, score in result.layers.items():
        assert 0.0 <= score.mean <= 100.0
        assert len(result.details["per_class_ap"][layer]) == 20
        assert set(result.details["chosen_costs"][layer].values()) <= {0.1, 1.0}
    assert result.details["train_images"] == 12 and result.details["test_images"] == 12
    calls = trunk.calls
    [again] = VOC07SVM(config).evaluate(trunk, context)
    assert trunk.calls == calls  # both splits came from the feature cache: no forward pass
    assert again.layers == result.layers and again.details == result.details
