"""shards: webdataset tar shards streamed shard by shard, for collections too large to index in memory.

Shards are split across ranks and then across DataLoader workers (shard i of the epoch's order goes to rank
i mod world_size); nothing keeps a per-image index. The shard order is reshuffled per epoch from (seed, epoch).

Subset: an image is kept when a hash of (subset_seed, its __key__) falls below subset / num_images. The choice
does not depend on shard order, rank or worker count, is the same every epoch, and subsets of one seed are
nested (a smaller N keeps a subset of a larger N's images). The count is N on average (binomial, about
N ± sqrt(N)), not exactly N; ``num_images`` must be given to use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import webdataset as wds
from pydantic import Field, model_validator
from webdataset.shardlists import expand_urls

from sslreg import DatasetSource, Sample
from sslreg_datasets.badimages import BadImageCounter
from sslreg_datasets.base import SourceConfig, required
from sslreg_datasets.decode import decode
from sslreg_datasets.subset import key_hash


class ShardsConfig(SourceConfig):
    """Options of shards."""

    name: str = "shards"
    urls: str | list[str] | None = Field(
        None,
        description="Required. Local tar shard paths; brace patterns expand (data-{000..099}.tar); a list or"
        " '::'-joined.",
    )
    num_images: int | None = Field(
        None, ge=1, description="Total images in all shards; gives len() and is needed for subset (unknown: no len)."
    )
    image_extensions: list[str] = Field(
        ["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff"], min_length=1,
        description="Member extensions tried in order for a sample's image.",
    )  # fmt: skip
    label_extension: str | None = Field(
        None, description="Member holding an integer class label (e.g. 'cls'); None: unlabeled."
    )
    split_by_worker: bool = Field(
        True,
        description="Give each DataLoader worker its own shards (False: every worker reads all this rank's shards).",
    )
    shuffle_shards: bool = Field(True, description="Reshuffle the shard order every epoch from (seed, epoch).")
    seed: int = Field(0, description="Seed of the shard order.")

    @model_validator(mode="after")
    def _check(self) -> ShardsConfig:
        if self.subset is not None and self.num_images is None:
            raise ValueError("subset on shards needs num_images (the total number of images in the shards)")
        if self.subset is not None and self.num_images is not None and self.subset > self.num_images:
            raise ValueError(f"subset={self.subset} is larger than num_images={self.num_images}")
        return self


class Shards(DatasetSource):
    """Streams webdataset tar shards (local files), split by shard across ranks and DataLoader workers.

    ``bad_images`` counts undecodable samples (and unreadable shards) seen by this process.
    """

    name: ClassVar[str] = "shards"
    Config: ClassVar[type[SourceConfig]] = ShardsConfig
    config: ShardsConfig
    consumes: ClassVar[str] = "webdataset tar shards on local disk"
    is_stream: ClassVar[bool] = True

    def __init__(self, config: ShardsConfig) -> None:
        super().__init__(config)
        required(config.urls, self.name, "urls")
        patterns = [config.urls] if isinstance(config.urls, str) else config.urls
        self.urls: list[str] = [url for pattern in patterns for url in expand_urls(pattern)]
        missing = [url for url in self.urls if not Path(url.removeprefix("file:")).is_file()]
        if not self.urls or missing:
            raise FileNotFoundError(
                f"dataset {self.name!r}: {len(missing)} of {len(self.urls)} shards missing, first {missing[:1]}"
                if missing else f"dataset {self.name!r}: urls {config.urls!r} name no shards"
            )  # fmt: skip
        #: True when stream() already splits by DataLoader worker (callers must then not split again).
        self.splits_by_worker: bool = config.split_by_worker
        if config.label_extension:
            self.target_kind = "class"  # labelled shards: overrides the class default for this instance
        self.bad_images = BadImageCounter(
            source=self.name, max_bad_fraction=config.max_bad_fraction, min_seen=config.bad_check_after
        )

    def __len__(self) -> int:
        """Images in the stream: subset (expected count) or num_images; TypeError when unknown."""
        if self.config.subset is not None:
            return self.config.subset
        if self.config.num_images is None:
            raise TypeError(f"dataset {self.name!r}: length unknown; set num_images to give the shards a length")
        return self.config.num_images

    def shards_for(self, rank: int = 0, world_size: int = 1, epoch: int = 0) -> list[str]:
        """The shards ``rank`` reads in ``epoch`` (before the DataLoader worker split)."""
        if not 0 <= rank < world_size:
            raise ValueError(f"dataset {self.name!r}: rank {rank} is not in 0..{world_size - 1}")
        if len(self.urls) < world_size:
            raise ValueError(
                f"dataset {self.name!r}: {len(self.urls)} shards cannot feed {world_size} ranks; use more shards"
            )
        order = list(self.urls)
        if self.config.shuffle_shards:
            permutation = np.random.default_rng([self.config.seed, epoch]).permutation(len(order))
            order = [order[i] for i in permutation]
        return order[rank::world_size]

    def stream(self, rank: int = 0, world_size: int = 1, epoch: int = 0) -> Iterator[Sample | None]:
        """This rank's (and DataLoader worker's) samples, shard after shard; None for an undecodable image."""
        mine = self.shards_for(rank, world_size, epoch)
        import torch.utils.data  # only needed to find the DataLoader worker we run in

        worker = torch.utils.data.get_worker_info()
        if worker is not None and self.splits_by_worker:
            mine = mine[worker.id :: worker.num_workers]
        keep = None
        if self.config.subset is not None and self.config.num_images:
            keep = self.config.subset / self.config.num_images
        for sample in wds.tarfile_samples([{"url": url} for url in mine], handler=self._shard_error):
            if keep is not None and key_hash(self.config.subset_seed, sample["__key__"]) >= keep:
                continue
            yield self._sample(sample)

    def _sample(self, sample: dict[str, Any]) -> Sample | None:
        key = f"{Path(sample.get('__url__', '')).name}/{sample['__key__']}"
        members = {name.lower(): value for name, value in sample.items() if not name.startswith("__")}
        data = next((members[ext] for ext in self.config.image_extensions if ext in members), None)
        if data is None:
            self.bad_images.record_bad(key, f"no member with extension {'/'.join(self.config.image_extensions)}")
            return None
        decoded = decode(data)
        if decoded.image is None:
            self.bad_images.record_bad(key, decoded.reason)
            return None
        target = None
        if self.config.label_extension:
            label = members.get(self.config.label_extension.lower(), b"")
            try:
                target = int(bytes(label).decode().strip())
            except ValueError:
                self.bad_images.record_bad(key, f"no integer label in .{self.config.label_extension}")
                return None
        self.bad_images.record_good()
        return Sample(decoded.image, target, key)

    def _shard_error(self, error: Exception) -> bool:
        """webdataset handler: count a broken shard or member as one bad image (keyed by the shard) and go on.

        A tar cut off right after a complete member ends silently (Python's tarfile sees a normal end).
        """
        self.bad_images.record_bad(str(getattr(error, "args", [""])[-1] or "shard"), f"{type(error).__name__}: {error}")
        return True
