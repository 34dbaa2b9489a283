"""Input contracts: a pretext task declares how it feeds its trunk, the weights carry it, evaluators apply it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sslreg_colorization.lab import l_to_input, rgb_to_lab
from sslreg_jigsaw import tiles as T

from sslreg import IMAGENET_MEAN, IMAGENET_STD, InputContract, Preprocess, build_trunk
from sslreg.config import load_plan
from sslreg.runner import run_plan
from sslreg.runner.evaluation import evaluated_trunk
from sslreg.trunk import contract_of_file

sys.path.insert(0, str(Path(__file__).parent))
import runner_helpers as helpers

L_ONLY = InputContract(space="lab_l", mean=(50.0,), std=(50.0,))


def test_preprocess_rgb_and_lightness() -> None:
    white = np.full((10, 20, 3), 255, np.uint8)
    rgb = Preprocess(8)(white)
    assert rgb.shape == (3, 8, 8) and rgb.dtype == np.float32
    expected = (1.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(rgb[:, 0, 0], expected, rtol=1e-5)
    assert np.allclose(Preprocess(8, L_ONLY)(white), 1.0, atol=1e-3)  # white: L = 100 -> +1
    assert np.allclose(Preprocess(8, L_ONLY)(np.zeros((5, 5, 3), np.uint8)), -1.0, atol=1e-3)
    caffe = InputContract(space="lab_l", mean=(50.0,), std=(1.0,))
    assert np.allclose(Preprocess(8, caffe)(white), 50.0, atol=0.05)  # the Caffe reference's L - 50
    assert InputContract(space="lab_l") == L_ONLY
    with pytest.raises(ValueError, match="std: 3 values for 1 channel"):
        InputContract(space="lab_l", std=IMAGENET_STD)


def test_per_image_normalisation_is_jigsaws_per_tile_normalisation() -> None:
    tile = np.random.default_rng(0).integers(0, 256, (27, 27, 3), dtype=np.uint8)
    tile[..., 2] = 40  # a flat channel: divided by 1, not by ~0
    expected = T.normalise(T.to_float_chw(tile[None]), "channel")[0]
    np.testing.assert_allclose(InputContract(normalize="per_channel")(tile), expected, atol=1e-5)
    whole = T.normalise(T.to_float_chw(tile[None]), "tile")[0]
    np.testing.assert_allclose(InputContract(normalize="per_image")(tile), whole, atol=1e-5)


def _pretrain(tmp_path: Path, pretext: dict, name: str):
    from sslreg.plugins import load_plugins

    registry = load_plugins().registry  # the real jigsaw / colorization tasks, plus the tiny test components
    for cls in (helpers.TinyNet, helpers.MemorySource, helpers.Centroid):
        registry.add(cls, plugin="test", distribution="tests", version="0")
    raw = helpers.experiment_dict(tmp_path / name, epochs=1, max_iters=2)
    raw["pretrain"]["pretext"] = pretext
    raw["pretrain"]["data"] = {"name": "memory", "size": 8, "image_size": 48}
    path = tmp_path / f"{name}.yaml"
    import yaml

    path.write_text(yaml.safe_dump(raw))
    plan = load_plan(path, registry)
    assert run_plan(plan, registry) == 0
    return registry, plan.points[0][2], tmp_path / name / "trunk.pth"


def test_jigsaw_trunk_is_evaluated_with_its_training_contract(tmp_path) -> None:
    pretext = {"name": "jigsaw", "num_permutations": 4, "image_size": 48, "cell": 16, "tile": 12, "tile_dim": 8,
               "hidden_dim": 0, "grayscale_prob": 0.0, "color_jitter": 0.0, "channel_shift": 0}  # fmt: skip
    registry, experiment, trunk_path = _pretrain(tmp_path, pretext, "jig")
    task = registry.build("pretext", pretext)
    assert contract_of_file(trunk_path) == task.input_contract() == InputContract(normalize="per_channel")
    checkpoints = sorted((tmp_path / "jig").glob("epoch_*.pth"))
    assert checkpoints and all(contract_of_file(p) == task.input_contract() for p in checkpoints)
    trunk = evaluated_trunk(experiment, registry, trunk_path)  # what `sslreg run` hands every evaluator
    assert trunk.input_contract == task.input_contract()
    # the evaluators' preprocessing of a tile-sized image equals what the task fed the trunk in training
    image = np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    tiles = task.make_tiles(image, np.random.default_rng(2))  # normalised tiles in grid order
    raw_tiles = T.cut_tiles(T.resize_and_crop(T.as_rgb(image), 48, np.random.default_rng(2)), 3, 16, 12,
                            np.random.default_rng(3), channel_shift=0)  # fmt: skip
    for raw, trained in zip(raw_tiles, T.normalise(T.to_float_chw(raw_tiles), "channel")):
        np.testing.assert_allclose(Preprocess(12, trunk.input_contract)(raw), trained, atol=1e-5)
    assert tiles.shape == (9, 3, 12, 12)


def test_colorization_trunk_is_evaluated_with_its_training_contract(tmp_path) -> None:
    pretext = {"name": "colorization", "image_size": 32, "target_stride": 4, "input_scale": 25.0,
               "head_channels": 0, "prior_max_images": 4, "prior_max_pixels": 256, "num_neighbors": 2}  # fmt: skip
    registry, experiment, trunk_path = _pretrain(tmp_path, pretext, "col")
    task = registry.build("pretext", pretext)
    contract = InputContract(space="lab_l", mean=(50.0,), std=(25.0,))
    assert contract_of_file(trunk_path) == task.input_contract() == contract
    trunk = evaluated_trunk(experiment, registry, trunk_path)
    assert trunk.input_contract == contract and trunk.config.in_channels == 1
    image = np.random.default_rng(4).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    trained = l_to_input(rgb_to_lab(image)[..., 0], 25.0)[None]  # the task's own input computation
    np.testing.assert_allclose(Preprocess(32, trunk.input_contract)(image), trained, atol=1e-5)
    inputs, _ = task.make_sample(image, np.random.default_rng(0))
    assert inputs.shape == (1, 32, 32)


def test_external_weights_default_to_imagenet_and_the_option_overrides(tmp_path) -> None:
    registry = helpers.make_registry()
    path = tmp_path / "plain.pth"
    torch.save(build_trunk(registry, {"name": "tinynet"}, seed=0).state_dict(), path)
    assert build_trunk(registry, {"name": "tinynet", "weights": str(path)}, seed=0).input_contract == InputContract()
    chosen = {"name": "tinynet", "weights": str(path), "input": {"normalize": "per_image"}}
    assert build_trunk(registry, chosen, seed=0).input_contract == InputContract(normalize="per_image")
