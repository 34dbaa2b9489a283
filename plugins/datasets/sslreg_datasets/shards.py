"""shards: webdataset tar shards streamed shard by shard, for collections too large to index in memory.

Reading: every url is a local path, opened here with ``open()`` and read as a tar stream by webdataset's tar
iterators; no url is ever handed to a shell. Urls with a scheme (``http://``, ``s3://``, ``gs://``, ``pipe:``)
are refused unless ``allow_remote: true``, which passes them to webdataset's ``gopen``: note that ``pipe:CMD``
then RUNS ``CMD`` in a shell. A url that names an existing local file is always read as that file, even
with ``allow_remote`` (a file named ``pipe:touch x`` is read, not run).

Parts: ``stream(part, num_parts, epoch)`` gives disjoint parts whose union is every sample, for any
``num_parts``. The shard order of the epoch is a permutation from (seed, epoch) (or the url order without
``shuffle_shards``); with S shards:
- ``num_parts <= S``: part p reads shards p, p + num_parts, p + 2 num_parts, ... of that order, whole;
- ``num_parts > S``: part p reads shard p mod S, and of it only the samples at positions j (counted in the
  shard) with j mod k = p div S, where k is the number of parts that share that shard. Every part then reads
  through its whole shard but decodes only its own samples; for even parts use a multiple of S parts, or more
  shards than parts.
Nothing keeps a per-image index.

Subset: an image is kept when a hash of (subset_seed, its __key__) falls below subset / num_images. The choice
does not depend on shard order or parts, is the same every epoch, and subsets of one seed are nested (a smaller
N keeps a subset of a larger N's images). The count is N on average (binomial, about N ± sqrt(N)), not exactly
N; ``num_images`` must be given to use it.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import IO, Any, ClassVar, NamedTuple
from urllib.parse import urlparse

import numpy as np
from braceexpand import braceexpand
from pydantic import Field, model_validator
from webdataset.tariterators import group_by_keys, tar_file_expander

from sslreg import DatasetSource, Sample, UserError
from sslreg_datasets.badimages import BadImageCounter
from sslreg_datasets.base import SourceConfig
from sslreg_datasets.checks import raise_problems
from sslreg_datasets.decode import decode
from sslreg_datasets.subset import key_hash

#: First bytes of the compressed tar formats Python's tarfile reads (gzip, bzip2, xz).
COMPRESSED = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


class ShardsConfig(SourceConfig):
    """Options of shards."""

    name: str = "shards"
    urls: str | list[str] = Field(
        description="Tar shard paths (local files); brace patterns expand (data-{000..099}.tar); a list or"
        " '::'-joined.",
    )
    allow_remote: bool = Field(
        False,
        description="Also read urls that are not local files (http://, s3://, gs://, pipe:CMD) through"
        " webdataset's gopen; pipe:CMD RUNS CMD in a shell. Off: such urls are refused.",
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
    shuffle_shards: bool = Field(True, description="Reshuffle the shard order every epoch from (seed, epoch).")
    seed: int = Field(0, description="Seed of the shard order.")

    @model_validator(mode="after")
    def _check(self) -> ShardsConfig:
        if self.subset is not None and self.num_images is None:
            raise ValueError("subset on shards needs num_images (the total number of images in the shards)")
        if self.subset is not None and self.num_images is not None and self.subset > self.num_images:
            raise ValueError(f"subset={self.subset} is larger than num_images={self.num_images}")
        return self


def expand(urls: str | list[str]) -> list[str]:
    """Every shard url: '::'-joined strings split, brace patterns expanded (no environment lookup, no globbing)."""
    patterns = urls.split("::") if isinstance(urls, str) else urls
    return [url for pattern in patterns if pattern.strip() for url in braceexpand(pattern.strip())]


def is_remote(url: str) -> bool:
    """True when ``url`` has a scheme other than file: (one letter is a Windows drive, not a scheme)."""
    scheme = urlparse(url).scheme
    return len(scheme) > 1 and scheme != "file"


def local_path(url: str) -> Path | None:
    """The local file ``url`` names (a 'file:' prefix is dropped), or None when there is no such file."""
    path = Path(url.removeprefix("file://") if url.startswith("file://") else url.removeprefix("file:"))
    path = path.expanduser()
    try:
        return path if path.is_file() else None
    except ValueError:  # a name the OS cannot take (an embedded NUL byte)
        return None


class ShardProblem(NamedTuple):
    """What is wrong with a shard, worded for one shard and for several."""

    one: str
    many: str


MISSING = ShardProblem("does not exist", "do not exist")
EMPTY = ShardProblem("is empty (0 bytes)", "are empty (0 bytes)")
NO_SAMPLES = ShardProblem("holds no samples (an empty tar archive)", "hold no samples (empty tar archives)")
NOT_TAR = ShardProblem("is not a tar file", "are not tar files")
TRUNCATED = ShardProblem("is truncated (no end-of-archive blocks)", "are truncated (no end-of-archive blocks)")


def shard_problem(path: Path) -> ShardProblem | None:
    """What is wrong with a local shard, from its size and its first and last blocks (None: looks whole)."""
    try:
        size = path.stat().st_size
        if size == 0:
            return EMPTY
        with open(path, "rb") as handle:
            head = handle.read(tarfile.BLOCKSIZE)
            if head.startswith(COMPRESSED):
                return None  # compressed: damage shows when it is read (and is counted then)
            try:
                tarfile.TarInfo.frombuf(head, "utf-8", "surrogateescape")
            except tarfile.EOFHeaderError:
                return NO_SAMPLES
            except tarfile.HeaderError:
                return NOT_TAR
            handle.seek(max(0, size - 2 * tarfile.BLOCKSIZE))
            tail = handle.read()
    except OSError as error:
        reason = f"cannot be read ({error.strerror or error})"
        return ShardProblem(reason, reason)
    if size % tarfile.BLOCKSIZE or len(tail) < 2 * tarfile.BLOCKSIZE or tail.count(0) != len(tail):
        return TRUNCATED
    return None


class Shards(DatasetSource):
    """Streams webdataset tar shards (local files), in disjoint parts for any number of ranks and workers.

    ``bad_images`` counts undecodable samples (and unreadable shards) seen by this process.
    """

    name: ClassVar[str] = "shards"
    Config: ClassVar[type[SourceConfig]] = ShardsConfig
    config: ShardsConfig
    consumes: ClassVar[str] = "webdataset tar shards on local disk"
    is_stream: ClassVar[bool] = True

    @classmethod
    def check(cls, config: ShardsConfig) -> list[str]:  # type: ignore[override]
        """Urls are local (unless allow_remote), exist, and are non-empty, whole tar files (two small reads each)."""
        urls = expand(config.urls)
        if not urls:
            return [f"urls: {config.urls!r} names no shards"]
        problems = []
        remote = [url for url in urls if is_remote(url) and local_path(url) is None]
        if remote and not config.allow_remote:
            more = f" (and {len(remote) - 1} more)" if len(remote) > 1 else ""
            problems.append(
                f"urls: {remote[0]!r}{more} is not a local file; urls with a scheme (pipe: runs a shell command,"
                " http:, s3:, gs:, ...) are read only with allow_remote: true"
            )
        by_problem: dict[ShardProblem, list[str]] = {}
        skipped = set(remote)
        for url in urls:
            if url in skipped:
                continue  # not checked here: reading it would mean the network (or a command)
            path = local_path(url)
            problem = MISSING if path is None else shard_problem(path)
            if problem:
                by_problem.setdefault(problem, []).append(url)
        for problem, bad in by_problem.items():
            more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
            problems.append(f"urls: {len(bad)} of {len(urls)} shards {problem.many}: {bad[0]!r}{more}")
        return problems

    def __init__(self, config: ShardsConfig) -> None:
        super().__init__(config)
        raise_problems(self.name, self.check(config))
        self.urls: list[str] = expand(config.urls)
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

    def shard_order(self, epoch: int = 0) -> list[str]:
        """The shard urls in ``epoch``'s order: a permutation from (seed, epoch), or as given."""
        order = list(self.urls)
        if self.config.shuffle_shards:
            permutation = np.random.default_rng([self.config.seed, epoch]).permutation(len(order))
            order = [order[i] for i in permutation]
        return order

    def assignment(self, part: int = 0, num_parts: int = 1, epoch: int = 0) -> list[tuple[str, int, int]]:
        """(url, first, step) per shard ``part`` reads: it takes the samples at positions first, first + step, ..."""
        if not 0 <= part < num_parts:
            raise ValueError(f"dataset {self.name!r}: part {part} is not in 0..{num_parts - 1}")
        order = self.shard_order(epoch)
        if num_parts <= len(order):
            return [(url, 0, 1) for url in order[part::num_parts]]
        shard = part % len(order)
        return [(order[shard], part // len(order), len(range(shard, num_parts, len(order))))]

    def stream(self, part: int = 0, num_parts: int = 1, epoch: int = 0) -> Iterator[Sample | None]:
        """Part ``part`` of ``num_parts`` (see the module doc), shard after shard; None for an undecodable image."""
        keep = None
        if self.config.subset is not None and self.config.num_images:
            keep = self.config.subset / self.config.num_images
        for url, first, step in self.assignment(part, num_parts, epoch):
            for position, sample in enumerate(self._members(url, report=first == 0)):
                if position % step != first:
                    continue
                if keep is not None and key_hash(self.config.subset_seed, sample["__key__"]) >= keep:
                    continue
                yield self._sample(sample)

    def _open(self, url: str) -> IO[bytes]:
        """A binary stream of shard ``url``: a local file, or (allow_remote only) webdataset's gopen."""
        path = local_path(url)
        if path is not None:
            return open(path, "rb")
        if is_remote(url):
            if not self.config.allow_remote:
                raise UserError(f"dataset {self.name!r}: urls: {url!r} is not a local file and allow_remote is false")
            from webdataset.gopen import gopen

            return gopen(url, "rb")
        return open(url.removeprefix("file:"), "rb")  # gone since check(): OSError, counted by the caller

    def _members(self, url: str, report: bool) -> Iterator[dict[str, Any]]:
        """The samples (member dicts grouped by key) of one shard; its errors are counted when ``report``."""
        errors: list[str] = []
        handler = partial(self._shard_error, url, errors) if report else (lambda error: True)
        path = local_path(url)
        problem = shard_problem(path) if path is not None else None
        if problem is not None:  # changed since check(): count it once; a truncated shard's whole samples are read
            if report:
                errors.append(f"shard {problem.one}")
                self.bad_images.record_bad(url, errors[0])
            if problem is not TRUNCATED:
                return
        try:
            stream = self._open(url)
        except OSError as error:
            handler(error)
            return
        with stream:
            files = tar_file_expander([{"url": url, "stream": stream}], handler=handler)
            yield from group_by_keys(files, handler=handler)

    def _sample(self, sample: dict[str, Any]) -> Sample | None:
        key = f"{Path(sample.get('__url__', '')).name}/{sample['__key__']}"
        members = {name.lower(): value for name, value in sample.items() if not name.startswith("__")}
        data = next((members[ext] for ext in self.config.image_extensions if ext in members), None)
        if data is None:
            self.bad_images.record_bad(key, f"no member with extension {'/'.join(self.config.image_extensions)}")
            return None
        decoded = decode(data, self.config.max_pixels)
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

    def _shard_error(self, url: str, errors: list[str], error: Exception) -> bool:
        """webdataset handler: count a broken shard once (keyed by its url) and go on with the next shard.

        A tar cut off right after a complete member ends silently (Python's tarfile sees a normal end);
        ``check()`` finds such a shard by its missing end-of-archive blocks.
        """
        if not errors:
            message = str(error.args[0]).split(" @ ")[0] if error.args else ""
            if isinstance(error, OSError) and error.strerror:
                message = error.strerror
            errors.append(f"{type(error).__name__}: {message}")
            self.bad_images.record_bad(url, errors[0])
        return True
