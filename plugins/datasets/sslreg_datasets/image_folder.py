"""image_folder: every image under a folder (recursive), unlabeled, in sorted path order."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from sslreg_datasets.base import IMAGE_EXTENSIONS, FileSource, SourceConfig
from sslreg_datasets.checks import extensions_text, folder_problem
from sslreg_datasets.walk import first, scan


class ImageFolderConfig(SourceConfig):
    """Options of image_folder."""

    name: str = "image_folder"
    root: str = Field(
        description="Folder scanned recursively for images (linked folders are followed, each folder once)."
    )
    extensions: list[str] = Field(
        list(IMAGE_EXTENSIONS), min_length=1, description="File extensions to pick up, case-insensitive."
    )


class ImageFolder(FileSource):
    """Unlabeled images from a folder tree, sorted by relative path; the key is that path."""

    name: ClassVar[str] = "image_folder"
    Config: ClassVar[type[SourceConfig]] = ImageFolderConfig
    config: ImageFolderConfig
    consumes: ClassVar[str] = "a folder of image files (any depth)"

    @classmethod
    def check(cls, config: ImageFolderConfig) -> list[str]:  # type: ignore[override]
        """The root exists and holds at least one image (the scan stops at the first)."""
        problem = folder_problem("root", config.root)
        if problem:
            return [problem]
        if first(Path(config.root).expanduser(), config.extensions) is None:
            return [f"root {config.root!r} holds no images with extensions {extensions_text(config.extensions)}"]
        return []

    def __init__(self, config: ImageFolderConfig) -> None:
        super().__init__(config)  # runs check(): the root exists and holds an image
        self._root = Path(config.root).expanduser()
        self._files = scan(self._root, config.extensions)
