"""voc07_svm: label handling, the protocol on ready features, and the evaluator end to end on a VOC folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sslreg_svm.common import training_labels
from sslreg_svm.low_shot import LowShot
from sslreg_svm.voc07_svm import VOC07SVM, run_voc07_svm

from sslreg import UserError
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


@pytest.mark.parametrize("evaluator", [VOC07SVM, LowShot])
def test_non_finite_extracted_features_are_one_line_user_errors(evaluator, nan_trunk, context, voc_data) -> None:
    options = {"shots": [1], "samples": 1} if evaluator is LowShot else {}
    config = evaluator.Config(name=evaluator.name, **voc_data, image_size=32, costs=[0.1], batch_size=8, **options)
    with pytest.raises(UserError) as raised:
        evaluator(config).evaluate(nan_trunk, context)
    message = str(raised.value)
    assert "\n" not in message and "layer l2: features has 3 non-finite values (3 NaN, 0 inf)" in message
    assert "train data 'voc07'" in message


@pytest.mark.parametrize("evaluator", [VOC07SVM, LowShot])
def test_evaluators_leave_out_classes_without_test_positives(
    evaluator, trunk, context, voc_data_without, capsys: pytest.CaptureFixture[str]
) -> None:
    data = voc_data_without("cow", "sheep")
    options = {"shots": [1], "samples": 1} if evaluator is LowShot else {}
    config = evaluator.Config(name=evaluator.name, **data, image_size=32, costs=[0.1], batch_size=8, **options)
    [result, *_] = evaluator(config).evaluate(trunk, context)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{evaluator.name}: 2 classes left out of the mAP: cow (no positive in test)" in err
    assert result.details["excluded_classes"] == {"cow": "no positive in test", "sheep": "no positive in test"}
    for score in result.layers.values():
        assert np.isfinite(score.mean)
    if evaluator is VOC07SVM:
        assert result.details["per_class_ap"]["l1"]["cow"] is None
        json.dumps(result.details, allow_nan=False)  # JSON-safe: null, never NaN


def test_run_voc07_svm_leaves_out_untrainable_classes() -> None:
    rng = np.random.default_rng(3)
    labels = np.where(rng.random((150, 3)) < 0.4, 1, -1).astype(np.int8)
    labels[:100, 2] = -1  # class 2: no positive in train
    features = labels @ np.eye(3, 8) * 2 + rng.normal(size=(150, 8)) * 0.3
    outcome = run_voc07_svm(features[:100], labels[:100], features[100:], labels[100:], costs=COSTS)
    assert outcome.excluded == {2: "no positive in train"}
    assert np.isnan(outcome.per_class_ap[2]) and np.isnan(outcome.chosen_costs[2]) and np.isnan(outcome.cv_ap[2]).all()
    assert outcome.mean_ap == pytest.approx(outcome.per_class_ap[:2].mean())
    with pytest.raises(UserError, match="no class can be scored"):
        run_voc07_svm(features[:100], -np.ones((100, 3)), features[100:], labels[100:], costs=COSTS)
