"""embedded_photos: the default unlabeled data, crops cut on the fly from photographs shipped inside installed wheels.

The photographs are files of scikit-image (``skimage/data``) and scikit-learn (``sklearn/datasets/images``) that
their wheels carry: nothing is downloaded, and neither package is imported (only located). Crop ``i`` is a pure
function of (seed, i), so no crop is stored.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
from pydantic import Field, model_validator

from sslreg import Sample, UserError
from sslreg_datasets.base import IndexedSource, SourceConfig
from sslreg_datasets.decode import read

#: name -> (package, file inside it). Only files the wheels ship are listed (checked with scikit-image 0.26).
PHOTOS: dict[str, tuple[str, str]] = {
    "astronaut": ("skimage", "data/astronaut.png"),
    "chelsea": ("skimage", "data/chelsea.png"),
    "coffee": ("skimage", "data/coffee.png"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "hubble_deep_field": ("skimage", "data/hubble_deep_field.jpg"),
    "retina": ("skimage", "data/retina.jpg"),
    "motorcycle_left": ("skimage", "data/motorcycle_left.png"),
    "motorcycle_right": ("skimage", "data/motorcycle_right.png"),
    "brick": ("skimage", "data/brick.png"),
    "grass": ("skimage", "data/grass.png"),
    "gravel": ("skimage", "data/gravel.png"),
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
}
#: The pip distribution of each package the photographs come from.
PACKAGES = {"skimage": "scikit-image", "sklearn": "scikit-learn"}
#: The photographs that are greyscale textures (left out with ``include_grayscale: false``).
GRAYSCALE = ("brick", "grass", "gravel")


def photo_path(name: str) -> Path:
    """Where the installed wheel keeps photo ``name``, found without importing the package (sklearn imports slowly)."""
    package, file = PHOTOS[name]
    spec = importlib.util.find_spec(package)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / file).is_file():
            return Path(folder) / file
    raise UserError(
        f"dataset 'embedded_photos': photo {name!r} ({package}/{file}) is not installed;"
        f" pip install {PACKAGES[package]}"
    )


@cache
def photo(name: str) -> np.ndarray:
    """The decoded RGB photograph ``name`` (cached per process, read-only)."""
    image = read(photo_path(name)).image
    if image is None:
        raise UserError(f"dataset 'embedded_photos': photo {name!r} ({photo_path(name)}) cannot be decoded")
    image.setflags(write=False)
    return image


class EmbeddedPhotosConfig(SourceConfig):
    """Options of embedded_photos."""

    name: str = "embedded_photos"
    num_crops: int = Field(2000, ge=1, le=10_000_000, description="How many crops the source holds (before subset).")
    crop_size: int = Field(96, ge=8, le=1024, description="Side in pixels of every (square) crop.")
    min_scale: float = Field(
        0.15, gt=0.0, le=1.0, description="Smallest crop side as a fraction of the photo's shorter side."
    )
    max_scale: float = Field(
        0.7, gt=0.0, le=1.0, description="Largest crop side as a fraction of the photo's shorter side."
    )
    flips: bool = Field(True, description="Mirror half of the crops left-right (decided per crop, deterministic).")
    photos: list[str] | None = Field(
        None, description=f"Photos to cut from (default: all). Known: {', '.join(PHOTOS)}."
    )
    include_grayscale: bool = Field(
        True, description=f"Use the greyscale texture photos ({', '.join(GRAYSCALE)}) when photos is not given."
    )
    seed: int = Field(0, description="Seed of the crop geometry; crop i depends only on (seed, i).")

    @model_validator(mode="after")
    def _check(self) -> EmbeddedPhotosConfig:
        if self.min_scale > self.max_scale:
            raise ValueError(f"min_scale={self.min_scale} is larger than max_scale={self.max_scale}")
        unknown = [name for name in self.photos or [] if name not in PHOTOS]
        if unknown:
            raise ValueError(f"unknown photos {unknown}; known: {', '.join(PHOTOS)}")
        if self.photos is not None and not self.photos:
            raise ValueError("photos is empty; leave it out to use all photos")
        return self


class EmbeddedPhotos(IndexedSource):
    """Unlabeled crops of 13 real photographs shipped inside the scikit-image and scikit-learn wheels (no download).

    Crop ``i`` uses photo ``i mod P`` (so photos are used evenly), a random square of a random scale at a
    random place, resized to ``crop_size`` with area interpolation, mirrored when the per-crop coin says so.
    """

    name: ClassVar[str] = "embedded_photos"
    Config: ClassVar[type[SourceConfig]] = EmbeddedPhotosConfig
    config: EmbeddedPhotosConfig
    consumes: ClassVar[str] = "photographs bundled in the scikit-image and scikit-learn wheels"

    def __init__(self, config: EmbeddedPhotosConfig) -> None:
        super().__init__(config)
        chosen = config.photos or [n for n in PHOTOS if config.include_grayscale or n not in GRAYSCALE]
        self.photos: list[str] = list(chosen)

    def _count(self) -> int:
        return self.config.num_crops

    def _item_key(self, item: int) -> str:
        return f"{self.photos[item % len(self.photos)]}/{item}"

    def crop_box(self, item: int) -> tuple[str, int, int, int, bool]:
        """(photo, top, left, side, flip) of crop ``item``: a pure function of (seed, item)."""
        cfg = self.config
        name = self.photos[item % len(self.photos)]
        height, width = photo(name).shape[:2]
        rng = np.random.default_rng([cfg.seed, item])
        scale = np.exp(rng.uniform(np.log(cfg.min_scale), np.log(cfg.max_scale)))
        side = int(np.clip(round(scale * min(height, width)), 8, min(height, width)))
        top = int(rng.integers(0, height - side + 1))
        left = int(rng.integers(0, width - side + 1))
        flip = bool(cfg.flips and rng.random() < 0.5)
        return name, top, left, side, flip

    def _read(self, item: int) -> Sample:
        name, top, left, side, flip = self.crop_box(item)
        size = self.config.crop_size
        patch = photo(name)[top : top + side, left : left + side]
        interpolation = cv2.INTER_AREA if side >= size else cv2.INTER_CUBIC
        crop = cv2.resize(patch, (size, size), interpolation=interpolation)
        if flip:
            crop = crop[:, ::-1]
        return Sample(np.ascontiguousarray(crop), None, self._item_key(item))
