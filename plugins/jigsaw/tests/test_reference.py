"""The reference Jigsaw (configs/paper/base/jigsaw_reference.yaml): its transform against tiles computed by hand,
its input contract, the paper's heads per trunk, and published permutation files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from sslreg_jigsaw import Jigsaw, JigsawConfig, generate_permutations

from sslreg import InputContract

PRESET = Path(__file__).resolve().parents[3] / "configs" / "paper" / "base" / "jigsaw_reference.yaml"
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def preset_options() -> dict:
    """The pretext options of the reference preset file, as a run would read them."""
    return yaml.safe_load(PRESET.read_text())["pretrain"]["pretext"]


@pytest.fixture
def reference(private_cache) -> Jigsaw:
    return Jigsaw(JigsawConfig(**{**preset_options(), "num_permutations": 10, "cache_dir": str(private_cache)}))


def test_the_preset_is_the_reference_recipe() -> None:
    config = JigsawConfig(**preset_options())
    assert (config.resize, config.image_size, config.flip, config.cell, config.tile) == (256, 255, True, 85, 64)
    assert (config.grayscale_prob, config.grayscale_scope) == (0.66, "image")
    assert (config.color_jitter, config.channel_shift, config.normalize) == (0.0, 0, "imagenet")
    assert config.head == "reference" and config.num_permutations == 2000


def test_a_plain_colour_gives_the_hand_computed_values(reference) -> None:
    """A 300x400 image of RGB (200, 100, 50): every tile is that colour in ImageNet units, or its luma when gray."""
    image = np.empty((300, 400, 3), dtype=np.uint8)
    image[:] = (200, 100, 50)
    colour = (np.array([200, 100, 50]) / 255 - MEAN) / STD  # (1.3070, -0.2850, -0.9330)
    luma = 0.299 * 200 + 0.587 * 100 + 0.114 * 50  # 124.2
    gray = (luma / 255 - MEAN) / STD  # (0.0090, 0.1387, 0.3603)
    np.testing.assert_allclose(colour, [1.3070, -0.2850, -0.9330], atol=1e-4)
    np.testing.assert_allclose(gray, [0.0090, 0.1387, 0.3603], atol=1e-4)
    grays = 0
    runs = 150
    for seed in range(runs):
        tiles = reference.make_tiles(image, np.random.default_rng(seed))
        assert tiles.shape == (9, 3, 64, 64) and tiles.dtype == np.float32
        per_channel = tiles.transpose(1, 0, 2, 3).reshape(3, -1)
        assert np.ptp(per_channel, axis=1).max() < 1e-5  # one value per channel for all 9 tiles: no per-tile jitter
        values = per_channel[:, 0]
        is_gray = np.allclose(values, gray, atol=1e-4)
        assert is_gray or np.allclose(values, colour, atol=1e-4), values
        grays += is_gray
    assert 0.54 < grays / runs < 0.78  # p = 0.66 per image (binomial, ±3 sd)


def positional_image(height: int, width: int) -> np.ndarray:
    """Every pixel tells where it is: R = x mod 256, G = y mod 256, B = (3x + 5y) mod 256."""
    y, x = np.mgrid[:height, :width]
    return np.stack([x % 256, y % 256, (3 * x + 5 * y) % 256], axis=-1).astype(np.uint8)


def hand_computed_tiles(image: np.ndarray, seed: int) -> tuple[np.ndarray, bool, bool]:
    """The reference transform written out step by step, with the draws in the documented order."""
    rng = np.random.default_rng(seed)
    height, width = image.shape[:2]  # short side already 256: nothing to resize
    top, left = int(rng.integers(height - 255 + 1)), int(rng.integers(width - 255 + 1))
    crop = image[top : top + 255, left : left + 255].astype(np.float64)
    flip = rng.random() < 0.5
    if flip:
        crop = crop[:, ::-1]
    gray = rng.random() < 0.66
    if gray:
        crop = np.repeat((crop @ np.array([0.299, 0.587, 0.114]))[..., None], 3, axis=2)
    normalised = (crop / 255 - MEAN) / STD  # the whole image, before cutting
    offsets = rng.integers(85 - 64 + 1, size=(9, 2))
    tiles = []
    for k in range(9):
        row, column = divmod(k, 3)  # cells numbered row by row
        y, x = 85 * row + offsets[k, 0], 85 * column + offsets[k, 1]
        tiles.append(normalised[y : y + 64, x : x + 64].transpose(2, 0, 1))
    return np.stack(tiles), flip, gray


def test_tiles_match_the_hand_computed_transform_on_a_fixed_image(reference) -> None:
    image = positional_image(256, 300)
    seen = set()
    for seed in range(12):
        expected, flip, gray = hand_computed_tiles(image, seed)
        tiles = reference.make_tiles(image, np.random.default_rng(seed))
        np.testing.assert_allclose(tiles, expected, atol=2e-5)
        seen.add((flip, gray))
    assert seen == {(False, False), (False, True), (True, False), (True, True)}  # every branch was checked


def test_the_short_side_is_resized_to_256_before_the_255_crop(private_cache) -> None:
    options = {**preset_options(), "num_permutations": 10, "cache_dir": str(private_cache), "flip": False}
    task = Jigsaw(JigsawConfig(**{**options, "grayscale_prob": 0.0}))
    image = positional_image(200, 250)
    resized = cv2.resize(image, (320, 256), interpolation=cv2.INTER_LINEAR)  # 200 -> 256, 250 -> 320
    rng = np.random.default_rng(5)
    top, left = int(rng.integers(2)), int(rng.integers(66))
    offsets = rng.integers(22, size=(9, 2))
    crop = (resized[top : top + 255, left : left + 255] / 255 - MEAN) / STD
    tiles = task.make_tiles(image, np.random.default_rng(5))
    for k in range(9):
        y, x = 85 * (k // 3) + offsets[k, 0], 85 * (k % 3) + offsets[k, 1]
        np.testing.assert_allclose(tiles[k], crop[y : y + 64, x : x + 64].transpose(2, 0, 1), atol=2e-5)


def test_input_contract_is_exactly_what_the_tiles_were_normalised_with(reference) -> None:
    contract = reference.input_contract()
    assert contract == InputContract() and contract.normalize == "mean_std" and contract.space == "rgb"
    image = positional_image(256, 256)
    seed = next(s for s in range(50) if not any(hand_computed_tiles(image, s)[1:]))  # no flip, no gray
    tiles = reference.make_tiles(image, np.random.default_rng(seed))
    whole = contract(image)  # what an evaluator feeds the trained trunk: the whole image, normalised
    rng = np.random.default_rng(seed)
    top, left, _, _ = int(rng.integers(2)), int(rng.integers(2)), rng.random(), rng.random()
    offsets = rng.integers(22, size=(9, 2))
    for k in range(9):
        y, x = top + 85 * (k // 3) + offsets[k, 0], left + 85 * (k % 3) + offsets[k, 1]
        np.testing.assert_allclose(tiles[k], whole[:, y : y + 64, x : x + 64], atol=2e-5)


def test_other_normalisations_keep_their_contracts(make_task) -> None:
    assert make_task(normalize="channel").input_contract().normalize == "per_channel"
    assert make_task(normalize="tile").input_contract().normalize == "per_image"
    assert make_task(normalize="none").input_contract() == InputContract(mean=(0.0,), std=(1.0,))


def backbone(name: str):
    pytest.importorskip("sslreg_backbones")
    from sslreg import get_registry

    return get_registry().build("backbone", {"name": name, "seed": 0})


def test_reference_head_on_the_jigsaw_alexnet_is_noroozis(reference) -> None:
    model = reference.build_model(backbone("alexnet_jigsaw"))
    head = model.head
    assert isinstance(head.pool, torch.nn.MaxPool2d) and head.pool.ceil_mode
    fc6 = head.tile_fc[0]
    assert (fc6.in_features, fc6.out_features) == (3 * 3 * 256, 1024)  # pool5 of a 64 px tile, flattened
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in head.modules())
    linears = [m for m in head.classifier if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(9 * 1024, 4096), (4096, 10)]
    assert [m.p for m in head.classifier if isinstance(m, torch.nn.Dropout)] == [0.5, 0.5]
    tiles = torch.from_numpy(reference.make_tiles(positional_image(256, 256), np.random.default_rng(0)))
    model.eval()
    with torch.no_grad():
        assert model(tiles[None]).shape == (1, 10)
    assert model.trunk.training is False  # the dry run that sized fc6 left the mode alone


def test_reference_head_on_resnet50_is_vissls(reference) -> None:
    model = reference.build_model(backbone("resnet50"))
    head = model.head
    assert head.pool.size == 1  # global average pooling of each tile's res5
    fc, bn, relu = head.tile_fc
    assert (fc.in_features, fc.out_features) == (2048, 1000)
    assert isinstance(bn, torch.nn.BatchNorm1d) and bn.num_features == 1000 and isinstance(relu, torch.nn.ReLU)
    linears = [m for m in head.classifier if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(9000, 10)]  # no fc7
    assert all(m.p == 0 for m in head.classifier if isinstance(m, torch.nn.Dropout))  # no dropout
    assert model.trunk.training  # a ResNet head needs no dry run; the trunk stays in training mode


def test_reference_head_refuses_head_options_it_would_ignore() -> None:
    with pytest.raises(ValueError, match="'reference' sets tile_dim"):
        JigsawConfig(head="reference", tile_dim=512)
    assert JigsawConfig(head="reference", tile_dim=1024).head == "reference"  # a dumped default is fine


def test_published_permutation_files_are_read_one_indexed(tmp_path, private_cache) -> None:
    perms = generate_permutations(10, seed=3)
    path = tmp_path / "hamming_perms_10_patches_9_max_avg.npy"
    np.save(path, perms.astype(np.int64) + 1)  # published files count tiles from 1
    pattern = str(tmp_path / "hamming_perms_{num_permutations}_patches_9_max_avg.npy")
    task = Jigsaw(JigsawConfig(num_permutations=10, perm_file=pattern, cache_dir=str(private_cache)))
    np.testing.assert_array_equal(task.permutations, perms)
    assert task.permutations.dtype == np.uint8 and task.stats.minimum >= 2
    np.save(tmp_path / "zero.npy", perms.astype(np.float64))  # 0-indexed (and float) files are taken as they are
    task = Jigsaw(JigsawConfig(num_permutations=10, perm_file=str(tmp_path / "zero.npy")))
    np.testing.assert_array_equal(task.permutations, perms)
    assert list(private_cache.glob("*n10_seed3*")) == []  # a file's set is never written to the cache


@pytest.mark.parametrize(
    ("content", "num_permutations", "message"),
    [
        (None, 10, "does not exist"),
        (np.arange(9)[None].repeat(2, 0) + 1, 2, "lists the same permutation twice"),
        (np.array([[1, 2, 3, 4, 5, 6, 7, 8, 8]]).repeat(2, 0), 2, "row 0 is not a permutation"),
        (np.arange(8)[None], 2, r"has shape \(1, 8\)"),
        (np.array([np.arange(9), np.arange(9)[::-1]]), 3, "holds 2 permutations, but num_permutations is 3"),
    ],
)
def test_bad_permutation_files_are_one_line_user_errors(tmp_path, content, num_permutations, message) -> None:
    from sslreg import UserError

    path = tmp_path / "perms.npy"
    if content is not None:
        np.save(path, content)
    with pytest.raises(UserError, match=message) as error:
        Jigsaw(JigsawConfig(num_permutations=num_permutations, perm_file=str(path)))
    assert "\n" not in str(error.value) and str(error.value).startswith("perm_file:")
