"""The core data adapter: every consumer sees every sample exactly once per epoch, whatever workers and ranks.

Each consumer builds its loader through sslreg.make_loader with its own per-sample transform (pretraining:
the task's make_sample; feature extraction: the evaluation preprocessing; the linear probe: its augmentation),
so the sharding under test is the one they really use. Samples are identified by their key.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from sslreg_linear.data import StackTargets, probe_loader
from sslreg_linear.transforms import ImagePipeline

from sslreg import Collate, Preprocess, Sample, extract_features, make_loader, sample_rng
from sslreg.data import EpochSampler
from sslreg.runner.data import PretextTransform

sys.path.insert(0, str(Path(__file__).parent))
import runner_helpers as helpers

SIZE = 24


def _source(stream: bool):
    registry = helpers.make_registry()
    return registry, registry.build("dataset", {"name": "memory_stream" if stream else "memory", "size": SIZE})


class KeyedTransform:
    """Wraps a consumer's transform and keeps the sample's key beside its output."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __call__(self, sample: Sample, rng: np.random.Generator):
        return sample.key, self.inner(sample, rng)


def _keys(loader) -> list[str]:
    keys: list[str] = []
    for batch in loader:
        if batch.data is not None:
            keys.extend(batch.data[0])
    return keys


def _union_over_ranks(build, world_size: int) -> Counter:
    seen: Counter = Counter()
    for rank in range(world_size):
        seen.update(_keys(build(rank)))
    return seen


def _stack_keyed(items):
    return [key for key, _ in items], [value for _, value in items]


@pytest.mark.parametrize("stream", [False, True], ids=["map", "stream"])
@pytest.mark.parametrize("workers", [0, 1, 2, 3])
@pytest.mark.parametrize("world_size", [1, 2])
@pytest.mark.parametrize("consumer", ["pretraining", "features", "linear"])
def test_every_sample_exactly_once_per_epoch(stream, workers, world_size, consumer):
    registry, source = _source(stream)
    if consumer == "pretraining":
        transform = PretextTransform(registry.build("pretext", {"name": "rotation", "size": 16}))
        options = dict(shuffle=True, pad=True, batch_size=4)
    elif consumer == "features":
        transform = _Features()
        options = dict(shuffle=False, batch_size=5)
    else:
        transform = _Linear()
        options = dict(shuffle=True, batch_size=5)

    def build(rank: int):
        return make_loader(
            source,
            KeyedTransform(transform),
            seed=3,
            epoch=1,
            num_workers=workers,
            rank=rank,
            world_size=world_size,
            collate=Collate(_stack_keyed),
            **options,
        )

    seen = _union_over_ranks(build, world_size)
    assert sorted(seen) == sorted(f"mem/{i}" for i in range(SIZE))
    assert set(seen.values()) == {1}


class _Features:
    def __call__(self, sample, rng):
        return Preprocess(16)(sample.image)


class _Linear:
    def __call__(self, sample, rng):
        return ImagePipeline(Preprocess(16), train=True)(sample.image, rng)


@pytest.mark.parametrize("stream", [False, True], ids=["map", "stream"])
@pytest.mark.parametrize("workers", [0, 2])
def test_feature_extraction_reads_each_image_once(stream, workers):
    registry, source = _source(stream)
    trunk = registry.build("backbone", {"name": "tinynet"})
    features = extract_features(trunk, source, "all", image_size=16, batch_size=5, num_workers=workers)
    assert len(features) == SIZE and features.targets.shape == (SIZE,)
    assert sorted(Counter(features.targets.tolist()).values()) == [SIZE // 4] * 4


@pytest.mark.parametrize("stream", [False, True], ids=["map", "stream"])
@pytest.mark.parametrize("workers", [0, 3])
def test_linear_probe_loader_reads_each_image_once(stream, workers):
    _, source = _source(stream)
    loader = probe_loader(
        source,
        ImagePipeline(Preprocess(16), train=True),
        StackTargets("class", 4, source.name),
        epoch=0,
        seed=0,
        shuffle=True,
        batch_size=5,
        num_workers=workers,
    )
    labels = torch.cat([batch.data[1] for batch in loader])
    assert len(labels) == SIZE and sorted(Counter(labels.tolist()).values()) == [SIZE // 4] * 4


def test_items_do_not_depend_on_workers_and_change_with_the_epoch():
    registry, source = _source(False)
    transform = KeyedTransform(PretextTransform(registry.build("pretext", {"name": "rotation", "size": 16})))

    def batches(workers: int, epoch: int):
        loader = make_loader(
            source, transform, batch_size=4, seed=5, epoch=epoch, shuffle=True, num_workers=workers, rank=0,
            world_size=1, collate=Collate(_stack_keyed),
        )  # fmt: skip
        return [(keys, torch.stack([x for x, _ in values])) for keys, values in (b.data for b in loader)]

    single, double = batches(0, 2), batches(2, 2)
    assert [k for k, _ in single] == [k for k, _ in double]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(single, double))
    other = batches(0, 3)
    assert [k for k, _ in other] != [k for k, _ in single]  # another epoch, another order


def test_sampler_shards_the_global_order_between_ranks():
    dataset = list(range(20))
    capped = EpochSampler(dataset, seed=1, samples_per_epoch=6, rank=0, world_size=1)
    assert len(list(capped)) == len(capped) == 6
    single = EpochSampler(dataset, seed=1, rank=0, world_size=1)
    single.set_epoch(4)
    order = [index for _, index in single]
    shards = []
    for rank in range(2):
        sampler = EpochSampler(dataset, seed=1, rank=rank, world_size=2)
        sampler.set_epoch(4)
        shards.append([index for _, index in sampler])
    assert shards[0] == order[0::2] and shards[1] == order[1::2]
    assert all(epoch == 4 for epoch, _ in single)
    odd = [EpochSampler(list(range(5)), rank=r, world_size=2, pad=False) for r in range(2)]
    assert [len(s) for s in odd] == [3, 2] and sorted(i for s in odd for _, i in s) == list(range(5))


def test_collate_drops_and_counts_unreadable_and_keeps_missing_targets():
    batch = Collate()([(torch.zeros(2), torch.tensor(1)), None, (torch.ones(2), torch.tensor(0))])
    assert batch.bad == 1 and batch.seen == 3 and batch.data[0].shape == (2, 2)
    empty = Collate()([None, None])
    assert empty.data is None and empty.bad == 2 and empty.seen == 2
    no_targets = Collate()([(torch.zeros(2), None), (torch.ones(2), None)])
    assert no_targets.data[0].shape == (2, 2) and no_targets.data[1] is None


def test_sample_rng_is_a_function_of_seed_epoch_and_index():
    assert sample_rng(1, 2, 3).random() == sample_rng(1, 2, 3).random()
    assert sample_rng(1, 2, 3).random() != sample_rng(1, 3, 3).random()
