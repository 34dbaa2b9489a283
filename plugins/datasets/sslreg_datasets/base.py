"""Shared base of the indexable sources: subset, bounds checks, size limit and bad-image counting, written once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from sslreg import DatasetConfig, DatasetSource, Sample, UserError
from sslreg_datasets.badimages import BadImageCounter
from sslreg_datasets.checks import raise_problems
from sslreg_datasets.decode import MAX_PIXELS, read
from sslreg_datasets.subset import subset_indices

#: Extensions a folder scan picks up by default (compared case-insensitively).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class SourceConfig(DatasetConfig):
    """Options every source of this plugin shares on top of sslreg's DatasetConfig."""

    bad_check_after: int = Field(
        100, ge=1, description="Only check max_bad_fraction once this many images were read (avoids early noise)."
    )
    max_pixels: int = Field(
        MAX_PIXELS,
        ge=1,
        description="An image whose header gives more pixels than this is skipped and counted, never decoded.",
    )


class IndexedSource(DatasetSource):
    """A source with random access. Subclasses give ``_count`` items and ``_read(item)``; subset is applied here.

    ``bad_images`` counts unreadable images seen by this process (a BadImageCounter; see its ``summary()``).
    Building one runs ``check(config)`` first and raises its problems as one UserError.
    """

    Config: ClassVar[type[SourceConfig]] = SourceConfig
    config: SourceConfig

    def __init__(self, config: SourceConfig) -> None:
        super().__init__(config)
        raise_problems(self.name, type(self).check(config))
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

    def targets(self) -> np.ndarray | None:
        """The list's targets in index order (the subset's), None for an unlabeled source; no image is read."""
        if self._targets is None:
            return None
        return np.asarray([self._targets[item] for item in self.indices])

    def path(self, index: int) -> Path:
        """Full path of image ``index``."""
        return self._root / self._files[int(self.indices[index])]

    def _read(self, item: int) -> Sample | str:
        decoded = read(self._root / self._files[item], self.config.max_pixels)
        if decoded.image is None:
            return decoded.reason
        target = None if self._targets is None else self._targets[item]
        return Sample(decoded.image, target, self._item_key(item))


def list_lines(file: Path, source: str) -> list[tuple[int, str]]:
    """(line number, stripped text) of the non-blank, non-'#' lines of a list file (UTF-8)."""
    try:
        with open(file, encoding="utf-8") as handle:
            lines = [(number, line.strip()) for number, line in enumerate(handle, 1)]
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"dataset {source!r}: cannot read {str(file)!r}: {error}") from None
    return [(number, text) for number, text in lines if text and not text.startswith("#")]
