"""Image preprocessing for linear probing: a random crop + flip (+ colour jitter, PCA lighting) to train, resize +
centre crop to test.

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

from sslreg import Augment, Preprocess

#: ImageNet RGB principal components (AlexNet's "PCA lighting", as fb.resnet.torch and the reference benchmark).
PCA_EIGVAL = np.array([0.2175, 0.0188, 0.0045], dtype=np.float32)
PCA_EIGVEC = np.array(
    [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]], dtype=np.float32
)


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


def resize_short_side(image: np.ndarray, size: int, crop_fraction: float) -> np.ndarray:
    """Resize so that the shorter side is size / crop_fraction (at least ``size``), keeping the aspect ratio."""
    height, width = image.shape[:2]
    short = max(size, int(round(size / crop_fraction)))
    if height <= width:
        return resize(image, max(short, int(round(width * short / height))), short)
    return resize(image, short, max(short, int(round(height * short / width))))


def resize_center_crop(image: np.ndarray, size: int, crop_fraction: float) -> np.ndarray:
    """Resize the shorter side to size / crop_fraction, then cut the central size×size square."""
    image = resize_short_side(image, size, crop_fraction)
    height, width = image.shape[:2]
    top, left = (height - size) // 2, (width - size) // 2
    return image[top : top + size, left : left + size]


def resize_random_crop(image: np.ndarray, size: int, crop_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Resize the shorter side to size / crop_fraction (256 for 224 at 0.875), then a random size×size square."""
    image = resize_short_side(image, size, crop_fraction)
    height, width = image.shape[:2]
    top, left = int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))
    return image[top : top + size, left : left + size]


def color_jitter(strength: float) -> Augment:
    """Brightness, contrast and saturation each scaled by a factor in [1 - strength, 1 + strength], in random order
    (torchvision's ColorJitter; the reference's color_jitter with 0.4)."""
    jitter = {"name": "ColorJitter", "brightness": strength, "contrast": strength, "saturation": strength}
    return Augment((jitter,))


def pca_lighting(planes: np.ndarray, alphastd: float, rng: np.random.Generator) -> np.ndarray:
    """AlexNet's lighting noise: add sum_i alpha_i·eigval_i·eigvec_i (alpha ~ N(0, alphastd²)) to RGB in [0, 1]."""
    alpha = rng.normal(0.0, alphastd, size=3).astype(np.float32)
    shift = PCA_EIGVEC @ (alpha * PCA_EIGVAL)
    return planes + shift.reshape(3, 1, 1)


@dataclass(frozen=True)
class ImagePipeline:
    """Picklable per-image pipeline (runs in DataLoader workers): augment when ``train``, else centre crop.

    ``normalise`` (the core's Preprocess) fixes the output size and the trunk's input normalisation. Training crops
    are ``random_resized`` (area ``crop_scale``, aspect 3/4-4/3) or ``resize_crop`` (shorter side to
    size / test_crop_fraction, then a random square); ``jitter`` and ``lighting`` (> 0) are for RGB trunks only.
    """

    normalise: Preprocess
    train: bool
    crop_scale: tuple[float, float] = (0.08, 1.0)
    test_crop_fraction: float = 0.875
    train_crop: str = "random_resized"
    jitter: Augment | None = None
    lighting: float = 0.0

    def __call__(self, image: np.ndarray, rng: np.random.Generator | None) -> torch.Tensor:
        size = self.normalise.size
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if not self.train:
            return torch.from_numpy(self.normalise(resize_center_crop(image, size, self.test_crop_fraction)))
        if self.train_crop == "resize_crop":
            image = resize_random_crop(image, size, self.test_crop_fraction, rng)
        else:
            image = random_resized_crop(image, size, rng, self.crop_scale)
        if rng.random() < 0.5:
            image = np.ascontiguousarray(image[:, ::-1])
        if self.jitter is not None:
            image = self.jitter(image, rng)
        if self.lighting <= 0:
            return torch.from_numpy(self.normalise(image))
        contract = self.normalise.contract
        return torch.from_numpy(contract.normalise(pca_lighting(contract.convert(image), self.lighting, rng)))
