"""places205: the Places205 split lists (``relative/path.jpg label_index`` lines) over its images256 folder.

Default layout under ``root`` (the official archives unpacked side by side)::

    root/trainvalsplit_places205/{train,val}_places205.csv   (or root/{split}_places205.csv)
    root/trainvalsplit_places205/categoryIndex_places205.csv (optional: class names)
    root/images256/a/abbey/....jpg  (or root/data/vision/torralba/deeplearning/images256/, or root/ itself)
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import ClassVar, Literal, NamedTuple, NoReturn

from pydantic import Field

from sslreg import UserError
from sslreg_datasets.base import FileSource, SourceConfig, list_lines
from sslreg_datasets.checks import file_problem, first_line, folder_problem

SPLIT_FOLDER = "trainvalsplit_places205"
IMAGE_FOLDERS = ("images256", "data/vision/torralba/deeplearning/images256", ".")
CATEGORIES = "categoryIndex_places205.csv"


class Places205Config(SourceConfig):
    """Options of places205."""

    name: str = "places205"
    root: str = Field(description="The Places205 folder (split lists and images256/ inside, see the module doc).")
    split: Literal["train", "val"] = Field("train", description="Official split: train (2.45M) or val (20.5k).")
    list: str | None = Field(None, description="Split file to read instead of the split's default csv.")
    images: str | None = Field(None, description="Folder the list's paths are relative to (default: found under root).")
    categories: str | None = Field(
        None,
        description="categoryIndex_places205.csv ('/a/abbey 0' lines) for class names (default: found under root).",
    )
    num_classes: int = Field(205, ge=1, description="Number of scene classes; labels must be below it.")


class Layout(NamedTuple):
    """Where a config's split list, images and class names are (list None: no default list was found)."""

    list: Path | None
    images: Path
    categories: Path | None


def _first(root: Path, candidates: builtins.list[str]) -> Path | None:
    return next((root / c for c in candidates if (root / c).exists()), None)


def layout(config: Places205Config) -> Layout:
    """The files ``config`` names, with the defaults looked up under its root."""
    root = Path(config.root).expanduser()
    csv = f"{config.split}_places205.csv"
    listing = Path(config.list).expanduser() if config.list else _first(root, [f"{SPLIT_FOLDER}/{csv}", csv])
    images = config.images or _first(root, [f for f in IMAGE_FOLDERS if (root / f).is_dir()]) or root
    categories = config.categories or _first(root, [f"{SPLIT_FOLDER}/{CATEGORIES}", CATEGORIES])
    return Layout(listing, Path(images).expanduser(), Path(categories).expanduser() if categories else None)


class Places205(FileSource):
    """Places205 scene classification from its official split lists; target = class index (0..204)."""

    name: ClassVar[str] = "places205"
    Config: ClassVar[type[SourceConfig]] = Places205Config
    config: Places205Config
    consumes: ClassVar[str] = "Places205 split lists and images"
    produces: ClassVar[str] = "Sample(image RGB uint8, class index, key)"
    target_kind: ClassVar[str] = "class"

    @classmethod
    def check(cls, config: Places205Config) -> builtins.list[str]:  # type: ignore[override]
        """Root, split list, images folder and categories exist; the list's first image is there (one stat)."""
        problem = folder_problem("root", config.root)
        if problem:
            return [problem]
        found = layout(config)
        problems = [
            p
            for p in (
                config.list and file_problem("list", config.list),
                config.images and folder_problem("images", config.images),
                config.categories and file_problem("categories", config.categories),
            )
            if p
        ]
        if found.list is None:
            csv = f"{config.split}_places205.csv"
            problems.append(f"root {config.root!r}: no split list {SPLIT_FOLDER}/{csv} or {csv} (set list)")
        if problems:
            return problems
        assert found.list is not None
        line = first_line(found.list)
        if line is None:
            return [f"list {str(found.list)!r} names no images"]
        path = line[1].split()[0].lstrip("/")
        if not (found.images / path).is_file():
            return [
                f"list {str(found.list)!r} line {line[0]}: image {path!r} does not exist"
                f" under images {str(found.images)!r}"
            ]
        return []

    def __init__(self, config: Places205Config) -> None:
        super().__init__(config)  # runs check(): the files are there
        found = layout(config)
        assert found.list is not None
        self._root = found.images
        files, targets = [], []
        for number, text in list_lines(found.list, self.name):
            parts = text.split()
            if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) >= config.num_classes:
                self._fail(
                    f"list {found.list.name}:{number}: expected 'path label' with label below {config.num_classes},"
                    f" got {text!r}"
                )
            files.append(parts[0].lstrip("/"))
            targets.append(int(parts[1]))
        self._files, self._targets = files, targets
        self._classes = [str(index) for index in range(config.num_classes)]
        if found.categories:
            self._read_categories(found.categories)

    def _fail(self, problem: str) -> NoReturn:
        raise UserError(f"dataset {self.name!r}: {problem}")

    def _read_categories(self, file: Path) -> None:
        for number, text in list_lines(file, self.name):
            parts = text.split()
            if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) >= len(self._classes):
                self._fail(f"categories {file.name}:{number}: expected '/a/abbey 0', got {text!r}")
            self._classes[int(parts[1])] = parts[0].strip("/").split("/", 1)[-1]

    @property
    def class_names(self) -> builtins.list[str]:
        return list(self._classes)
