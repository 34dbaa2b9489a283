"""places205: the Places205 file lists (``relative/path.jpg label_index`` lines) under an image root."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from sslreg_datasets.base import FileSource, SourceConfig, existing_dir, existing_file, list_lines


class Places205Config(SourceConfig):
    """Options of places205."""

    name: str = "places205"
    root: str = Field(..., description="Folder the image paths of the list are relative to (Places205's data/vision/torralba/deeplearning/images256).")
    list: str = Field(..., description="Split file, e.g. trainvalsplit_places205/train_places205.csv: 'path label' lines.")
    categories: str | None = Field(
        None, description="Optional categoryIndex_places205.csv ('/a/abbey 0' lines) for class names."
    )
    num_classes: int = Field(205, ge=1, description="Number of scene classes; labels must be below it.")


class Places205(FileSource):
    """Places205 scene classification from its official split lists; target = class index (0..204)."""

    name: ClassVar[str] = "places205"
    Config: ClassVar[type[SourceConfig]] = Places205Config
    consumes: ClassVar[str] = "Places205 split lists and images"
    produces: ClassVar[str] = "Sample(image RGB uint8, class index, key)"
    target_kind: ClassVar[str] = "class"

    def __init__(self, config: Places205Config) -> None:
        super().__init__(config)
        self._root = existing_dir(config.root, self.name)
        listing = existing_file(config.list, self.name, "list")
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
        if config.categories:
            self._read_categories(existing_file(config.categories, self.name, "categories"))

    def _read_categories(self, file: Path) -> None:
        for number, text in list_lines(file):
            parts = text.split()
            if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) >= len(self._classes):
                raise ValueError(f"dataset {self.name!r}: {file}:{number}: expected '/a/abbey 0', got {text!r}")
            self._classes[int(parts[1])] = parts[0].strip("/").split("/", 1)[-1]

    @property
    def class_names(self) -> list[str]:
        return list(self._classes)
