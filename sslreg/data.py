"""The one adapter from a DatasetSource to batches: pretraining, feature extraction and every evaluator use it.

Seeding, rank and worker sharding happen here and nowhere else:

* map-style sources: :class:`EpochSampler` hands out ``(epoch, index)`` pairs in an order that depends on
  ``(seed, epoch)`` only; rank ``r`` of ``W`` takes every ``W``-th pair, so the union over ranks is the epoch.
* streams: DataLoader worker ``w`` of rank ``r`` reads part ``r * workers + w`` of ``world_size * workers``
  from ``source.stream(part, num_parts, epoch)`` (the source's contract: disjoint parts, union = everything).

An item's randomness comes from :func:`sample_rng` ``(seed, epoch, index)`` (a stream's index is a hash of the
sample's key), so a sample is the same whatever the number of workers or processes and after a resume. While a
transform runs, torch's, numpy's and Python's global generators are seeded from ``(seed, epoch, index)`` too and
restored afterwards (:func:`isolated_globals`): a transform that draws from them (torchvision's v2 transforms
do) still gives the same sample in a worker and in the main process, and never shifts training's RNG.
Unreadable images (the source returns None, or the transform does) are dropped when a batch is collated and
counted in it (:class:`Batch`), so every consumer accounts for them the same way.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import random
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler, default_collate, get_worker_info

from sslreg.calls import plugin_call
from sslreg.dataset import DatasetSource, Sample

_END = object()

#: A picklable per-sample function run in DataLoader workers: the item to batch, or None to skip the sample.
Transform = Callable[[Sample, np.random.Generator], Any]


def world() -> tuple[int, int]:
    """(rank, world size) of this process, from torchrun's environment ((0, 1) without it)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one sample: a function of (seed, epoch, index) only."""
    return np.random.default_rng([seed, epoch, index])


@contextlib.contextmanager
def isolated_globals(seed: int, epoch: int, index: int) -> Iterator[None]:
    """torch's (CPU), numpy's and Python's global generators seeded from (seed, epoch, index), restored after."""
    state = np.random.SeedSequence([seed, epoch, index, 0x5EED]).generate_state(2, np.uint32)
    numpy_state, python_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(state[0]) << 32 | int(state[1]))
        np.random.seed(int(state[0]))
        random.seed(int(state[1]))
        try:
            yield
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)


def key_index(key: str) -> int:
    """A stable index for a streamed sample, from its key (the same whatever rank or worker reads it)."""
    return zlib.crc32(key.encode())


class Batch(NamedTuple):
    """The readable items of a batch stacked (None when every image was unreadable), and the counts.

    A NamedTuple so that mmengine's data preprocessor passes it through unchanged as positional arguments.
    """

    data: Any
    bad: int
    seen: int


def stack(items: list[Any]) -> Any:
    """torch's default_collate, except that ``None`` leaves (a task without targets) stay None."""
    first = items[0]
    if first is None:
        return None
    if isinstance(first, tuple):
        return tuple(stack([item[i] for item in items]) for i in range(len(first)))
    if isinstance(first, dict):
        return {key: stack([item[key] for item in items]) for key in first}
    return default_collate(items)


@dataclass(frozen=True)
class Collate:
    """Drop unreadable items (None) and stack the rest with ``stack_items``; the Batch counts what was dropped."""

    stack_items: Callable[[list[Any]], Any] = stack

    def __call__(self, items: Sequence[Any]) -> Batch:
        kept = [item for item in items if item is not None]
        return Batch(self.stack_items(kept) if kept else None, len(items) - len(kept), len(items))


class MapItems(Dataset):
    """A map-style source as a Dataset of ``(epoch, index)`` keys: ``transform(source.load(index), rng)``."""

    #: mmengine asks datasets for their meta information; there is none to record.
    metainfo: dict = {}

    def __init__(self, source: DatasetSource, transform: Transform, seed: int) -> None:
        self.source, self.transform, self.seed = source, transform, seed

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        with plugin_call(self.source, "load"):
            sample = self.source.load(index)
        if sample is None:
            return None
        with isolated_globals(self.seed, epoch, index):
            return self.transform(sample, sample_rng(self.seed, epoch, index))


