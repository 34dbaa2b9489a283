"""Colour priors and class-rebalancing weights."""

import json
import warnings

import numpy as np
import pytest
from sslreg_colorization import Colorization, ColorizationConfig
from sslreg_colorization.bins import gamut_bins
from sslreg_colorization.priors import (
    bin_counts,
    priors_cache_path,
    rebalance_weights,
    smooth_priors,
    subsample,
)


def images(seed: int = 0, count: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(count, 1, 1, 3))  # mostly one colour per image, plus noise
    noise = rng.integers(-20, 21, size=(count, 24, 32, 3))
    return [np.clip(b + n, 0, 255).astype(np.uint8) for b, n in zip(base, noise)]


@pytest.fixture()
def task(gamut_dir):
    return Colorization(ColorizationConfig(name="colorization", cache_dir=str(gamut_dir)))


def test_counts_cover_every_pixel(gamut_dir):
    bins = gamut_bins(gamut_dir)
    counts = bin_counts(images(), bins)
    assert counts.sum() == 3 * 24 * 32 and counts.shape == (len(bins),)


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.9])
def test_weights_have_expectation_one_under_smoothed_priors(gamut_dir, lam):
    bins = gamut_bins(gamut_dir)
    smoothed = smooth_priors(bin_counts(images(), bins), bins, sigma=5.0)
    assert smoothed.sum() == pytest.approx(1.0) and np.all(smoothed > 0)
    weights = rebalance_weights(smoothed, lam)
    assert (smoothed * weights).sum() == pytest.approx(1.0, abs=1e-12)
    assert weights[smoothed.argmax()] == weights.min()  # the commonest colour is down-weighted most


def test_lambda_one_gives_uniform_weights(gamut_dir):
    bins = gamut_bins(gamut_dir)
    weights = rebalance_weights(smooth_priors(bin_counts(images(), bins), bins), 1.0)
    np.testing.assert_allclose(weights, np.ones(len(bins)))


def test_smoothing_spreads_mass_to_neighbours(gamut_dir):
    bins = gamut_bins(gamut_dir)
    counts = np.zeros(len(bins), dtype=np.int64)
    counts[100] = 10
    smoothed = smooth_priors(counts, bins, sigma=5.0)
    neighbours = np.abs(bins - bins[100]).sum(1) == 10
    assert smoothed.argmax() == 100
    np.testing.assert_allclose(smoothed[neighbours], smoothed[100] * np.exp(-2.0), rtol=1e-9)


def test_subsample_keeps_colours_and_bounds_pixels():
    image = images(count=1)[0]
    small = subsample(image, 100)
    assert small.shape[0] * small.shape[1] <= 100 * 1.5
    np.testing.assert_array_equal(small[0, 0], image[0, 0])


def gray_images(count: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [np.repeat(rng.integers(0, 256, size=(24, 32, 1), dtype=np.uint8), 3, axis=2) for _ in range(count)]


def test_prepare_sets_weights_and_records_the_sample(task, tmp_path):
    task.prepare(images(), tmp_path)
    cached = list(tmp_path.glob("priors-*.json"))
    assert len(cached) == 1
    record = json.loads(cached[0].read_text())
    assert record["num_images"] == 3 and record["gray_images"] == 0 and len(record["counts"]) == 313
    assert task.prior_counts.num_images == 3 and cached[0].name == f"priors-{task.prior_counts.key}.json"
    weights = task.class_weights.copy()
    assert (weights != 1).any()
    again = Colorization(task.config)
    again.prepare(images(), tmp_path)  # same sample, same key: the same file, the same weights
    assert list(tmp_path.glob("priors-*.json")) == cached
    np.testing.assert_array_equal(again.class_weights, weights)
    other = Colorization(task.config)
    other.prepare(images(seed=1), tmp_path)
    assert len(list(tmp_path.glob("priors-*.json"))) == 2  # other data, other key


def test_prepare_reads_images_one_at_a_time_up_to_the_limit(task, tmp_path):
    assert ColorizationConfig(name="colorization").prior_max_images >= 10 * 2000  # far more than the old 2000
    read = []

    def stream():
        for index, image in enumerate(images(count=8)):
            read.append(index)
            yield image

    limited = Colorization(task.config.model_copy(update={"prior_max_images": 5}))
    assert limited.prepare_limit == 5
    limited.prepare(stream(), tmp_path)
    assert read == [0, 1, 2, 3, 4] and limited.prior_counts.num_images == 5


def test_grayscale_images_are_left_out_of_the_priors_and_counted(task, tmp_path):
    task.prepare(images() + gray_images(), tmp_path)
    assert (task.prior_counts.num_images, task.prior_counts.gray_images) == (3, 2)
    colour_only = Colorization(task.config)
    colour_only.prepare(images(), tmp_path / "other")
    np.testing.assert_array_equal(colour_only.prior_counts.counts, task.prior_counts.counts)
    kept = Colorization(task.config.model_copy(update={"gray_threshold": None}))
    kept.prepare(images() + gray_images(), tmp_path / "kept")
    assert (kept.prior_counts.num_images, kept.prior_counts.gray_images) == (5, 0)
    with pytest.raises(ValueError, match="2 grayscale images left out"):
        Colorization(task.config).prepare(gray_images(), tmp_path / "gray")


def test_priors_are_counted_on_the_chosen_bin_set(task, gamut_dir, tmp_path):
    srgb = Colorization(task.config.model_copy(update={"bins": "srgb262", "cache_dir": str(gamut_dir)}))
    srgb.prepare(images(), tmp_path)
    task.prepare(images(), tmp_path)
    assert srgb.prior_counts.counts.shape == (262,) and task.prior_counts.counts.shape == (313,)
    assert srgb.prior_counts.key != task.prior_counts.key
    assert srgb.class_weights.shape == (262,) and task.class_weights.shape == (313,)
    assert srgb.prior_counts.counts.sum() == task.prior_counts.counts.sum()


def test_named_priors_are_reused_without_reading_images(task, tmp_path):
    named = Colorization(task.config.model_copy(update={"priors_name": "my data/v1"}))
    named.prepare(images(), tmp_path)
    assert priors_cache_path(tmp_path, "my data/v1").is_file()

    def unread():
        raise AssertionError("images were read although the named priors are cached")
        yield

    reused = Colorization(named.config)
    reused.prepare(unread(), tmp_path)
    np.testing.assert_array_equal(reused.class_weights, named.class_weights)


def test_without_prepare_weights_are_uniform_with_a_warning(task):
    with pytest.warns(UserWarning, match="prepare"):
        weights = task.class_weights
    np.testing.assert_array_equal(weights, np.ones(task.num_bins))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _ = task.class_weights  # warned once only


def test_prepare_without_images_is_an_error(task, tmp_path):
    with pytest.raises(ValueError, match="no colour training images"):
        task.prepare([], tmp_path)
