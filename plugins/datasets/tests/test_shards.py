"""shards: disjoint, complete parts for any number of parts, seeded per-epoch order, hashed subsets, bad shards."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch.utils.data
from sslreg_datasets.shards import Shards, ShardsConfig

from sslreg import UserError


def shards(root: Path, **options: object) -> Shards:
    return Shards(ShardsConfig(urls=str(root / "data-{000..002}.tar"), **options))


def keys(source: Shards, part: int = 0, num_parts: int = 1, epoch: int = 0) -> list[str]:
    return [s.key for s in source.stream(part, num_parts, epoch) if s is not None]


ALL_KEYS = sorted(
    f"data-{s:03d}.tar/s{s}_{i:02d}" for s, n in enumerate((5, 5, 4)) for i in range(n) if (s, i) != (2, 3)
)


@pytest.mark.parametrize("num_parts", [1, 2, 3, 4, 5, 7, 9])
def test_parts_are_disjoint_and_complete_for_any_count(shard_dir: Path, num_parts: int) -> None:
    source = shards(shard_dir, max_bad_fraction=1.0)
    for epoch in (0, 1):
        parts = [keys(source, part, num_parts, epoch) for part in range(num_parts)]
        assert sorted(itertools.chain(*parts)) == ALL_KEYS, f"{num_parts} parts, epoch {epoch}"
        assert parts == [keys(source, part, num_parts, epoch) for part in range(num_parts)]  # deterministic
    # the broken sample is seen (and counted) by exactly one part
    assert source.bad_images.bad == 4 and set(source.bad_images.keys) == {"data-002.tar/s2_03"}


def test_part_rule(shard_dir: Path) -> None:
    source = shards(shard_dir, shuffle_shards=False)
    url = [str(shard_dir / f"data-{i:03d}.tar") for i in range(3)]
    assert source.assignment(1, 2) == [(url[1], 0, 1)]
    assert source.assignment(0, 2) == [(url[0], 0, 1), (url[2], 0, 1)]
    # more parts than shards: shard 0 is shared by parts 0, 3 and 6, shard 1 by parts 1 and 4
    assert source.assignment(3, 7) == [(url[0], 1, 3)] and source.assignment(4, 7) == [(url[1], 1, 2)]
    assert keys(source, 3, 7) == ["data-000.tar/s0_01", "data-000.tar/s0_04"]
    with pytest.raises(ValueError, match="part 2 is not in 0..1"):
        source.assignment(2, 2)


def test_workers_are_never_split_by_the_source(shard_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller picks the part (rank and worker together); inside a worker the source reads what it is asked."""
    source = shards(shard_dir, max_bad_fraction=1.0)
    everything = keys(source)
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: SimpleNamespace(id=1, num_workers=2))
    assert keys(source) == everything and sorted(everything) == ALL_KEYS
    assert not hasattr(source, "splits_by_worker")


def test_epoch_order_is_seeded(shard_dir: Path) -> None:
    source = shards(shard_dir, max_bad_fraction=1.0)
    orders = {tuple(source.shard_order(epoch)) for epoch in range(6)}
    assert len(orders) > 1 and source.shard_order(3) == shards(shard_dir).shard_order(3)
    assert shards(shard_dir, shuffle_shards=False).shard_order(5) == [
        str(shard_dir / f"data-{i:03d}.tar") for i in range(3)
    ]
    assert len({tuple(keys(source, 0, 1, epoch)) for epoch in range(6)}) > 1
    assert all(sorted(keys(source, 0, 1, epoch)) == ALL_KEYS for epoch in range(3))


def test_labels_and_images(shard_dir: Path) -> None:
    source = shards(shard_dir, label_extension="cls", max_bad_fraction=0.5, num_images=14)
    assert source.is_stream and source.target_kind == "class" and len(source) == 14
    sample = next(s for s in source.stream() if s is not None)
    assert sample.image.shape == (16, 24, 3) and sample.target == int(sample.key[len("data-00")])


