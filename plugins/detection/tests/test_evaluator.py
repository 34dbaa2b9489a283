"""voc07_detection end to end on tiny demo data: well-formed results, determinism, runs, the trunk's contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import BaseModel
from sslreg_detection.data import DetectionTransform
from sslreg_detection.evaluator import DetectionConfig, VocDetectionEvaluator, lr_factor, original_scale, truth_of
from sslreg_detection.metric import per_class_ap

from sslreg import BackboneConfig, EvalContext, InputContract, Sample, UserError, get_registry
from sslreg.testing import TinyBackbone, check_evaluator


def build(spec):
    options = spec.model_dump() if isinstance(spec, BaseModel) else dict(spec)
    return get_registry().build("dataset", options)


def tiny_options(root: Path, **more) -> dict:
    data = {"name": "embedded_detection", "root": str(root), "num_trainval": 8, "num_test": 4, "size": 48}
    options = {
        "train": {**data, "split": "trainval"}, "test": {**data, "split": "test"},
        "short_side": 48, "max_side": 80, "iterations": 3, "lr_steps": [2], "warmup_iters": 1, "batch_size": 2,
        "anchor_sizes": [8, 16, 32], "rpn_batch_size": 16, "rpn_pre_nms_train": 100, "rpn_post_nms_train": 30,
        "rpn_pre_nms_test": 100, "rpn_post_nms_test": 20, "roi_batch_size": 8, "roi_resolution": 4, "mlp_dim": 32,
    }  # fmt: skip
    return {**options, **more}


def context(tmp_path: Path, seed: int = 0) -> EvalContext:
    return EvalContext(device=torch.device("cpu"), cache_dir=tmp_path / "cache", seed=seed, build_dataset=build)


def test_conformance_with_the_kit(tmp_path: Path):
    [result] = check_evaluator(
        VocDetectionEvaluator, {**tiny_options(tmp_path / "d"), "layers": ["l2"]}, build_dataset=build
    )
    assert result.evaluator == "voc07_detection" and result.metric == "mAP" and list(result.layers) == ["l2"]
    details = result.details
    assert details["layout"] == "fallback" and details["tap"] == "l2"
    assert details["train_images"] == 8 and details["test_images"] == 4
    assert set(details["per_class_ap"]) == {"circle", "triangle", "star", "cross", "ring"}
    assert 0.0 <= result.layers["l2"].mean <= 100.0


def test_same_seed_same_result_and_runs_give_mean_and_std(tmp_path: Path):
    options = DetectionConfig(name="voc07_detection", **tiny_options(tmp_path / "d", runs=2))
    torch.manual_seed(0)
    trunk = TinyBackbone().freeze()
    first = VocDetectionEvaluator(options).evaluate(trunk, context(tmp_path))[0]
    again = VocDetectionEvaluator(options).evaluate(trunk, context(tmp_path))[0]
    assert first.details["runs"] == again.details["runs"]  # losses, per-class APs: all the same
    score = first.layers["l2"]
    assert score == again.layers["l2"] and score.n == 2 and score.std is not None
    runs = first.details["runs"]
    assert [run["seed"] for run in runs] == [0, 1]
    assert score.mean == pytest.approx(np.mean([run["mAP"] for run in runs]))
    assert runs[0]["final_losses"] != runs[1]["final_losses"]  # two seeds, two detectors


def test_the_runner_rng_is_left_alone(tmp_path: Path):
    options = DetectionConfig(name="voc07_detection", **tiny_options(tmp_path / "d", iterations=1))
    trunk = TinyBackbone().freeze()
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    VocDetectionEvaluator(options).evaluate(trunk, context(tmp_path))
    assert torch.equal(torch.rand(3), expected)


def test_images_get_the_trunks_contract_not_imagenet_statistics():
    contract = InputContract(normalize="per_image")
    transform = DetectionTransform(contract, short_side=20, max_side=40, train=False)
    image = np.random.default_rng(0).integers(0, 255, (10, 15, 3), dtype=np.uint8)
    target = {"boxes": np.float32([[1, 2, 5, 6]]), "labels": np.int64([2]), "difficult": np.bool_([False])}
    item = transform(Sample(image, target, "k"), np.random.default_rng(0))
    assert item.image.shape == (3, 20, 30) and item.scale == (2.0, 2.0)
    assert abs(float(item.image.mean())) < 1e-4 and float(item.image.std()) == pytest.approx(1.0, abs=1e-3)
    torch.testing.assert_close(item.target["boxes"], torch.tensor([[2.0, 4.0, 10.0, 12.0]]))
    assert item.target["labels"].tolist() == [3]  # torchvision: 0 is the background
    lab = DetectionTransform(InputContract(space="lab_l"), 20, 40, train=False)
    assert lab(Sample(image, target, "k"), np.random.default_rng(0)).image.shape == (1, 20, 30)


def test_training_flips_and_drops_difficult_boxes():
    transform = DetectionTransform(InputContract(), short_side=10, max_side=40, train=True)
    image = np.zeros((10, 20, 3), np.uint8)
    target = {"boxes": np.float32([[1, 2, 5, 6], [0, 0, 4, 4]]), "labels": np.int64([0, 1]),
              "difficult": np.bool_([False, True])}  # fmt: skip
    boxes = set()
    for seed in range(8):
        item = transform(Sample(image, target, "k"), np.random.default_rng(seed))
        assert item.target["labels"].tolist() == [1]
        boxes.add(tuple(item.target["boxes"][0].tolist()))
    assert boxes == {(1.0, 2.0, 5.0, 6.0), (15.0, 2.0, 19.0, 6.0)}


def test_a_one_channel_trunk_end_to_end(tmp_path: Path):
    trunk = TinyBackbone(BackboneConfig(name="tiny", in_channels=1))
    trunk.input_contract = InputContract(space="lab_l")
    options = DetectionConfig(name="voc07_detection", **tiny_options(tmp_path / "d", iterations=2))
    [result] = VocDetectionEvaluator(options).evaluate(trunk.freeze(), context(tmp_path))
    assert list(result.layers) == ["l2"]


def test_data_without_boxes_is_a_clear_error(tmp_path: Path):
    options = DetectionConfig(
        name="voc07_detection", train={"name": "embedded_shapes", "num_images": 4},
        test={"name": "embedded_shapes", "split": "test", "num_images": 4},
    )  # fmt: skip
    with pytest.raises(UserError, match="has 'multilabel' targets; detection needs boxes"):
        VocDetectionEvaluator(options).evaluate(TinyBackbone().freeze(), context(tmp_path))


def test_options_are_checked():
    with pytest.raises(ValueError, match="lr_steps"):
        DetectionConfig(name="voc07_detection", lr_steps=[10, 5])
    with pytest.raises(ValueError, match="max_side"):
        DetectionConfig(name="voc07_detection", short_side=600, max_side=500)
    paper = DetectionConfig(name="voc07_detection")
    assert (paper.short_side, paper.lr, paper.iterations, paper.lr_steps, paper.freeze_at) == (
        600,
        0.002,
        50_000,
        [38_000],
        "res4",
    )


def test_schedule_warms_up_then_steps():
    cfg = DetectionConfig(name="voc07_detection", warmup_iters=10, lr_steps=[20, 30])
    assert lr_factor(0, cfg) == pytest.approx(1 / 3)
    assert lr_factor(5, cfg) == pytest.approx(1 / 3 * 0.5 + 0.5)
    assert [lr_factor(s, cfg) for s in (10, 19, 20, 30)] == pytest.approx([1.0, 1.0, 0.1, 0.01])


def test_detections_go_back_to_the_original_pixels_and_score_against_the_original_truth():
    transform = DetectionTransform(InputContract(), short_side=20, max_side=60, train=False)
    image = np.zeros((10, 16, 3), np.uint8)
    truth = {"boxes": np.float32([[1, 2, 9, 8]]), "labels": np.int64([1]), "difficult": np.bool_([False])}
    item = transform(Sample(image, truth, "k"), np.random.default_rng(0))
    assert item.image.shape[1:] == (20, 32)
    resized = item.target["boxes"]  # what a perfect detector would output on the resized image
    output = {"boxes": torch.cat([resized, torch.tensor([[30.0, 0.0, 40.0, 25.0]])]),
              "scores": torch.tensor([0.9, 0.5]), "labels": torch.tensor([2, 1])}  # fmt: skip
    found = original_scale(output, item)
    np.testing.assert_allclose(found.boxes, [[1, 2, 9, 8], [15, 0, 16, 10]], atol=1e-5)  # clipped to 16x10
    assert found.labels.tolist() == [1, 0]
    assert per_class_ap([found], [truth_of(item)], 2, mode="all")[1] == pytest.approx(1.0)
