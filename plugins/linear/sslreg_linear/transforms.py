"""Image preprocessing for linear probing: random-resized crop + flip to train, resize + centre crop to test.

All randomness comes from a ``numpy.random.Generator`` handed in per image, so results do not depend on
DataLoader workers. Output is a normalised float tensor: ImageNet mean/std for RGB trunks, or the Lab L
channel as (L - 50) / 50 for one-channel (colorization) trunks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def as_rgb(image: np.ndarray) -> np.ndarray:
    """An (H, W, 3) uint8 view of a grey, RGB or RGBA image."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return image[:, :, :3]


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize with area averaging when shrinking and bilinear when enlarging."""
    shrinking = width * height < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def random_resized_crop(
    image: np.ndarray,
    size: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> np.ndarray:
    """A random crop covering ``scale`` of the area with aspect in ``ratio``, resized to size×size (as torchvision)."""
    height, width = image.shape[:2]
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        crop_w = int(round(math.sqrt(target_area * aspect)))
        crop_h = int(round(math.sqrt(target_area / aspect)))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            top = int(rng.integers(0, height - crop_h + 1))
            left = int(rng.integers(0, width - crop_w + 1))
            return resize(image[top : top + crop_h, left : left + crop_w], size, size)
    # Fallback: the whole image, trimmed to the nearest allowed aspect, centred.
    aspect = width / height
    crop_w, crop_h = width, height
    if aspect < ratio[0]:
        crop_h = int(round(width / ratio[0]))
    elif aspect > ratio[1]:
        crop_w = int(round(height * ratio[1]))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return resize(image[top : top + crop_h, left : left + crop_w], size, size)


def resize_center_crop(image: np.ndarray, size: int, crop_fraction: float) -> np.ndarray:
    """Resize the shorter side to size / crop_fraction, then cut the central size×size square."""
    height, width = image.shape[:2]
    short = max(size, int(round(size / crop_fraction)))
    if height <= width:
        image = resize(image, max(short, int(round(width * short / height))), short)
    else:
        image = resize(image, short, max(short, int(round(height * short / width))))
    height, width = image.shape[:2]
    top, left = (height - size) // 2, (width - size) // 2
    return image[top : top + size, left : left + size]


def normalise(image: np.ndarray, in_channels: int) -> torch.Tensor:
    """RGB uint8 (H, W, 3) to a (C, H, W) float tensor: ImageNet mean/std, or Lab L as (L - 50) / 50 for C = 1."""
    pixels = image.astype(np.float32) / 255.0
    if in_channels == 1:
        pixels = (cv2.cvtColor(pixels, cv2.COLOR_RGB2Lab)[:, :, :1] - 50.0) / 50.0
    elif in_channels == 3:
        pixels = (pixels - IMAGENET_MEAN) / IMAGENET_STD
    else:
        raise ValueError(f"linear_probe: trunks with in_channels={in_channels} are not supported (use 1 or 3)")
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


@dataclass(frozen=True)
class Preprocess:
    """Picklable per-image pipeline (runs in DataLoader workers): augment when ``train``, else centre crop."""

    size: int
    in_channels: int
    train: bool
    crop_scale: tuple[float, float] = (0.08, 1.0)
    test_crop_fraction: float = 0.875

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        image = as_rgb(image)
        if self.train:
            image = random_resized_crop(image, self.size, rng, self.crop_scale)
            if rng.random() < 0.5:
                image = image[:, ::-1]
        else:
            image = resize_center_crop(image, self.size, self.test_crop_fraction)
        return normalise(image, self.in_channels)
