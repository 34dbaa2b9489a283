"""Lab conversion: OpenCV float path ranges and round trips."""

import numpy as np
import pytest
from sslreg_colorization.lab import input_to_l, l_to_input, lab_to_rgb, rgb_to_lab


def test_round_trip_error_is_below_one_grey_level():
    rgb = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    back = lab_to_rgb(rgb_to_lab(rgb))
    assert np.abs(back - rgb / 255.0).mean() < 1 / 255
    assert np.abs(back - rgb / 255.0).max() < 2 / 255


def test_ranges_of_white_black_and_primaries():
    colours = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 0, 255]]], dtype=np.uint8)
    lab = rgb_to_lab(colours)[0]
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.05)
    np.testing.assert_allclose(lab[1], [0, 0, 0], atol=0.05)
    assert lab[2, 1] > 75 and lab[3, 2] < -100  # red has large +a, blue large -b (skimage gives 80.1, -107.9)


def test_float_and_uint8_inputs_agree():
    rgb = np.random.default_rng(1).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    np.testing.assert_allclose(rgb_to_lab(rgb), rgb_to_lab(rgb / 255.0), atol=1e-4)


def test_input_scaling_is_inverted():
    lightness = np.linspace(0, 100, 11, dtype=np.float32)
    assert l_to_input(lightness, 50.0).min() == -1 and l_to_input(lightness, 50.0).max() == 1
    np.testing.assert_allclose(input_to_l(l_to_input(lightness, 50.0), 50.0), lightness, atol=1e-5)


def test_rejects_grayscale():
    with pytest.raises(ValueError, match="rgb_to_lab"):
        rgb_to_lab(np.zeros((4, 4), dtype=np.uint8))
