"""DatasetSource: yields images, unlabeled or with targets, from any layout and at any scale."""

from __future__ import annotations

import hashlib
import os
from abc import abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
from pydantic import Field

from sslreg.component import Component, ComponentConfig, ComponentSpec


class Sample(NamedTuple):
    """One image as RGB uint8 (H, W, 3) with its target (None when unlabeled) and a stable key."""

    image: np.ndarray
    target: Any = None
    key: str = ""


class DatasetConfig(ComponentConfig):
    """Options every dataset source accepts; ``subset`` is the paper's data-size axis."""

    subset: int | None = Field(None, ge=1, description="Deterministic random subset of N images (None: all).")
    subset_seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed that picks the subset (0..2**32-1).")
    max_bad_fraction: float = Field(
        0.05, ge=0.0, le=1.0, description="Stop with an error once more than this fraction of images is unreadable."
    )


class DataSpec(ComponentSpec):
    """A dataset named inside another component's options (e.g. an evaluator's train/test data).

    Validated against the named dataset's own Config when the experiment is validated.
    """


class DatasetSource(Component):
    """Abstract data source. Indexable sources implement ``__len__`` and ``load``; streams override ``stream``."""

    kind: ClassVar[str] = "dataset"
    Config: ClassVar[type[ComponentConfig]] = DatasetConfig
    consumes: ClassVar[str] = "files on local disk"
    produces: ClassVar[str] = "Sample(image RGB uint8, target, key)"
    #: What ``Sample.target`` holds: "none", "class", "multilabel" (1 present, -1 absent, 0 difficult), ...
    target_kind: ClassVar[str] = "none"
    #: True for sources that can only be streamed (shards); they have no random access.
    is_stream: ClassVar[bool] = False

    def __init__(self, config: DatasetConfig) -> None:
        self.config = config

    @property
    def class_names(self) -> list[str]:
        """Names of the target classes (empty when unlabeled)."""
        return []

    @abstractmethod
    def __len__(self) -> int:
        """Number of images after ``subset`` is applied."""

    def load(self, index: int) -> Sample | None:
        """Image ``index``; None when the file is unreadable (the caller counts it)."""
        raise NotImplementedError(f"{self.name} is a stream: iterate it with stream()")

    def targets(self) -> np.ndarray | None:
        """Every image's target in index order, known without reading any image (a split list, folder names), or
        None when only reading the images tells. Lets an evaluator that uses a sample of a large set (Places205
        low-shot: ~30k of 2.45M images) draw it before any image goes through the trunk. Default: None."""
        return None

    @classmethod
    def check(cls, config: DatasetConfig) -> list[str]:
        """Problems with the data ``config`` names, found cheaply before any work starts (overrides Component.check).

        One line per problem, starting with the option it concerns (``"root '/x' does not exist"``): a missing
        root or split file, a folder with no images. Must not decode images. Default: nothing to check.
        """
        return []

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the data this source reads, for the provenance of results (``results.json``).

        Default: the source's name and resolved options, which identify generated data completely. Sources that
        read files override it to describe the files themselves, e.g. ``{**super().fingerprint(),
        **files_fingerprint(paths, root)}`` (count, bytes, and a hash of relative paths and sizes), or the shard
        list of a stream. Must be cheap: no image is decoded, at most one ``stat`` per file.
        """
        return {"dataset": self.name, "options": self.config.model_dump(mode="json")}

    def stream(self, part: int = 0, num_parts: int = 1, epoch: int = 0) -> Iterator[Sample | None]:
        """Part ``part`` of ``num_parts``: disjoint parts whose union is every image, deterministic for ``epoch``.

        The core picks the part (DDP rank and DataLoader worker together) in one place; a source never splits
        by worker or rank on its own.
        """
        for index in range(part, len(self), num_parts):
            yield self.load(index)


def files_fingerprint(
    paths: Iterable[str | os.PathLike[str]], root: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """``{"files", "bytes", "sha256"}`` of a list of files: count, total size, and the sha256 of one
    ``relative path<TAB>size`` line per file in the given order (paths relative to ``root`` when given, so the
    same data under another mount point has the same hash). One ``stat`` per file; a missing file counts as
    size -1. For :meth:`DatasetSource.fingerprint` of file-reading sources (shard lists too).
    """
    digest = hashlib.sha256()
    count = total = 0
    base = Path(root) if root is not None else None
    for path in paths:
        path = Path(path)
        try:
            size = path.stat().st_size
        except OSError:
            size = -1
        shown = path.relative_to(base) if base is not None and path.is_relative_to(base) else path
        digest.update(f"{shown.as_posix()}\t{size}\n".encode())
        count += 1
        total += max(size, 0)
    return {"files": count, "bytes": total, "sha256": digest.hexdigest()}
