"""The pieces of linear_probe: preprocessing, heads, metrics, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sslreg_linear.data import StackTargets
from sslreg_linear.heads import LinearHeads
from sslreg_linear.metrics import mean_average_precision, topk_accuracy
from sslreg_linear.transforms import ImagePipeline, random_resized_crop, resize_center_crop

from sslreg import Collate, InputContract, PoolSpec, Preprocess

L_ONLY = InputContract(space="lab_l", mean=(50.0,), std=(50.0,))


def test_random_resized_crop_size_and_determinism() -> None:
    image = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    first = random_resized_crop(image, 24, np.random.default_rng(5))
    again = random_resized_crop(image, 24, np.random.default_rng(5))
    other = random_resized_crop(image, 24, np.random.default_rng(6))
    assert first.shape == (24, 24, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_random_resized_crop_falls_back_to_a_centre_crop() -> None:
    image = np.zeros((10, 100, 3), np.uint8)
    image[:, 45:55] = 255  # only the middle is white
    crop = random_resized_crop(image, 8, np.random.default_rng(0), scale=(1.0, 1.0))  # impossible at this aspect
    assert crop.shape == (8, 8, 3)
    assert crop.mean() > 50  # the centred, aspect-trimmed window keeps the white middle


def test_resize_center_crop_keeps_the_centre() -> None:
    image = np.zeros((60, 120, 3), np.uint8)
    image[20:40, 50:70] = 255
    crop = resize_center_crop(image, 32, 1.0)
    assert crop.shape == (32, 32, 3)
    assert crop[16, 16].tolist() == [255, 255, 255] and crop[0, 0].tolist() == [0, 0, 0]


def test_preprocess_normalises_rgb_and_gives_l_for_one_channel_trunks() -> None:
    mean_colour = np.full((8, 8, 3), [124, 116, 104], np.uint8)  # ImageNet mean colour
    rgb = ImagePipeline(Preprocess(4), train=True)(mean_colour, np.random.default_rng(0))
    assert rgb.shape == (3, 4, 4) and rgb.abs().max() < 0.01
    black, white = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)
    lightness = ImagePipeline(Preprocess(4, L_ONLY), train=False)
    assert lightness(black, None).shape == (1, 4, 4)
    assert torch.allclose(lightness(black, None), torch.tensor(-1.0), atol=1e-3)  # L = 0
    assert torch.allclose(lightness(white, None), torch.tensor(1.0), atol=1e-3)  # L = 100


def test_preprocess_train_and_test() -> None:
    image = np.random.default_rng(0).integers(0, 256, (50, 70), dtype=np.uint8)  # grey input is accepted
    train = ImagePipeline(Preprocess(32), train=True)
    test = ImagePipeline(Preprocess(32), train=False)
    assert train(image, np.random.default_rng(1)).shape == (3, 32, 32)
    assert torch.equal(test(image, np.random.default_rng(1)), test(image, np.random.default_rng(2)))


def test_heads_shapes_init_and_weight_decay_groups() -> None:
    specs = {"a": PoolSpec(2, 2, 0, 3), "b": PoolSpec(2, 2, 0, 1)}
    heads = LinearHeads({"a": 4, "b": 8}, specs, num_classes=5, seed=0)
    out = heads({"a": torch.randn(6, 4 * 9), "b": torch.randn(6, 8)})
    assert {layer: tuple(v.shape) for layer, v in out.items()} == {"a": (6, 5), "b": (6, 5)}
    assert heads["a"].fc.weight.std().item() == pytest.approx(0.01, rel=0.3)
    assert torch.equal(heads["a"].fc.weight, LinearHeads({"a": 4, "b": 8}, specs, 5, seed=0)["a"].fc.weight)
    decay, no_decay = heads.param_groups(1e-4)
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    assert sum(p.numel() for p in decay["params"]) == (36 * 5 + 5) + (8 * 5 + 5)
    assert sum(p.numel() for p in no_decay["params"]) == 2 * (4 + 8)  # BatchNorm scale and shift
    plain = LinearHeads({"a": 4}, specs, num_classes=5, batch_norm=False)
    assert plain["a"].norm is None and len(plain.param_groups(1e-4)) == 1


def test_topk_accuracy() -> None:
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.5, 0.3, 0.2]])
    labels = torch.tensor([1, 0, 1, 2])
    assert topk_accuracy(logits, labels, 1) == pytest.approx(50.0)
    assert topk_accuracy(logits, labels, 2) == pytest.approx(75.0)
    assert topk_accuracy(logits, labels, 5) == pytest.approx(100.0)


def test_map_ignores_difficult_and_classes_without_positives() -> None:
    scores = torch.tensor([[0.9, 0.1, 0.3], [0.8, 0.7, 0.2], [0.1, 0.9, 0.1], [0.5, 0.2, 0.4]])
    targets = torch.tensor([[1, -1, -1], [-1, 0, -1], [1, 1, -1], [-1, -1, -1]])
    # class 0: ranked 0.9(+), 0.8(-), 0.5(-), 0.1(+) -> AP = (1 + 2/4) / 2 = 0.75
    # class 1: the difficult 0.7 is dropped -> 0.9(+) first -> AP = 1; class 2 has no positive -> left out
    assert mean_average_precision(scores, targets) == pytest.approx(87.5)
    with pytest.raises(ValueError, match="no class has a positive"):
        mean_average_precision(scores, -torch.ones_like(targets))


def test_collate_skips_unreadable_and_checks_labels() -> None:
    image = torch.zeros(3, 4, 4)
    batch = Collate(StackTargets("class", 3, "toy"))([(image, 2), None, (image, 0)])
    images, targets = batch.data
    assert batch.bad == 1 and images.shape == (2, 3, 4, 4) and targets.tolist() == [2, 0]
    empty = Collate(StackTargets("class", 3, "toy"))([None, None])
    assert empty.data is None and empty.bad == 2
    with pytest.raises(ValueError, match="toy: class label 3 outside 0..2"):
        StackTargets("class", 3, "toy")([(image, 3)])
    with pytest.raises(ValueError, match="expected \\(3,\\)"):
        StackTargets("multilabel", 3, "toy")([(image, np.array([1, -1]))])
