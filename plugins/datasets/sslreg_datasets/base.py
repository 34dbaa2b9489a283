"""Shared base of the indexable sources: subset, bounds checks and bad-image counting, written once."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from sslreg import DatasetConfig, DatasetSource, Sample
from sslreg_datasets.badimages import BadImageCounter
from sslreg_datasets.decode import read
from sslreg_datasets.subset import subset_indices

#: Extensions a folder scan picks up by default (compared case-insensitively).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class SourceConfig(DatasetConfig):
    """Options every source of this plugin shares on top of sslreg's DatasetConfig."""

    bad_check_after: int = Field(
        100, ge=1, description="Only check max_bad_fraction once this many images were read (avoids early noise)."
    )


class IndexedSource(DatasetSource):
    """A source with random access. Subclasses give ``_count`` items and ``_read(item)``; subset is applied here.

    ``bad_images`` counts unreadable images seen by this process (a BadImageCounter; see its ``summary()``).
    """

    Config: ClassVar[type[SourceConfig]] = SourceConfig
    config: SourceConfig

    def __init__(self, config: SourceConfig) -> None:
        super().__init__(config)
        self.bad_images = BadImageCounter(
            source=self.name, max_bad_fraction=config.max_bad_fraction, min_seen=config.bad_check_after
        )
        self._indices: np.ndarray | range | None = None

    def _count(self) -> int:
        """Number of items before the subset."""
        raise NotImplementedError

    def _read(self, item: int) -> Sample | str:
        """Item ``item`` (an index before the subset) as a Sample, or a reason it is unreadable."""
        raise NotImplementedError

    @property
    def indices(self) -> np.ndarray | range:
        """The items this source serves, in order (the subset, or all)."""
        if self._indices is None:
            self._indices = subset_indices(self._count(), self.config.subset, self.config.subset_seed, self.name)
        return self._indices

    def __len__(self) -> int:
        return len(self.indices)

    def load(self, index: int) -> Sample | None:
        """Image ``index`` of the (subset) source; None when unreadable, counted in ``bad_images``."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"dataset {self.name!r}: index {index} out of range for {len(self)} images")
        sample = self._read(int(self.indices[index]))
        if isinstance(sample, str):
            self.bad_images.record_bad(self.key(index), sample)
            return None
        self.bad_images.record_good()
        return sample

    def key(self, index: int) -> str:
        """Stable key of image ``index`` (its relative path for file sources)."""
        return self._item_key(int(self.indices[index]))

    def _item_key(self, item: int) -> str:
        """Key of item ``item`` (an index before the subset)."""
        return str(item)


class FileSource(IndexedSource):
    """An indexable source backed by image files: ``_files`` (paths), ``_targets`` (or None) and ``_root``."""

    def __init__(self, config: SourceConfig) -> None:
        super().__init__(config)
        self._root = Path(".")
        self._files: Sequence[str] = []
        self._targets: Sequence[Any] | None = None

    def _count(self) -> int:
        return len(self._files)

    def _item_key(self, item: int) -> str:
        return self._files[item]

    def path(self, index: int) -> Path:
        """Full path of image ``index``."""
        return self._root / self._files[int(self.indices[index])]

    def _read(self, item: int) -> Sample | str:
        decoded = read(self._root / self._files[item])
        if decoded.image is None:
            return decoded.reason
        target = None if self._targets is None else self._targets[item]
        return Sample(decoded.image, target, self._item_key(item))


def required(value: object, source: str, option: str) -> None:
    """A ValueError naming the source when a required option was not given."""
    if value is None:
        raise ValueError(f"dataset {source!r}: option {option!r} is required")


def existing_dir(path: str | os.PathLike[str] | None, source: str, option: str = "root") -> Path:
    """``path`` as a Path, or a FileNotFoundError naming the source and option."""
    required(path, source, option)
    assert path is not None
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset {source!r}: {option} {str(folder)!r} is not a folder")
    return folder


def existing_file(path: str | os.PathLike[str] | None, source: str, option: str) -> Path:
    """``path`` as a Path, or a FileNotFoundError naming the source and option."""
    required(path, source, option)
    assert path is not None
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"dataset {source!r}: {option} {str(file)!r} does not exist")
    return file


def scan_images(folder: Path, extensions: Sequence[str]) -> list[str]:
    """Sorted paths (relative to ``folder``, '/'-separated) of the files under it with one of ``extensions``."""
    wanted = {ext.lower() if ext.startswith(".") else "." + ext.lower() for ext in extensions}
    found = []
    for directory, subdirs, names in os.walk(folder, followlinks=True):
        subdirs.sort()
        base = Path(directory).relative_to(folder)
        found.extend((base / name).as_posix() for name in names if Path(name).suffix.lower() in wanted)
    return sorted(found)


def list_lines(file: Path) -> list[tuple[int, str]]:
    """(line number, stripped text) of the non-blank, non-'#' lines of a list file."""
    with open(file, encoding="utf-8") as handle:
        lines = [(number, line.strip()) for number, line in enumerate(handle, 1)]
    return [(number, text) for number, text in lines if text and not text.startswith("#")]
