"""The Places205 reference recipe's options: an iteration schedule, resize + random crop, colour jitter and PCA
lighting for RGB trunks (refused for L-channel trunks)."""

from __future__ import annotations

import math

import numpy as np
import pydantic
import pytest
import torch
from sslreg_linear import LinearProbe, LinearProbeConfig
from sslreg_linear.transforms import (
    PCA_EIGVAL,
    PCA_EIGVEC,
    ImagePipeline,
    color_jitter,
    pca_lighting,
    resize_random_crop,
    resize_short_side,
)

from sslreg import EvalContext, InputContract, Preprocess, UserError

SQUARES = {"train": {"name": "squares"}, "test": {"name": "squares", "split": "test", "per_class": 4}}


def probe(**options) -> LinearProbe:
    return LinearProbe(LinearProbeConfig(name="linear_probe", batch_size=5, **{**SQUARES, **options}))


@pytest.fixture
def lrs(monkeypatch) -> list[float]:
    """The learning rate of every SGD step taken while the test runs."""
    seen: list[float] = []
    step = torch.optim.SGD.step

    def record(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", record)
    return seen


def test_iterations_run_exactly_that_many_steps_across_passes(context: EvalContext, trunk_factory, lrs):
    trunk = trunk_factory()
    results = probe(iterations=7, lr_steps=[3, 6], gamma=0.5).evaluate(trunk, context)
    assert lrs == pytest.approx([0.01] * 3 + [0.005] * 3 + [0.0025])  # steps at iterations 3 and 6, not epochs
    assert trunk.calls == 7 + math.ceil(12 / 5)  # 24 images in batches of 5: two passes, the second partial
    details = results[0].details
    assert (details["iterations"], details["epochs"]) == (7, 2)
    assert details["train_images"] == 24


def test_epoch_schedule_is_unchanged(context: EvalContext, trunk_factory, lrs):
    results = probe(epochs=2, lr_steps=[1], gamma=0.5).evaluate(trunk_factory(), context)
    assert lrs == pytest.approx([0.01] * 5 + [0.005] * 5)
    assert (results[0].details["iterations"], results[0].details["epochs"]) == (10, 2)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(iterations=10, epochs=3, lr_steps=[5]), "either epochs or iterations"),
        (dict(iterations=10), "lr_steps in iterations"),
        (dict(color_jitter=-0.1), "color_jitter"),
        (dict(train_crop="ten_crop"), "train_crop"),
    ],
)
def test_schedule_and_augmentation_options_are_checked(options, message):
    with pytest.raises(pydantic.ValidationError, match=message):
        LinearProbeConfig(name="linear_probe", **options)


@pytest.mark.parametrize("options", [dict(color_jitter=0.4), dict(lighting=0.1)])
def test_rgb_augmentations_are_refused_for_an_l_channel_trunk(context: EvalContext, trunk_factory, options):
    trunk = trunk_factory(in_channels=1)
    with pytest.raises(UserError, match="color_jitter and lighting are for RGB trunks") as error:
        probe(epochs=1, lr_steps=[], **options).evaluate(trunk, context)
    assert "\n" not in str(error.value)
    assert trunk.calls == 0


def test_colorization_recipe_on_an_l_channel_trunk(context: EvalContext, trunk_factory):
    results = probe(epochs=1, lr_steps=[], train_crop="resize_crop").evaluate(trunk_factory(in_channels=1), context)
    assert all(0.0 <= score.mean <= 100.0 for score in results[0].layers.values())


def test_rgb_recipe_learns_and_is_deterministic_for_any_worker_count(context: EvalContext, trunk_factory):
    options = dict(seed=1, iterations=12, lr_steps=[8], color_jitter=0.4, lighting=0.1)
    first = probe(**options).evaluate(trunk_factory(), context)
    workers = probe(**options, num_workers=2).evaluate(trunk_factory(), context)
    plain = probe(seed=1, iterations=12, lr_steps=[8]).evaluate(trunk_factory(), context)
    assert first[0].details["final_train_loss"] == workers[0].details["final_train_loss"]
    assert first[0].details["final_train_loss"] != plain[0].details["final_train_loss"]  # the images did change
    assert min(score.mean for score in first[0].layers.values()) >= 60.0  # 3 colours; chance is 33


def test_resize_random_crop_is_a_window_of_the_short_side_resize():
    image = np.random.default_rng(0).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    resized = resize_short_side(image, 28, 0.875)
    assert resized.shape[:2] == (32, 48)  # 28 / 0.875 = 32, aspect kept
    crops = [resize_random_crop(image, 28, 0.875, np.random.default_rng(seed)) for seed in range(6)]
    windows = {
        (top, left)
        for crop in crops
        for top in range(5)
        for left in range(21)
        if np.array_equal(resized[top : top + 28, left : left + 28], crop)
    }
    assert all(crop.shape == (28, 28, 3) for crop in crops) and len(windows) >= 2  # random windows of it
    assert np.array_equal(crops[0], resize_random_crop(image, 28, 0.875, np.random.default_rng(0)))


def test_pca_lighting_adds_one_colour_shift_along_the_imagenet_components():
    planes = np.full((3, 4, 4), 0.5, np.float32)
    out = pca_lighting(planes, 0.1, np.random.default_rng(3))
    alpha = np.random.default_rng(3).normal(0.0, 0.1, size=3)
    expected = 0.5 + (PCA_EIGVEC * (alpha * PCA_EIGVAL)[None, :]).sum(axis=1)
    np.testing.assert_allclose(out[:, 0, 0], expected, rtol=1e-5)
    assert np.ptp(out, axis=(1, 2)).max() == 0  # the same shift for every pixel
    assert np.array_equal(out, pca_lighting(planes, 0.1, np.random.default_rng(3)))


def test_color_jitter_comes_from_the_sample_rng():
    image = np.random.default_rng(0).integers(40, 200, (16, 16, 3), dtype=np.uint8)
    jitter = color_jitter(0.4)
    first = jitter(image, np.random.default_rng(7))
    assert first.shape == image.shape and first.dtype == np.uint8 and not np.array_equal(first, image)
    assert np.array_equal(first, jitter(image, np.random.default_rng(7)))
    assert not np.array_equal(first, jitter(image, np.random.default_rng(8)))


def test_pipeline_applies_jitter_and_lighting_only_when_training():
    image = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    normalise = Preprocess(32, InputContract())
    augmented = ImagePipeline(normalise, True, train_crop="resize_crop", jitter=color_jitter(0.4), lighting=0.1)
    bare = ImagePipeline(normalise, True, train_crop="resize_crop")
    assert not torch.equal(augmented(image, np.random.default_rng(1)), bare(image, np.random.default_rng(1)))
    assert torch.equal(augmented(image, np.random.default_rng(1)), augmented(image, np.random.default_rng(1)))
    test = ImagePipeline(normalise, False, jitter=color_jitter(0.4), lighting=0.1)
    assert torch.equal(test(image, None), ImagePipeline(normalise, False)(image, None))
