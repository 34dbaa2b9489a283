"""sslreg-datasets: dataset sources for sslreg (folders, file lists, VOC07, Places205, shards, embedded data)."""

from __future__ import annotations

from collections.abc import Callable

from sslreg import hookimpl
from sslreg_datasets.badimages import BadImageCounter, TooManyBadImages
from sslreg_datasets.decode import decode_image, read_image
from sslreg_datasets.embedded_photos import EmbeddedPhotos
from sslreg_datasets.embedded_shapes import EmbeddedShapes
from sslreg_datasets.file_list import FileList
from sslreg_datasets.image_folder import ImageFolder
from sslreg_datasets.labeled_folder import LabeledFolder
from sslreg_datasets.places205 import Places205
from sslreg_datasets.shards import Shards
from sslreg_datasets.voc07 import Voc07

SSLREG_API_VERSION = 1

SOURCES: list[type] = [
    EmbeddedPhotos, EmbeddedShapes, FileList, ImageFolder, LabeledFolder, Places205, Shards, Voc07,
]  # fmt: skip


@hookimpl
def sslreg_register(register: Callable[[type], None]) -> None:
    """Register every dataset source of this plugin."""
    for source in SOURCES:
        register(source)


__all__ = ["BadImageCounter", "TooManyBadImages", "decode_image", "read_image", *[s.__name__ for s in SOURCES]]
