"""sslreg-datasets: dataset sources for sslreg (folders, file lists, VOC07, Places205, shards, embedded data).

Besides its sources it offers the building blocks other dataset plugins share (decoding with truncation and
pixel limits, bad-image counting, file sources, cheap checks, the embedded photos and shapes); import them from
``sslreg_datasets`` itself: the modules behind them are internal.
"""

from __future__ import annotations

from collections.abc import Callable

from sslreg import hookimpl
from sslreg_datasets.badimages import BadImageCounter, TooManyBadImages
from sslreg_datasets.base import IMAGE_EXTENSIONS, FileSource, IndexedSource, SourceConfig, list_lines
from sslreg_datasets.checks import extensions_text, file_problem, first_line, folder_problem, raise_problems
from sslreg_datasets.decode import MAX_PIXELS, decode, decode_image, image_size, read, read_image, truncation
from sslreg_datasets.embedded_photos import GRAYSCALE, PHOTOS, EmbeddedPhotos, photo
from sslreg_datasets.embedded_shapes import EmbeddedShapes, ShapeObject, shape_mask
from sslreg_datasets.file_list import FileList
from sslreg_datasets.image_folder import ImageFolder
from sslreg_datasets.labeled_folder import LabeledFolder
from sslreg_datasets.places205 import Places205
from sslreg_datasets.shards import Shards
from sslreg_datasets.voc07 import VOC_CLASSES, Voc07
from sslreg_datasets.walk import first, scan

SSLREG_API_VERSION = 1

SOURCES: list[type] = [
    EmbeddedPhotos, EmbeddedShapes, FileList, ImageFolder, LabeledFolder, Places205, Shards, Voc07,
]  # fmt: skip


@hookimpl
def sslreg_register(register: Callable[[type], None]) -> None:
    """Register every dataset source of this plugin."""
    for source in SOURCES:
        register(source)


# The building blocks other dataset plugins import from here, then this plugin's sources.
__all__ = [
    "BadImageCounter",
    "EmbeddedPhotos",
    "EmbeddedShapes",
    "FileList",
    "FileSource",
    "GRAYSCALE",
    "IMAGE_EXTENSIONS",
    "ImageFolder",
    "IndexedSource",
    "LabeledFolder",
    "MAX_PIXELS",
    "PHOTOS",
    "Places205",
    "ShapeObject",
    "Shards",
    "SourceConfig",
    "TooManyBadImages",
    "VOC_CLASSES",
    "Voc07",
    "decode",
    "decode_image",
    "extensions_text",
    "file_problem",
    "first",
    "first_line",
    "folder_problem",
    "image_size",
    "list_lines",
    "photo",
    "raise_problems",
    "read",
    "read_image",
    "scan",
    "shape_mask",
    "truncation",
]
