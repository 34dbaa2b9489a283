"""The streaming normal metrics against hand-computed cases and against numpy on sets that fit in memory."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sslreg_normals.metrics import NormalErrors, angular_errors


def tilted(degrees: float) -> list[float]:
    """The unit vector at ``degrees`` from +z, turned about the x axis."""
    angle = math.radians(degrees)
    return [0.0, math.sin(angle), math.cos(angle)]


def as_maps(vectors: list[list[float]]) -> torch.Tensor:
    """(1, 3, 1, W) from W vectors."""
    return torch.tensor(vectors, dtype=torch.float32).T.reshape(1, 3, 1, -1)


def summary_of(pred: list[list[float]], truth: list[list[float]], valid: list[bool]) -> dict[str, float]:
    errors = NormalErrors()
    errors.update(as_maps(pred), as_maps(truth), torch.tensor([valid]).reshape(1, 1, -1))
    return errors.summary()


def test_hand_computed_angles_with_a_mask():
    # errors 5, 15, 25, 40 degrees on valid pixels; a 170-degree pixel is masked out
    up = [0.0, 0.0, 1.0]
    result = summary_of([tilted(a) for a in (5, 15, 25, 40, 170)], [up] * 5, [True, True, True, True, False])
    assert result["mean"] == pytest.approx(21.25, abs=1e-4)
    assert result["median"] == pytest.approx(20.0, abs=1e-4)  # even count: mean of 15 and 25, as numpy
    assert result["11.25"] == pytest.approx(25.0)
    assert result["22.5"] == pytest.approx(50.0)
    assert result["30"] == pytest.approx(75.0)


def test_exact_and_opposite_and_orthogonal_normals():
    x, y, z = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]
    assert summary_of([x, y, z], [x, y, z], [True] * 3) == {"mean": 0.0, "median": 0.0, "11.25": 100.0,
                                                           "22.5": 100.0, "30": 100.0}  # fmt: skip
    result = summary_of([x, [0.0, -1.0, 0.0], z], [y, y, x], [True] * 3)  # 90, 180, 90 degrees
    assert result["mean"] == pytest.approx(120.0, abs=1e-6)
    assert result["median"] == pytest.approx(90.0, abs=1e-6)
    assert result["30"] == 0.0


def test_thresholds_and_lengths_do_not_matter():
    truth = [0.0, 0.0, 1.0]
    pred = [[3.0 * v for v in tilted(11.26)], [0.2 * v for v in tilted(11.24)], tilted(22.49)]
    result = summary_of(pred, [truth] * 3, [True] * 3)
    assert result["11.25"] == pytest.approx(100 / 3)
    assert result["22.5"] == pytest.approx(100.0)
    assert result["median"] == pytest.approx(11.26, abs=1e-3)


def test_zero_prediction_is_ninety_degrees_and_no_valid_pixel_is_nan():
    errors = angular_errors(torch.zeros(2, 3), torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
    assert errors.tolist() == [90.0, 90.0]
    result = summary_of([[0.0, 0.0, 1.0]], [[0.0, 0.0, 1.0]], [False])
    assert all(math.isnan(value) for value in result.values())


def test_small_angles_are_accurate():
    # arccos of a float32 dot would be ~0.02 degrees off here
    truth = torch.tensor([[0.0, 0.0, 1.0]] * 3)
    pred = torch.tensor([tilted(0.01), tilted(0.05), tilted(0.3)])
    assert angular_errors(pred, truth).tolist() == pytest.approx([0.01, 0.05, 0.3], abs=1e-4)


def random_unit(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    vectors = rng.normal(size=(*shape, 3))
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_streaming_equals_numpy_on_a_set_in_memory(seed):
    rng = np.random.default_rng(seed)
    batches, size = 6, (5, 40, 50)  # 60,000 pixels in 6 batches; errors concentrated at small angles
    all_errors, errors = [], NormalErrors()
    for _ in range(batches):
        truth = random_unit(rng, size)
        pred = truth + rng.normal(scale=rng.uniform(0.05, 0.6), size=truth.shape)
        pred *= rng.uniform(0.5, 2.0, size=(*size, 1))  # lengths do not matter
        valid = rng.random(size) < 0.8
        cosine = np.sum(pred * truth, axis=-1) / np.linalg.norm(pred, axis=-1)
        all_errors.append(np.degrees(np.arccos(np.clip(cosine, -1, 1)))[valid])
        to_maps = lambda a: torch.from_numpy(a.astype(np.float32)).permute(0, 3, 1, 2)
        errors.update(to_maps(pred), to_maps(truth), torch.from_numpy(valid))
    reference = np.concatenate(all_errors)
    result = errors.summary()
    assert errors.count == len(reference)
    assert abs(result["median"] - np.median(reference)) < 0.001  # the brief asks 0.01
    assert result["mean"] == pytest.approx(reference.mean(), abs=1e-4)
    for threshold in (11.25, 22.5, 30.0):
        assert result[f"{threshold:g}"] == pytest.approx(100 * np.mean(reference < threshold), abs=1e-3)


@pytest.mark.parametrize("count", [1, 2, 7, 1000, 1001])
def test_median_of_odd_and_even_counts(count):
    values = np.random.default_rng(count).uniform(0, 180, count)
    errors = NormalErrors()
    errors.add_errors(torch.from_numpy(values))
    assert abs(errors.median() - np.median(values)) < 0.001


def test_merged_shards_equal_one_pass():
    rng = np.random.default_rng(3)
    values = torch.from_numpy(rng.uniform(0, 90, 5000))
    whole, left, right = NormalErrors(), NormalErrors(), NormalErrors()
    whole.add_errors(values)
    left.add_errors(values[:1234])
    right.add_errors(values[1234:])
    left.merge(right)
    assert left.summary() == pytest.approx(whole.summary())
