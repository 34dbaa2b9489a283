"""places205: the Places205 split lists (``relative/path.jpg label_index`` lines) over its images256 folder.

Default layout under ``root`` (the official archives unpacked side by side)::

    root/trainvalsplit_places205/{train,val}_places205.csv   (or root/{split}_places205.csv)
    root/trainvalsplit_places205/categoryIndex_places205.csv (optional: class names)
    root/images256/a/abbey/....jpg  (or root/data/vision/torralba/deeplearning/images256/, or root/ itself)
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from sslreg_datasets.base import FileSource, SourceConfig, existing_dir, existing_file, list_lines

SPLIT_FOLDER = "trainvalsplit_places205"
IMAGE_FOLDERS = ("images256", "data/vision/torralba/deeplearning/images256", ".")


class Places205Config(SourceConfig):
    """Options of places205."""

    name: str = "places205"
    root: str | None = Field(
        None, description="Required. The Places205 folder (split lists and images256/ inside, see the module doc)."
    )
    split: Literal["train", "val"] = Field("train", description="Official split: train (2.45M) or val (20.5k).")
    list: str | None = Field(None, description="Split file to read instead of the split's default csv.")
    images: str | None = Field(None, description="Folder the list's paths are relative to (default: found under root).")
    categories: str | None = Field(
        None,
        description="categoryIndex_places205.csv ('/a/abbey 0' lines) for class names (default: found under root).",
    )
    num_classes: int = Field(205, ge=1, description="Number of scene classes; labels must be below it.")


def _first(root: Path, candidates: builtins.list[str]) -> Path | None:
    return next((root / c for c in candidates if (root / c).exists()), None)


class Places205(FileSource):
    """Places205 scene classification from its official split lists; target = class index (0..204)."""

    name: ClassVar[str] = "places205"
    Config: ClassVar[type[SourceConfig]] = Places205Config
    config: Places205Config
    consumes: ClassVar[str] = "Places205 split lists and images"
    produces: ClassVar[str] = "Sample(image RGB uint8, class index, key)"
    target_kind: ClassVar[str] = "class"

    def __init__(self, config: Places205Config) -> None:
        super().__init__(config)
        root = existing_dir(config.root, self.name)
        csv = f"{config.split}_places205.csv"
        default_list = _first(root, [f"{SPLIT_FOLDER}/{csv}", csv]) or root / SPLIT_FOLDER / csv
        listing = existing_file(config.list or default_list, self.name, "list")
        images = config.images or _first(root, [f for f in IMAGE_FOLDERS if (root / f).is_dir()]) or root
        self._root = existing_dir(images, self.name, "images")
        files, targets = [], []
        for number, text in list_lines(listing):
            parts = text.split()
            if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) >= config.num_classes:
                raise ValueError(
                    f"dataset {self.name!r}: {listing}:{number}: expected 'path label' with label below"
                    f" {config.num_classes}, got {text!r}"
                )
            files.append(parts[0].lstrip("/"))
            targets.append(int(parts[1]))
        if not files:
            raise ValueError(f"dataset {self.name!r}: list {str(listing)!r} names no images")
        self._files, self._targets = files, targets
        self._classes = [str(index) for index in range(config.num_classes)]
        names = "categoryIndex_places205.csv"
        categories = config.categories or _first(root, [f"{SPLIT_FOLDER}/{names}", names])
        if categories:
            self._read_categories(existing_file(categories, self.name, "categories"))

    def _read_categories(self, file: Path) -> None:
        for number, text in list_lines(file):
            parts = text.split()
            if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) >= len(self._classes):
                raise ValueError(f"dataset {self.name!r}: {file}:{number}: expected '/a/abbey 0', got {text!r}")
            self._classes[int(parts[1])] = parts[0].strip("/").split("/", 1)[-1]

    @property
    def class_names(self) -> builtins.list[str]:
        return list(self._classes)
