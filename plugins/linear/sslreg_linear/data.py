"""Batches of preprocessed images and targets for the linear probe, through the core's data adapter.

The adapter (``sslreg.make_loader``) does the seeding, sharding and bad-image counting; this module says what one
item is (an augmented or centre-cropped image and its target) and how targets are stacked and checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from sslreg import Collate, DatasetSource, Sample, UserError, make_loader
from sslreg_linear.transforms import ImagePipeline


@dataclass(frozen=True)
class ImageAndTarget:
    """Per-sample transform: (image tensor from the pipeline, target) (picklable: runs in workers)."""

    pipeline: ImagePipeline

    def __call__(self, sample: Sample, rng: np.random.Generator) -> tuple[torch.Tensor, Any]:
        return self.pipeline(sample.image, rng), sample.target


@dataclass(frozen=True)
class StackTargets:
    """Stack images; class targets become int64 labels, multi-label targets float (1, -1, 0), both checked."""

    target_kind: str
    num_classes: int
    source_name: str

    def __call__(self, items: list[tuple[torch.Tensor, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.stack([image for image, _ in items])
        return images, self._targets([target for _, target in items])

    def _targets(self, targets: list[Any]) -> torch.Tensor:
        if self.target_kind == "class":
            labels = torch.as_tensor([int(t) for t in targets], dtype=torch.int64)
            bad = labels[(labels < 0) | (labels >= self.num_classes)]
            if len(bad):
                raise UserError(f"{self.source_name}: class label {int(bad[0])} outside 0..{self.num_classes - 1}")
            return labels
        labels = torch.as_tensor(np.stack([np.asarray(t, dtype=np.float32) for t in targets]))
        if labels.shape[1:] != (self.num_classes,):
            raise UserError(
                f"{self.source_name}: multi-label target of shape {tuple(labels.shape[1:])},"
                f" expected ({self.num_classes},)"
            )
        return labels


def probe_loader(
    source: DatasetSource,
    pipeline: ImagePipeline,
    targets: StackTargets,
    *,
    epoch: int,
    seed: int,
    shuffle: bool,
    batch_size: int,
    num_workers: int,
) -> DataLoader:
    """One epoch of ``source`` as core Batches whose data is (images, targets); order seeded by (seed, epoch)."""
    return make_loader(
        source,
        ImageAndTarget(pipeline),
        batch_size=batch_size,
        seed=seed,
        epoch=epoch,
        shuffle=shuffle,
        num_workers=num_workers,
        collate=Collate(targets),
        rank=0,
        world_size=1,
    )
