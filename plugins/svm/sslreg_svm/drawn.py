"""Features of only the images that class-label low-shot draws use (Places205: ~30k of 2.45M training images).

The labels come from the source's split list (``DatasetSource.targets()``), the draws are made from them, and only
the drawn images go through the trunk. A drawn image that turns out unreadable is skipped and counted, left out of
the pools, and the draws are made again (only images not read yet are extracted), so every draw keeps k readable
images of each class, as when every image was extracted first. (A draw takes its classes in turn from one random
stream, so a class's smaller pool can move later classes' picks too: a redraw round reads those as well.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from sslreg import ComponentConfig, DatasetSource, FeatureSet, NoReadableImages, Sample


class DrawnConfig(ComponentConfig):
    """What identifies a set of drawn images (the feature cache key's part): the source, the rows and what the
    source lists at those rows (their keys, e.g. file paths), so that a reordered or edited list is extracted
    again rather than read back for other images."""

    name: str = "drawn"
    source: str
    source_config: dict[str, Any]
    rows: int
    rows_sha256: str


class DrawnImages(DatasetSource):
    """Images ``rows`` of ``source`` as a source of their own; an image's target is its position in ``rows``, so
    that the extracted targets say which drawn images were readable."""

    name: ClassVar[str] = "drawn"
    target_kind: ClassVar[str] = "class"
    config: DrawnConfig

    def __init__(self, source: DatasetSource, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype="<i8")
        digest = hashlib.sha256(rows.tobytes())
        key = getattr(source, "key", None)  # indexable sources name each image (sslreg_datasets: its path)
        if callable(key):
            digest.update("\n".join(key(int(row)) for row in rows).encode())
        super().__init__(
            DrawnConfig(
                source=f"{type(source).__module__}.{type(source).__qualname__}",
                source_config=source.config.model_dump(mode="json"),
                rows=len(rows),
                rows_sha256=digest.hexdigest(),
            )
        )
        self.source, self.rows = source, rows

    def __len__(self) -> int:
        return len(self.rows)

    def load(self, index: int) -> Sample | None:
        sample = self.source.load(int(self.rows[index]))  # the source counts an unreadable image
        return None if sample is None else Sample(sample.image, index, sample.key)


class RowLookup:
    """One layer's features of the drawn images, indexed by the source's rows: ``lookup[rows]`` (rows, D)."""

    def __init__(self, parts: list[tuple[np.ndarray, np.ndarray]]) -> None:
        # per extraction: its source rows sorted, where each sits among the features, and the features
        self.parts = [(rows[order], order, features) for rows, features in parts for order in [np.argsort(rows)]]

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.parts[0][2].shape[1]), np.float32)
        found = np.zeros(len(rows), dtype=bool)
        for sorted_rows, order, features in self.parts:
            position = np.searchsorted(sorted_rows, rows).clip(max=len(sorted_rows) - 1)
            hit = sorted_rows[position] == rows
            out[hit] = features[order[position[hit]]]
            found |= hit
        if not found.all():
            raise KeyError(f"rows {rows[~found][:5].tolist()} were not extracted")
        return out


@dataclass
class DrawnFeatures:
    """Every layer's features of the drawn images, every image's class (-1: unreadable) and what was read."""

    layers: dict[str, RowLookup]
    labels: np.ndarray
    extracted: int
    skipped: int


def extract_drawn(
    source: DatasetSource,
    labels: np.ndarray,
    drawn_rows: Callable[[np.ndarray], np.ndarray],
    extract: Callable[[DatasetSource], FeatureSet],
) -> DrawnFeatures:
    """Extract the images ``drawn_rows(labels)`` picks, redrawing until every drawn image was readable.

    ``drawn_rows`` gives the union of every draw's rows for the labels (an unreadable image labelled -1 is in no
    pool); ``extract`` pools the features of a source (the feature cache applies: a rerun reads nothing again).
    """
    labels = np.array(labels, dtype=np.int64)
    read = np.zeros(len(labels), dtype=bool)
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    skipped = 0
    while True:
        new = np.unique(drawn_rows(labels))
        new = new[~read[new]]
        if not len(new):
            break
        try:
            features = extract(DrawnImages(source, new))
        except NoReadableImages:  # a redraw's few images all unreadable: leave them out and draw again
            readable = new[:0]
        else:
            readable = new[np.asarray(features.targets, dtype=np.int64)]
            for layer, array in features.features.items():
                parts.setdefault(layer, []).append((readable, array))
        read[new] = True
        labels[np.setdiff1d(new, readable)] = -1
        skipped += len(new) - len(readable)
    if not parts:
        raise NoReadableImages(f"dataset {source.name!r}: not one drawn image could be read")
    return DrawnFeatures({layer: RowLookup(p) for layer, p in parts.items()}, labels, int(read.sum()), skipped)
