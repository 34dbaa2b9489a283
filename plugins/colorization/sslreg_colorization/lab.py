"""CIE Lab conversion with OpenCV's float path, and the scaling of L into the network input.

``cv2.cvtColor(float32 RGB in [0, 1], COLOR_RGB2Lab)`` gives L in [0, 100] and a/b in about [-127, 127]
(D65 white, sRGB gamma), the same numbers as scikit-image's ``rgb2lab``; the 8-bit path of OpenCV rescales
all three channels and is not used here.
"""

from __future__ import annotations

import cv2
import numpy as np

#: L is centred by this value before entering the trunk (Zhang et al. subtract 50).
L_CENTER = 50.0


def rgb_to_lab(image: np.ndarray) -> np.ndarray:
    """RGB image (uint8, or float in [0, 1]) of shape (H, W, 3) to float32 Lab (L in [0, 100], ab about ±127)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"rgb_to_lab: expected an (H, W, 3) RGB image, got shape {image.shape}")
    rgb = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2Lab)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Float Lab image (H, W, 3) back to float32 RGB, clipped to [0, 1] (out-of-gamut ab is clipped, not mapped)."""
    rgb = cv2.cvtColor(np.ascontiguousarray(lab, dtype=np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(rgb, 0.0, 1.0)


def lab_to_rgb_uint8(lab: np.ndarray) -> np.ndarray:
    """Float Lab image to RGB uint8 (rounded), for writing PNGs."""
    return np.round(lab_to_rgb(lab) * 255.0).astype(np.uint8)


def l_to_input(lightness: np.ndarray, scale: float) -> np.ndarray:
    """The trunk input from L in [0, 100]: (L - 50) / scale (scale 50 gives [-1, 1]; 1 is the Caffe reference)."""
    return ((lightness - L_CENTER) / scale).astype(np.float32)


def input_to_l(inputs: np.ndarray, scale: float) -> np.ndarray:
    """Inverse of ``l_to_input``: L in [0, 100] from the trunk input."""
    return (inputs * scale + L_CENTER).astype(np.float32)
