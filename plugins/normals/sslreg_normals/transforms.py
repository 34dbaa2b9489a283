"""Per-sample preprocessing for the normals evaluator (picklable; all randomness from the per-sample rng).

Training: resize image and normals by ``scale`` (normals with nearest neighbours, so no invalid pixel leaks into a
valid one), a random ``crop`` x ``crop`` window (zero-padded, i.e. invalid, where the image is smaller), and an
optional horizontal flip that negates the x component. Test: the image resized by ``scale``, the ground truth kept
at its own resolution (predictions are upsampled to it). Images go through the trunk's input contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from sslreg import InputContract, Sample, UserError


def resized(array: np.ndarray, scale: float, interpolation: int) -> np.ndarray:
    """``array`` resized by ``scale`` (both sides rounded, at least 1 pixel)."""
    if scale == 1.0:
        return array
    height, width = array.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(array, size, interpolation=interpolation)


def random_crop(
    image: np.ndarray, normals: np.ndarray, side: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A random side x side window of both; zero padding (invalid normals) where the image is smaller."""
    height, width = image.shape[:2]
    if height < side or width < side:
        pad_h, pad_w = max(0, side - height), max(0, side - width)
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)))
        normals = np.pad(normals, ((0, pad_h), (0, pad_w), (0, 0)))
        height, width = image.shape[:2]
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    return image[top : top + side, left : left + side], normals[top : top + side, left : left + side]


@dataclass(frozen=True)
class NormalsPipeline:
    """(image (C, h, w) float32 tensor, normals (3, H, W) float32 tensor) for one sample."""

    contract: InputContract
    train: bool
    scale: float = 1.0
    crop: int | None = None
    flip: bool = False

    def __call__(self, sample: Sample, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        image = resized(sample.image, self.scale, cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR)
        normals = np.asarray(sample.target, dtype=np.float32)
        if self.train:
            normals = resized(normals, self.scale, cv2.INTER_NEAREST)
            if self.crop is not None:
                image, normals = random_crop(image, normals, self.crop, rng)
            if self.flip and rng.random() < 0.5:
                image, normals = image[:, ::-1], normals[:, ::-1] * np.float32([-1.0, 1.0, 1.0])
        planes = self.contract(np.ascontiguousarray(image))
        return torch.from_numpy(planes), torch.from_numpy(np.ascontiguousarray(normals.transpose(2, 0, 1)))


@dataclass(frozen=True)
class StackPairs:
    """Stack (image, normals) pairs; a clear error when test images differ in size."""

    source: str

    def __call__(self, items: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        shapes = {(tuple(image.shape), tuple(normals.shape)) for image, normals in items}
        if len(shapes) > 1:
            raise UserError(
                f"nyuv2_normals: images of {self.source!r} differ in size within a batch ({sorted(shapes)[:2]});"
                " set test_batch_size: 1 (or crop_size for training)"
            )
        return torch.stack([image for image, _ in items]), torch.stack([normals for _, normals in items])
