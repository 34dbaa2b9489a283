"""Detection batches through the core's data adapter: resize to the short side, flip, the trunk's input contract.

The per-sample transform runs in DataLoader workers with the randomness the adapter hands it (flip), so a run
is the same whatever the number of workers. Boxes follow the image; the original ground truth rides along for
scoring in the image's own pixel coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader

from sslreg import Collate, DatasetSource, InputContract, Sample, UserError, make_loader


class Item(NamedTuple):
    """One image for the detector: input tensor, torchvision target (labels from 1), and what scoring needs."""

    image: torch.Tensor
    target: dict[str, torch.Tensor]
    truth: dict[str, np.ndarray]
    scale: tuple[float, float]
    size: tuple[int, int]
    key: str


def resized_shape(height: int, width: int, short_side: int, max_side: int) -> tuple[int, int]:
    """(height, width) with the shorter side at ``short_side`` unless the longer would pass ``max_side``."""
    scale = min(short_side / min(height, width), max_side / max(height, width))
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


@dataclass(frozen=True)
class DetectionTransform:
    """Sample -> Item: resize, random horizontal flip when ``train``, the contract; picklable for workers.

    For training, difficult boxes are dropped unless ``train_difficult`` (as py-faster-rcnn and Detectron's VOC
    sets); for testing the target is left whole (scoring ignores difficult boxes itself).
    """

    contract: InputContract
    short_side: int
    max_side: int
    train: bool
    flip: bool = True
    train_difficult: bool = False
    source: str = "dataset"

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Item:
        truth = sample.target
        if not isinstance(truth, dict) or "boxes" not in truth or "labels" not in truth:
            raise UserError(f"voc07_detection: {self.source!r} gives no box targets (use a detection dataset)")
        image = sample.image
        height, width = image.shape[:2]
        new_h, new_w = resized_shape(height, width, self.short_side, self.max_side)
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        sx, sy = new_w / width, new_h / height
        boxes = np.asarray(truth["boxes"], np.float32).reshape(-1, 4) * np.float32([sx, sy, sx, sy])
        labels = np.asarray(truth["labels"], np.int64)
        difficult = np.asarray(truth.get("difficult", np.zeros(len(labels), bool)), bool)
        if self.train:
            keep = np.ones(len(labels), bool) if self.train_difficult else ~difficult
            boxes, labels = boxes[keep], labels[keep]
            if self.flip and rng.random() < 0.5:
                image = np.ascontiguousarray(image[:, ::-1])
                boxes = np.stack([new_w - boxes[:, 2], boxes[:, 1], new_w - boxes[:, 0], boxes[:, 3]], 1)
        target = {"boxes": torch.from_numpy(np.ascontiguousarray(boxes)), "labels": torch.from_numpy(labels + 1)}
        return Item(torch.from_numpy(self.contract(image)), target, truth, (sx, sy), (height, width), sample.key)


def detection_loader(
    source: DatasetSource,
    transform: DetectionTransform,
    *,
    batch_size: int,
    seed: int,
    epoch: int,
    num_workers: int,
    rank: int,
    world_size: int,
) -> DataLoader:
    """Batches of Items (a list, not stacked: images differ in size); shuffled and padded for training, so that
    every rank gets the same number of steps; in order, each image once over the ranks, for testing."""
    return make_loader(
        source,
        transform,
        batch_size=batch_size,
        seed=seed,
        epoch=epoch,
        shuffle=transform.train,
        num_workers=num_workers,
        collate=Collate(list),
        rank=rank,
        world_size=world_size,
        pad=transform.train,
        drop_last=False,
        persistent_workers=False,
    )


def items_to(items: list[Item], device: torch.device) -> tuple[list[torch.Tensor], list[dict[str, Any]]]:
    """Images and torchvision targets of a batch, on ``device``."""
    images = [item.image.to(device, non_blocking=True) for item in items]
    targets = [{key: value.to(device, non_blocking=True) for key, value in item.target.items()} for item in items]
    return images, targets