def test_hashed_subset_is_stable_and_seeded(shard_dir: Path) -> None:
    source = shards(shard_dir, num_images=14, subset=7, max_bad_fraction=1.0)
    kept = sorted(keys(source, 0, 1, epoch=0))
    assert 0 < len(kept) < 13 and len(source) == 7
    for num_parts in (2, 5):  # same subset on any split or epoch
        assert sorted(itertools.chain(*(keys(source, p, num_parts, 5) for p in range(num_parts)))) == kept
    other = shards(shard_dir, num_images=14, subset=7, subset_seed=3, max_bad_fraction=1.0)
    assert sorted(keys(other)) != kept
    larger = shards(shard_dir, num_images=14, subset=12, max_bad_fraction=1.0)
    assert set(kept) <= set(keys(larger))  # nested: a larger N keeps every image of a smaller one


def test_option_errors(shard_dir: Path) -> None:
    with pytest.raises(ValueError, match="subset on shards needs num_images"):
        ShardsConfig(urls="x.tar", subset=3)
    with pytest.raises(ValueError, match="unknown|Extra inputs"):
        ShardsConfig(urls="x.tar", split_by_worker=True)  # removed: the caller splits
    with pytest.raises(TypeError, match="set num_images"):
        len(shards(shard_dir))
    with pytest.raises(NotImplementedError):
        shards(shard_dir).load(0)
    with pytest.raises(UserError, match=r"^dataset 'shards': urls: 1 of 4 shards do not exist: '.*data-003.tar'$"):
        Shards(ShardsConfig(urls=str(shard_dir / "data-{000..003}.tar")))


def test_a_shard_broken_after_the_check_is_counted_and_skipped(shard_dir: Path) -> None:
    source = shards(shard_dir, shuffle_shards=False, max_bad_fraction=1.0)
    (shard_dir / "data-001.tar").write_bytes(b"not a tar file at all" * 10)
    seen = keys(source)
    assert {key.split("/")[0] for key in seen} == {"data-000.tar", "data-002.tar"} and len(seen) == 8
    assert (str(shard_dir / "data-001.tar"), "shard is not a tar file") in source.bad_images.examples


def test_a_shard_emptied_after_the_check_is_counted(shard_dir: Path) -> None:
    source = shards(shard_dir, shuffle_shards=False, max_bad_fraction=1.0)
    (shard_dir / "data-000.tar").write_bytes(b"")
    assert len(keys(source)) == 8
    assert (str(shard_dir / "data-000.tar"), "shard is empty (0 bytes)") in source.bad_images.examples


def test_a_truncated_shard_keeps_its_whole_samples(shard_dir: Path) -> None:
    source = shards(shard_dir, shuffle_shards=False, max_bad_fraction=1.0)
    shard = shard_dir / "data-000.tar"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2 + 100])  # cut inside a member
    seen = [key for key in keys(source) if key.startswith("data-000")]
    assert seen == ["data-000.tar/s0_00", "data-000.tar/s0_01", "data-000.tar/s0_02"]
    assert (str(shard), "shard is truncated (no end-of-archive blocks)") in source.bad_images.examples
    assert Shards.check(source.config) == [
        f"urls: 1 of 3 shards are truncated (no end-of-archive blocks): {str(shard)!r}"
    ]


def test_every_shard_is_read_through_a_file_object_we_open(shard_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    gopen_module = importlib.import_module("webdataset.gopen")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("gopen must not be used for local shards")

    monkeypatch.setattr(gopen_module, "gopen", refuse)
    assert sorted(keys(shards(shard_dir, max_bad_fraction=1.0))) == ALL_KEYS


def test_many_shards_every_sample_once(tmp_path: Path, make_shards: Callable[..., str]) -> None:
    urls = make_shards(tmp_path, counts=(1, 3, 2, 4), broken=None)
    source = Shards(ShardsConfig(urls=urls, seed=4))
    total = [keys(source, p, 6, epoch=2) for p in range(6)]
    assert sorted(itertools.chain(*total)) == sorted(keys(source)) and len(keys(source)) == 10
    assert np.all([len(part) > 0 for part in total[:4]])
