"""shards: every image exactly once across ranks and workers, seeded per-epoch order, hashed subsets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch.utils.data
import webdataset as wds
from sslreg_datasets.shards import Shards, ShardsConfig


@pytest.fixture
def shard_dir(tmp_path: Path, encode_image: Callable[..., bytes]) -> Path:
    """3 shards of 5, 5 and 4 samples with a .cls label; the last sample of shard 2 is a broken JPEG."""
    for shard, count in enumerate((5, 5, 4)):
        with wds.TarWriter(str(tmp_path / f"data-{shard:03d}.tar")) as sink:
            for i in range(count):
                data = encode_image(10 * shard + i, ".jpg", size=16)
                if (shard, i) == (2, 3):
                    data = data[:-40]
                sink.write({"__key__": f"s{shard}_{i:02d}", "jpg": data, "cls": str(shard)})
    return tmp_path


def shards(root: Path, **options: object) -> Shards:
    return Shards(ShardsConfig(urls=str(root / "data-{000..002}.tar"), **options))


def keys(source: Shards, rank: int = 0, world_size: int = 1, epoch: int = 0) -> list[str]:
    return [s.key for s in source.stream(rank, world_size, epoch) if s is not None]


def test_each_image_once_across_ranks(shard_dir: Path) -> None:
    source = shards(shard_dir, label_extension="cls", max_bad_fraction=0.5, num_images=14)
    assert source.is_stream and source.target_kind == "class" and len(source) == 14
    rank0, rank1 = keys(source, 0, 2), keys(source, 1, 2)
    seen = rank0 + rank1
    assert len(seen) == len(set(seen)) == 13 and not set(rank0) & set(rank1)
    assert source.bad_images.bad == 1 and source.bad_images.keys == ["data-002.tar/s2_03"]
    sample = next(s for s in source.stream() if s is not None)
    assert sample.image.shape == (16, 24, 3) and sample.target == int(sample.key[len("data-00")])


def test_workers_split_a_ranks_shards(shard_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = shards(shard_dir, max_bad_fraction=0.5)
    everything = keys(source)
    per_worker = []
    for worker in range(2):
        info = SimpleNamespace(id=worker, num_workers=2)
        monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda info=info: info)
        per_worker.append(keys(source))
    assert sorted(per_worker[0] + per_worker[1]) == sorted(everything) and per_worker[0] and per_worker[1]
    assert keys(shards(shard_dir, max_bad_fraction=0.5, split_by_worker=False)) == everything  # worker 1 reads all


def test_epoch_order_is_seeded(shard_dir: Path) -> None:
    source = shards(shard_dir, max_bad_fraction=0.5)
    orders = {tuple(source.shards_for(0, 1, epoch)) for epoch in range(6)}
    assert len(orders) > 1 and source.shards_for(0, 1, 3) == shards(shard_dir).shards_for(0, 1, 3)
    assert shards(shard_dir, shuffle_shards=False).shards_for(1, 2) == [str(shard_dir / "data-001.tar")]
    with pytest.raises(ValueError, match="3 shards cannot feed 4 ranks"):
        source.shards_for(0, 4)


def test_hashed_subset_is_stable_and_seeded(shard_dir: Path) -> None:
    source = shards(shard_dir, num_images=14, subset=7, max_bad_fraction=0.5)
    kept = sorted(keys(source, 0, 1, epoch=0))
    assert 0 < len(kept) < 13 and len(source) == 7
    assert sorted(keys(source, 0, 2, 5) + keys(source, 1, 2, 5)) == kept  # same subset on any split or epoch
    other = shards(shard_dir, num_images=14, subset=7, subset_seed=3, max_bad_fraction=0.5)
    assert sorted(keys(other)) != kept
    larger = shards(shard_dir, num_images=14, subset=12, max_bad_fraction=0.5)
    assert set(kept) <= set(keys(larger))  # nested: a larger N keeps every image of a smaller one


def test_shard_errors(shard_dir: Path) -> None:
    with pytest.raises(FileNotFoundError, match="1 of 4 shards missing"):
        Shards(ShardsConfig(urls=str(shard_dir / "data-{000..003}.tar")))
    with pytest.raises(ValueError, match="subset on shards needs num_images"):
        ShardsConfig(urls="x.tar", subset=3)
    with pytest.raises(TypeError, match="set num_images"):
        len(shards(shard_dir))
    with pytest.raises(NotImplementedError):
        shards(shard_dir).load(0)
    assert np.isclose(len(shards(shard_dir, num_images=14)), 14)


def test_a_broken_shard_is_counted_and_skipped(shard_dir: Path) -> None:
    (shard_dir / "data-001.tar").write_bytes(b"not a tar file at all" * 10)
    source = shards(shard_dir, shuffle_shards=False, max_bad_fraction=1.0)
    seen = keys(source)
    assert {key.split("/")[0] for key in seen} == {"data-000.tar", "data-002.tar"} and len(seen) == 8
    assert str(shard_dir / "data-001.tar") in source.bad_images.keys
