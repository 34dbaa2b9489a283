"""labeled_folder: the ImageFolder layout, root/<class>/**/<image>, target = class index."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from sslreg_datasets.base import IMAGE_EXTENSIONS, FileSource, SourceConfig
from sslreg_datasets.checks import extensions_text, folder_problem
from sslreg_datasets.walk import first, scan


class LabeledFolderConfig(SourceConfig):
    """Options of labeled_folder."""

    name: str = "labeled_folder"
    root: str = Field(description="Folder with one sub-folder per class (the sub-folder name is the class).")
    extensions: list[str] = Field(
        list(IMAGE_EXTENSIONS), min_length=1, description="File extensions to pick up, case-insensitive."
    )
    classes: list[str] | None = Field(
        None, description="Class sub-folders to use, in target order (default: all sub-folders, sorted)."
    )


def class_folders(root: Path) -> list[str]:
    """Sorted names of the visible sub-folders of ``root`` (hidden ones, starting with '.', are left out)."""
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


class LabeledFolder(FileSource):
    """Labelled images in the ImageFolder layout (class = sub-folder name); target = index into class_names."""

    name: ClassVar[str] = "labeled_folder"
    Config: ClassVar[type[SourceConfig]] = LabeledFolderConfig
    config: LabeledFolderConfig
    consumes: ClassVar[str] = "root/<class>/<image> folders"
    produces: ClassVar[str] = "Sample(image RGB uint8, class index, key)"
    target_kind: ClassVar[str] = "class"

    @classmethod
    def check(cls, config: LabeledFolderConfig) -> list[str]:  # type: ignore[override]
        """The root exists, has the class folders asked for, and some class folder holds an image."""
        problem = folder_problem("root", config.root)
        if problem:
            return [problem]
        root = Path(config.root).expanduser()
        found = class_folders(root)
        if not found:
            return [f"root {config.root!r} has no class sub-folders (expected root/<class>/<image>)"]
        missing = [c for c in config.classes or [] if c not in found]
        if missing:
            return [f"classes: no folder {', '.join(map(repr, missing))} under root {config.root!r}"]
        if all(first(root / cls_, config.extensions) is None for cls_ in config.classes or found):
            return [
                f"root {config.root!r} holds no images with extensions {extensions_text(config.extensions)}"
                " in its class folders"
            ]
        return []

    def __init__(self, config: LabeledFolderConfig) -> None:
        super().__init__(config)  # runs check(): root, class folders and at least one image are there
        self._root = Path(config.root).expanduser()
        self._classes: list[str] = list(config.classes or class_folders(self._root))
        files, targets = [], []
        for index, cls in enumerate(self._classes):
            names = scan(self._root / cls, config.extensions)
            files += [f"{cls}/{name}" for name in names]
            targets += [index] * len(names)
        self._files, self._targets = files, targets

    @property
    def class_names(self) -> list[str]:
        return list(self._classes)
