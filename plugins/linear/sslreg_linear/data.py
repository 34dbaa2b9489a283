"""Batches of preprocessed images and targets from any sslreg DatasetSource (indexed or streamed).

Each image's augmentation is seeded by (seed, epoch, index), so a run is the same for any number of
DataLoader workers. Unreadable images (``load`` returns None) are dropped from the batch and counted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from sslreg import DatasetSource
from sslreg_linear.transforms import ImagePipeline

Item = tuple[torch.Tensor, Any] | None


@dataclass
class Batch:
    """Images (N, C, H, W) or None when every image was unreadable, targets, and how many were skipped."""

    images: torch.Tensor | None
    targets: torch.Tensor | None
    skipped: int


class IndexedImages(Dataset):
    """Random-access view of a source; items are requested as (epoch, index) pairs by the sampler."""

    def __init__(self, source: DatasetSource, pipeline: ImagePipeline, seed: int) -> None:
        self.source, self.pipeline, self.seed = source, pipeline, seed

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, item: tuple[int, int]) -> Item:
        epoch, index = item
        sample = self.source.load(index)
        if sample is None:
            return None
        rng = np.random.default_rng((self.seed, epoch, index))
        return self.pipeline(sample.image, rng), sample.target


class StreamedImages(IterableDataset):
    """A streamed source, split across DataLoader workers as ranks of ``stream``."""

    def __init__(self, source: DatasetSource, pipeline: ImagePipeline, seed: int, epoch: int) -> None:
        self.source, self.pipeline, self.seed, self.epoch = source, pipeline, seed, epoch

    def __iter__(self) -> Iterator[Item]:
        worker = get_worker_info()
        rank, world_size = (worker.id, worker.num_workers) if worker else (0, 1)
        for position, sample in enumerate(self.source.stream(rank, world_size, self.epoch)):
            if sample is None:
                yield None
                continue
            rng = np.random.default_rng((self.seed, self.epoch, rank, position))
            yield self.pipeline(sample.image, rng), sample.target


@dataclass(frozen=True)
class Collate:
    """Stack the readable items; class targets become int64 labels, multi-label targets float (1, -1, 0)."""

    target_kind: str
    num_classes: int
    source_name: str

    def __call__(self, items: Sequence[Item]) -> Batch:
        kept = [item for item in items if item is not None]
        skipped = len(items) - len(kept)
        if not kept:
            return Batch(None, None, skipped)
        images = torch.stack([image for image, _ in kept])
        return Batch(images, self._targets([target for _, target in kept]), skipped)

    def _targets(self, targets: list[Any]) -> torch.Tensor:
        if self.target_kind == "class":
            labels = torch.as_tensor([int(t) for t in targets], dtype=torch.int64)
            bad = labels[(labels < 0) | (labels >= self.num_classes)]
            if len(bad):
                raise ValueError(f"{self.source_name}: class label {int(bad[0])} outside 0..{self.num_classes - 1}")
            return labels
        labels = torch.as_tensor(np.stack([np.asarray(t, dtype=np.float32) for t in targets]))
        if labels.shape[1:] != (self.num_classes,):
            raise ValueError(
                f"{self.source_name}: multi-label target of shape {tuple(labels.shape[1:])},"
                f" expected ({self.num_classes},)"
            )
        return labels


def make_loader(
    source: DatasetSource,
    pipeline: ImagePipeline,
    collate: Collate,
    *,
    epoch: int,
    seed: int,
    shuffle: bool,
    batch_size: int,
    num_workers: int,
) -> DataLoader:
    """A DataLoader over one epoch of ``source``.

    Indexed sources are shuffled by a generator seeded with (seed, epoch); streams keep their own epoch order.
    """
    common = dict(batch_size=batch_size, num_workers=num_workers, collate_fn=collate)
    if source.is_stream:
        return DataLoader(StreamedImages(source, pipeline, seed, epoch), **common)
    order = np.arange(len(source))
    if shuffle:
        order = np.random.default_rng((seed, epoch)).permutation(order)
    sampler = [(epoch, int(index)) for index in order]
    return DataLoader(IndexedImages(source, pipeline, seed), sampler=sampler, **common)
