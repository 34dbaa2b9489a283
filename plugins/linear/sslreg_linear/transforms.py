"""Image preprocessing for linear probing: random-resized crop + flip to train, resize + centre crop to test.

All randomness comes from a ``numpy.random.Generator`` handed in per image, so results do not depend on
DataLoader workers. Normalisation is the core's ``sslreg.Preprocess`` (shared with the SVM benchmark): the trunk's
input contract, i.e. exactly what its pretext task trained it on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from sslreg import Preprocess


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


@dataclass(frozen=True)
class ImagePipeline:
    """Picklable per-image pipeline (runs in DataLoader workers): augment when ``train``, else centre crop.

    ``normalise`` (the core's Preprocess) fixes the output size and the trunk's input normalisation.
    """

    normalise: Preprocess
    train: bool
    crop_scale: tuple[float, float] = (0.08, 1.0)
    test_crop_fraction: float = 0.875

    def __call__(self, image: np.ndarray, rng: np.random.Generator | None) -> torch.Tensor:
        size = self.normalise.size
        if self.train:
            image = random_resized_crop(image, size, rng, self.crop_scale)
            if rng.random() < 0.5:
                image = np.ascontiguousarray(image[:, ::-1])
        else:
            image = resize_center_crop(image, size, self.test_crop_fraction)
        return torch.from_numpy(self.normalise(image))
