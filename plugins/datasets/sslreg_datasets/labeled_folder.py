"""labeled_folder: the ImageFolder layout, root/<class>/**/<image>, target = class index."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from sslreg_datasets.base import IMAGE_EXTENSIONS, FileSource, SourceConfig, existing_dir, scan_images


class LabeledFolderConfig(SourceConfig):
    """Options of labeled_folder."""

    name: str = "labeled_folder"
    root: str | None = Field(
        None, description="Required. Folder with one sub-folder per class (the sub-folder name is the class)."
    )
    extensions: list[str] = Field(
        list(IMAGE_EXTENSIONS), min_length=1, description="File extensions to pick up, case-insensitive."
    )
    classes: list[str] | None = Field(
        None, description="Class sub-folders to use, in target order (default: all sub-folders, sorted)."
    )


class LabeledFolder(FileSource):
    """Labelled images in the ImageFolder layout (class = sub-folder name); target = index into class_names."""

    name: ClassVar[str] = "labeled_folder"
    Config: ClassVar[type[SourceConfig]] = LabeledFolderConfig
    config: LabeledFolderConfig
    consumes: ClassVar[str] = "root/<class>/<image> folders"
    produces: ClassVar[str] = "Sample(image RGB uint8, class index, key)"
    target_kind: ClassVar[str] = "class"

    def __init__(self, config: LabeledFolderConfig) -> None:
        super().__init__(config)
        self._root = existing_dir(config.root, self.name)
        found = sorted(p.name for p in self._root.iterdir() if p.is_dir() and not p.name.startswith("."))
        missing = [c for c in config.classes or [] if c not in found]
        if missing:
            raise FileNotFoundError(f"dataset {self.name!r}: no class folder {missing} under {str(self._root)!r}")
        self._classes: list[str] = list(config.classes or found)
        if not self._classes:
            raise FileNotFoundError(f"dataset {self.name!r}: no class sub-folders under {str(self._root)!r}")
        files, targets = [], []
        for index, cls in enumerate(self._classes):
            names = scan_images(self._root / cls, config.extensions)
            files += [f"{cls}/{name}" for name in names]
            targets += [index] * len(names)
        if not files:
            raise FileNotFoundError(f"dataset {self.name!r}: no images in the class folders of {str(self._root)!r}")
        self._files, self._targets = files, targets

    @property
    def class_names(self) -> list[str]:
        return list(self._classes)
