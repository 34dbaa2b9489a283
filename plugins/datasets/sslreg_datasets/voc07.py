"""voc07: the PASCAL VOC devkit layout, image-level multi-labels over the 20 classes.

Reads root/ImageSets/Main/<class>_<split>.txt (lines ``<id> <1|-1|0>``) and root/JPEGImages/<id>.jpg.
Targets keep the devkit convention: 1 present, -1 absent, 0 difficult (only difficult instances).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from sslreg_datasets.base import FileSource, SourceConfig, existing_dir, existing_file, list_lines

#: The 20 VOC classes in the devkit's order.
VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip


class Voc07Config(SourceConfig):
    """Options of voc07."""

    name: str = "voc07"
    root: str | None = Field(
        None,
        description="Required. The VOC2007 folder (holding JPEGImages/ and ImageSets/Main/); VOCdevkit/ also works.",
    )
    split: Literal["trainval", "test", "train", "val"] = Field("trainval", description="Image set to read.")


class Voc07(FileSource):
    """PASCAL VOC 2007 classification: int8 label vector over the 20 classes (1 present, -1 absent, 0 difficult)."""

    name: ClassVar[str] = "voc07"
    Config: ClassVar[type[SourceConfig]] = Voc07Config
    config: Voc07Config
    consumes: ClassVar[str] = "a VOC devkit folder (JPEGImages, ImageSets/Main)"
    produces: ClassVar[str] = "Sample(image RGB uint8, int8 multi-label over 20 classes, key = image id)"
    target_kind: ClassVar[str] = "multilabel"

    def __init__(self, config: Voc07Config) -> None:
        super().__init__(config)
        root = existing_dir(config.root, self.name)
        if not (root / "ImageSets").is_dir() and (root / "VOC2007" / "ImageSets").is_dir():
            root = root / "VOC2007"
        main = existing_dir(root / "ImageSets" / "Main", self.name, "ImageSets/Main")
        ids: list[str] = []
        columns = []
        for cls in VOC_CLASSES:
            file = existing_file(main / f"{cls}_{config.split}.txt", self.name, f"class file for {cls!r}")
            rows = [self._row(file, number, text) for number, text in list_lines(file)]
            if not ids:
                ids = [image_id for image_id, _ in rows]
            elif [image_id for image_id, _ in rows] != ids:
                raise ValueError(
                    f"dataset {self.name!r}: {file} lists other images than {VOC_CLASSES[0]}_{config.split}.txt"
                )
            columns.append(np.array([label for _, label in rows], np.int8))
        if not ids:
            raise ValueError(f"dataset {self.name!r}: split {config.split!r} under {str(main)!r} names no images")
        self._root = root / "JPEGImages"
        self._files = [f"{image_id}.jpg" for image_id in ids]
        self._labels = np.stack(columns, 1)
        self._targets = list(self._labels)

    def _row(self, file: Path, number: int, text: str) -> tuple[str, int]:
        parts = text.split()
        if len(parts) != 2 or parts[1] not in ("1", "-1", "0"):
            raise ValueError(f"dataset {self.name!r}: {file}:{number}: expected '<id> <1|-1|0>', got {text!r}")
        return parts[0], int(parts[1])

    @property
    def labels(self) -> np.ndarray:
        """All targets of the (subset) source as an int8 (N, 20) array."""
        return self._labels[np.asarray(self.indices)]

    def _item_key(self, item: int) -> str:
        return self._files[item][: -len(".jpg")]

    @property
    def class_names(self) -> list[str]:
        return list(VOC_CLASSES)
