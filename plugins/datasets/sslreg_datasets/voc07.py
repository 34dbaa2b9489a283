"""voc07: the PASCAL VOC devkit layout, image-level multi-labels over the 20 classes.

Reads root/ImageSets/Main/<class>_<split>.txt (lines ``<id> <1|-1|0>``) and root/JPEGImages/<id>.jpg.
Targets keep the devkit convention: 1 present, -1 absent, 0 difficult (only difficult instances).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal, NoReturn

import numpy as np
from pydantic import Field

from sslreg import UserError
from sslreg_datasets.base import FileSource, SourceConfig, list_lines
from sslreg_datasets.checks import first_line, folder_problem

#: The 20 VOC classes in the devkit's order.
VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip


class Voc07Config(SourceConfig):
    """Options of voc07."""

    name: str = "voc07"
    root: str = Field(
        description="The VOC2007 folder (holding JPEGImages/ and ImageSets/Main/); its VOCdevkit/ parent also works."
    )
    split: Literal["trainval", "test", "train", "val"] = Field("trainval", description="Image set to read.")


def voc_root(root: str) -> Path:
    """The VOC2007 folder: ``root`` itself, or ``root/VOC2007`` when ``root`` is the VOCdevkit folder."""
    path = Path(root).expanduser()
    if not (path / "ImageSets").is_dir() and (path / "VOC2007" / "ImageSets").is_dir():
        return path / "VOC2007"
    return path


class Voc07(FileSource):
    """PASCAL VOC 2007 classification: int8 label vector over the 20 classes (1 present, -1 absent, 0 difficult)."""

    name: ClassVar[str] = "voc07"
    Config: ClassVar[type[SourceConfig]] = Voc07Config
    config: Voc07Config
    consumes: ClassVar[str] = "a VOC devkit folder (JPEGImages, ImageSets/Main)"
    produces: ClassVar[str] = "Sample(image RGB uint8, int8 multi-label over 20 classes, key = image id)"
    target_kind: ClassVar[str] = "multilabel"

    @classmethod
    def check(cls, config: Voc07Config) -> list[str]:  # type: ignore[override]
        """The root, its 20 class files of the split, JPEGImages/ and the split's first image exist (no decoding)."""
        problem = folder_problem("root", config.root)
        if problem:
            return [problem]
        root, split = voc_root(config.root), config.split
        if not (root / "ImageSets" / "Main").is_dir():
            return [f"root {config.root!r}: no ImageSets/Main folder (is it the VOC2007 folder?)"]
        missing = [c for c in VOC_CLASSES if not (root / "ImageSets" / "Main" / f"{c}_{split}.txt").is_file()]
        if missing:
            more = f" (and {len(missing) - 1} more class files of split {split!r})" if len(missing) > 1 else ""
            return [f"root {config.root!r}: no ImageSets/Main/{missing[0]}_{split}.txt{more}"]
        line = first_line(root / "ImageSets" / "Main" / f"{VOC_CLASSES[0]}_{split}.txt")
        if line is None:
            return [f"root {config.root!r}: ImageSets/Main/{VOC_CLASSES[0]}_{split}.txt names no images"]
        if not (root / "JPEGImages").is_dir():
            return [f"root {config.root!r}: no JPEGImages folder"]
        image = f"JPEGImages/{line[1].split()[0]}.jpg"
        if not (root / image).is_file():
            return [f"root {config.root!r}: {image} (the first image of split {split!r}) does not exist"]
        return []

    def __init__(self, config: Voc07Config) -> None:
        super().__init__(config)  # runs check(): the layout is there
        root = voc_root(config.root)
        main = root / "ImageSets" / "Main"
        ids: list[str] = []
        columns = []
        for cls in VOC_CLASSES:
            file = main / f"{cls}_{config.split}.txt"
            rows = [self._row(file, number, text) for number, text in list_lines(file, self.name)]
            if not ids:
                ids = [image_id for image_id, _ in rows]
            elif [image_id for image_id, _ in rows] != ids:
                self._fail(f"ImageSets/Main/{file.name} lists other images than {VOC_CLASSES[0]}_{config.split}.txt")
            columns.append(np.array([label for _, label in rows], np.int8))
        self._root = root / "JPEGImages"
        self._files = [f"{image_id}.jpg" for image_id in ids]
        self._targets = list(np.stack(columns, 1))

    def _fail(self, problem: str) -> NoReturn:
        raise UserError(f"dataset {self.name!r}: root {self.config.root!r}: {problem}")

    def _row(self, file: Path, number: int, text: str) -> tuple[str, int]:
        parts = text.split()
        if len(parts) != 2 or parts[1] not in ("1", "-1", "0"):
            self._fail(f"ImageSets/Main/{file.name}:{number}: expected '<id> <1|-1|0>', got {text!r}")
        return parts[0], int(parts[1])

    def _item_key(self, item: int) -> str:
        return self._files[item][: -len(".jpg")]

    @property
    def class_names(self) -> list[str]:
        return list(VOC_CLASSES)
