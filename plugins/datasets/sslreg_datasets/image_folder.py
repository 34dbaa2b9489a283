"""image_folder: every image under a folder (recursive), unlabeled, in sorted path order."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from sslreg_datasets.base import IMAGE_EXTENSIONS, FileSource, SourceConfig, existing_dir, scan_images


class ImageFolderConfig(SourceConfig):
    """Options of image_folder."""

    name: str = "image_folder"
    root: str | None = Field(
        None, description="Required. Folder scanned recursively for images (symlinked folders are followed)."
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

    def __init__(self, config: ImageFolderConfig) -> None:
        super().__init__(config)
        self._root = existing_dir(config.root, self.name)
        self._files = scan_images(self._root, config.extensions)
        if not self._files:
            raise FileNotFoundError(
                f"dataset {self.name!r}: no {', '.join(config.extensions)} files under {str(self._root)!r}"
            )