class StreamItems(IterableDataset):
    """A streamed source: each (rank, worker) reads its own part; at most ``limit`` samples per rank per epoch."""

    metainfo: dict = {}

    def __init__(
        self, source: DatasetSource, transform: Transform, seed: int, rank: int, world_size: int, limit: int | None
    ) -> None:
        self.source, self.transform, self.seed = source, transform, seed
        self.rank, self.world_size, self.limit = rank, world_size, limit
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called before each epoch (stream workers are not persistent, so each epoch's workers see it)."""
        self.epoch = epoch

    def __len__(self) -> int:
        if self.limit is None:
            return math.ceil(len(self.source) / self.world_size)
        return self.limit

    def __iter__(self) -> Iterator[Any]:
        worker = get_worker_info()
        workers, worker_id = (worker.num_workers, worker.id) if worker else (1, 0)
        part, num_parts = self.rank * workers + worker_id, self.world_size * workers
        limit = None if self.limit is None else math.ceil(self.limit / workers)
        produced = 0
        samples = iter(self.source.stream(part, num_parts, self.epoch))
        for position in itertools.count():
            if limit is not None and produced >= limit:
                return
            with plugin_call(self.source, "stream"):
                sample = next(samples, _END)
            if sample is _END:
                return
            produced += 1
            if sample is None:
                yield None
                continue
            index = key_index(sample.key) if sample.key else position * num_parts + part
            with isolated_globals(self.seed, self.epoch, index):
                item = self.transform(sample, sample_rng(self.seed, self.epoch, index))
            yield item


class EpochSampler(Sampler):
    """``(epoch, index)`` pairs for one rank; the order is a function of (seed, epoch) alone.

    ``samples_per_epoch`` caps an epoch; ``pad`` repeats the start of the order so every rank gets the same
    count (DDP needs equal steps per rank; without padding some ranks get one sample fewer).
    """

    def __init__(
        self,
        dataset: Dataset,
        seed: int = 0,
        shuffle: bool = True,
        samples_per_epoch: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        pad: bool = True,
    ) -> None:
        default_rank, default_world = world()
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size
        self.dataset, self.seed, self.shuffle, self.pad = dataset, seed or 0, shuffle, pad
        self.total = len(dataset) if samples_per_epoch is None else min(samples_per_epoch, len(dataset))
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
        needed = math.ceil(self.total / self.world_size) * self.world_size if self.pad else self.total
        order = (order * math.ceil(needed / size))[:needed] if needed > size else order[:needed]
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter([(self.epoch, index) for index in self.indices()])

    def __len__(self) -> int:
        if self.pad:
            return math.ceil(self.total / self.world_size)
        return len(range(self.rank, self.total, self.world_size))


def _seed_worker(worker_id: int) -> None:
    """Seed the global RNGs of a worker from torch's per-worker seed (itself from the loader's generator)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(
    source: DatasetSource,
    transform: Transform,
    *,
    batch_size: int,
    seed: int = 0,
    epoch: int = 0,
    shuffle: bool = False,
    num_workers: int = 0,
    collate: Collate | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    samples_per_epoch: int | None = None,
    pad: bool = False,
    drop_last: bool = False,
    pin_memory: bool = False,
    prefetch_factor: int | None = None,
    persistent_workers: bool = False,
) -> DataLoader:
    """A DataLoader of :class:`Batch` es over ``source``, for one process (``rank`` of ``world_size``).

    Map-style sources go through :class:`EpochSampler` (``epoch`` is its first epoch; call
    ``loader.sampler.set_epoch`` for the next), streams through :class:`StreamItems` (``loader.dataset.set_epoch``).
    ``samples_per_epoch`` caps the images per epoch (all ranks together).
    """
    default_rank, default_world = world()
    rank = default_rank if rank is None else rank
    world_size = default_world if world_size is None else world_size
    common: dict[str, Any] = dict(
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate or Collate(),
        drop_last=drop_last,
        pin_memory=pin_memory,
        worker_init_fn=_seed_worker,
        generator=torch.Generator().manual_seed(seed),
    )
    if num_workers > 0:
        common.update(prefetch_factor=prefetch_factor, persistent_workers=persistent_workers and not source.is_stream)
    if source.is_stream:
        limit = None if samples_per_epoch is None else math.ceil(samples_per_epoch / world_size)
        dataset = StreamItems(source, transform, seed, rank, world_size, limit)
        dataset.set_epoch(epoch)
        return DataLoader(dataset, **common)
    dataset = MapItems(source, transform, seed)
    sampler = EpochSampler(dataset, seed, shuffle, samples_per_epoch, rank, world_size, pad)
    sampler.set_epoch(epoch)
    return DataLoader(dataset, sampler=sampler, **common)


__all__ = [
    "Batch",
    "Collate",
    "EpochSampler",
    "MapItems",
    "StreamItems",
    "Transform",
    "make_loader",
    "sample_rng",
    "stack",
    "world",
]
