"""The pretraining data path: a DatasetSource plus a PretextTask as a torch Dataset, with a resumable sampler.

Every sample's randomness comes from ``np.random.default_rng([seed, epoch, index])``, and the sampler hands the
dataset ``(epoch, index)`` pairs, so a sample is the same whatever the number of workers or processes and after a
resume. Unreadable images (``load()`` returns None) are dropped in ``collate`` and counted in the batch.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from mmengine.dist import get_dist_info
from torch.utils.data import Dataset, IterableDataset, Sampler, default_collate, get_worker_info

from sslreg.dataset import DatasetSource
from sslreg.pretext import PretextTask


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one sample: a function of (seed, epoch, index) only."""
    return np.random.default_rng([seed, epoch, index])


class PretextDataset(Dataset):
    """Map-style adapter: item ``(epoch, index)`` is ``task.make_sample(source image index)``, or None if unreadable."""

    def __init__(self, source: DatasetSource, task: PretextTask, seed: int) -> None:
        self.source, self.task, self.seed = source, task, seed

    #: mmengine asks datasets for their meta information; there is none to record.
    metainfo: dict = {}

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: tuple[int, int]) -> tuple[Any, Any] | None:
        epoch, index = key
        sample = self.source.load(index)
        if sample is None:
            return None
        return self.task.make_sample(sample.image, sample_rng(self.seed, epoch, index))


class PretextStream(IterableDataset):
    """Streaming adapter for sources without random access (shards): rank and worker each read their share."""

    def __init__(self, source: DatasetSource, task: PretextTask, seed: int, samples_per_epoch: int) -> None:
        self.source, self.task, self.seed = source, task, seed
        self.samples_per_epoch = samples_per_epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called before each epoch (workers are re-created each epoch, so they see it)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __iter__(self) -> Iterator[tuple[Any, Any] | None]:
        rank, world_size = get_dist_info()
        worker = get_worker_info()
        workers, worker_id = (worker.num_workers, worker.id) if worker else (1, 0)
        own_split = getattr(self.source, "splits_by_worker", False)  # the source already gives each worker its part
        limit = math.ceil(self.samples_per_epoch / workers)
        produced = 0
        for position, sample in enumerate(self.source.stream(rank, world_size, self.epoch)):
            if not own_split and position % workers != worker_id:
                continue
            if produced >= limit:
                return
            produced += 1
            if sample is None:
                yield None
                continue
            # the sample's key names the image whatever the worker count; its position is the fallback
            index = zlib.crc32(sample.key.encode()) if sample.key else position * world_size + rank
            yield self.task.make_sample(sample.image, sample_rng(self.seed, self.epoch, index))


class EpochSampler(Sampler):
    """Shuffled (epoch, index) pairs for this rank; the order is a function of (seed, epoch) alone.

    Like mmengine's DefaultSampler (padding so every rank gets as many samples, rank r takes every world_size-th
    index), plus an optional cap on the samples per epoch and the epoch carried to the dataset.
    """

    def __init__(
        self, dataset: Dataset, seed: int | None = 0, shuffle: bool = True, samples_per_epoch: int | None = None
    ) -> None:
        self.rank, self.world_size = get_dist_info()
        self.dataset, self.seed, self.shuffle = dataset, seed or 0, shuffle
        total = len(dataset) if samples_per_epoch is None else min(samples_per_epoch, len(dataset))
        self.num_samples = math.ceil(total / self.world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Pick the epoch's order (mmengine's DistSamplerSeedHook calls this before every epoch)."""
        self.epoch = epoch

    def indices(self) -> list[int]:
        """This rank's indices for the current epoch."""
        size = len(self.dataset)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(size, generator=generator).tolist()
        else:
            order = list(range(size))
        needed = self.num_samples * self.world_size
        order = (order * math.ceil(needed / size))[:needed] if needed > size else order[:needed]
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter([(self.epoch, index) for index in self.indices()])

    def __len__(self) -> int:
        return self.num_samples


def collate(items: Sequence[tuple[Any, Any] | None]) -> dict[str, Any]:
    """Stack the readable samples; ``num_bad``/``num_seen`` say how many of this batch's images were unreadable."""
    good = [item for item in items if item is not None]
    batch: dict[str, Any] = {"num_bad": len(items) - len(good), "num_seen": len(items)}
    if good:
        inputs, targets = default_collate(good)
        batch.update(inputs=inputs, targets=targets)
    else:
        batch.update(inputs=None, targets=None)
    return batch


def prepare_images(source: DatasetSource, limit: int, seed: int) -> Iterator[np.ndarray]:
    """Up to ``limit`` readable training images, a deterministic random sample (for ``task.prepare``)."""
    if source.is_stream:
        count = 0
        for sample in source.stream(0, 1, 0):
            if count >= limit:
                return
            if sample is not None:
                count += 1
                yield sample.image
        return
    size = len(source)
    rng = np.random.default_rng([seed, 7919])
    order = rng.permutation(size)[: min(size, limit)] if size > limit else range(size)
    for index in order:
        sample = source.load(int(index))
        if sample is not None:
            yield sample.image
