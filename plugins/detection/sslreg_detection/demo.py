"""embedded_detection: a small detection set with exact boxes, made from the photographs the wheels ship.

Shapes (circle, triangle, star, cross, ring; drawn by ``sslreg_datasets.embedded_shapes``) filled with a flat
colour or a texture cut from one photograph are pasted at random scales, angles and places over a crop of
another photograph (``sslreg_datasets.embedded_photos``). Boxes are the exact extent of each object's visible
pixels; an object with less than ``min_visible`` of itself visible or a visible box smaller than ``min_box``
pixels is *difficult*, one reaching past the image border is *truncated*. The set is written once as a VOC devkit
folder (JPEGImages, Annotations, ImageSets/Main/{trainval,train,val,test}.txt) and read back by the
``voc_detection`` reader, so demo and real data go through the same code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import ClassVar, Literal

import cv2
import numpy as np
from pydantic import Field, model_validator
from sslreg_datasets import GRAYSCALE, PHOTOS, ShapeObject, SourceConfig, photo, shape_mask

from sslreg import UserError, cache_dir
from sslreg_detection.annotations import annotation_xml, object_xml
from sslreg_detection.voc_detection import VocDetection, VocDetectionConfig

DEMO_CLASSES: tuple[str, ...] = ("circle", "triangle", "star", "cross", "ring")
#: Photographs used as backgrounds and textures (the colour ones).
COLOUR_PHOTOS = tuple(name for name in PHOTOS if name not in GRAYSCALE)
#: Bump when the drawing changes, so that caches written by an older version are not reused.
FORMAT_VERSION = 1


class EmbeddedDetectionConfig(VocDetectionConfig):
    """Options of embedded_detection (the generated set's size and look; split and subset as any VOC source)."""

    name: str = "embedded_detection"
    root: str | None = Field(  # type: ignore[assignment]
        None,
        description="Folder to write the devkit to (None: the sslreg cache, one folder per set of options);"
        " an existing complete folder is reused.",
    )
    split: Literal["trainval", "train", "val", "test"] = Field("trainval", description="Image set to read.")
    classes: list[str] = Field(
        default_factory=lambda: list(DEMO_CLASSES), description="Fixed: the demo's classes, in label order."
    )
    num_trainval: int = Field(200, ge=2, le=100_000, description="Images in trainval (train + val).")
    num_test: int = Field(100, ge=1, le=100_000, description="Images in test.")
    size: int = Field(128, ge=48, le=1024, description="Shorter image side in pixels (the longer is 1-1.5x).")
    max_objects: int = Field(4, ge=1, le=12, description="Most objects per image (at least one).")
    min_scale: float = Field(0.12, gt=0.0, le=1.0, description="Smallest object radius over the shorter side.")
    max_scale: float = Field(0.3, gt=0.0, le=1.0, description="Largest object radius over the shorter side.")
    min_visible: float = Field(0.5, ge=0.0, le=1.0, description="Below this visible fraction an object is difficult.")
    min_box: int = Field(10, ge=1, le=1024, description="A visible box narrower or lower than this is difficult.")
    seed: int = Field(0, description="Seed of the whole set; image i depends only on (seed, i).")

    @model_validator(mode="after")
    def _check(self) -> EmbeddedDetectionConfig:
        if self.min_scale > self.max_scale:
            raise ValueError(f"min_scale={self.min_scale} is larger than max_scale={self.max_scale}")
        if list(self.classes) != list(DEMO_CLASSES):
            raise ValueError(f"classes are fixed for the demo set: {list(DEMO_CLASSES)}")
        return self


#: The options that decide the generated files (the folder name is a hash of them).
GENERATION_OPTIONS = (
    "num_trainval", "num_test", "size", "max_objects", "min_scale", "max_scale", "min_visible", "min_box", "seed",
)  # fmt: skip


def _crop(image: np.ndarray, width: int, height: int, rng: np.random.Generator, scale: float) -> np.ndarray:
    """A random crop of ``image`` with the aspect of width x height covering ``scale`` of it, resized to it."""
    ih, iw = image.shape[:2]
    fit = min(iw / width, ih / height)
    cw, ch = max(2, int(width * fit * scale)), max(2, int(height * fit * scale))
    top, left = int(rng.integers(0, ih - ch + 1)), int(rng.integers(0, iw - cw + 1))
    return cv2.resize(image[top : top + ch, left : left + cw], (width, height), interpolation=cv2.INTER_AREA)


def draw_image(config: EmbeddedDetectionConfig, index: int) -> tuple[np.ndarray, list[tuple[str, tuple, bool, bool]]]:
    """Image ``index`` (RGB uint8) and its objects as (class, inclusive 1-based box, difficult, truncated)."""
    rng = np.random.default_rng([config.seed, FORMAT_VERSION, index])
    short = config.size
    long = int(round(short * rng.uniform(1.0, 1.5)))
    width, height = (long, short) if rng.random() < 0.75 else (short, long)
    background = photo(COLOUR_PHOTOS[int(rng.integers(len(COLOUR_PHOTOS)))])
    canvas = _crop(background, width, height, rng, rng.uniform(0.3, 1.0)).astype(np.float32)
    pad = int(np.ceil(config.max_scale * short)) + 2  # shapes are drawn on a padded square, then cut out
    side = max(width, height) + 2 * pad
    shapes, masks, areas = [], [], []
    for _ in range(int(rng.integers(1, config.max_objects + 1))):
        cls = DEMO_CLASSES[int(rng.integers(len(DEMO_CLASSES)))]
        radius = rng.uniform(config.min_scale, config.max_scale) * short
        cx, cy = rng.uniform(0.25 * radius, width - 0.25 * radius), rng.uniform(0.25 * radius, height - 0.25 * radius)
        angle = float(rng.uniform(0, 2 * np.pi))
        whole = shape_mask(ShapeObject(cls, float(cx) + pad, float(cy) + pad, float(radius), angle, (0, 0, 0)), side)
        mask = whole[pad : pad + height, pad : pad + width]
        if rng.random() < 0.5:
            fill = np.broadcast_to(rng.uniform(0, 255, 3).astype(np.float32), (height, width, 3))
        else:
            texture = photo(COLOUR_PHOTOS[int(rng.integers(len(COLOUR_PHOTOS)))])
            fill = _crop(texture, width, height, rng, rng.uniform(0.1, 0.4)).astype(np.float32)
        canvas = canvas * (1 - mask[..., None]) + fill * mask[..., None]
        shapes.append(cls)
        masks.append(mask)
        areas.append((float(whole.sum()), float(mask.sum())))
    objects = []
    for number, (cls, mask, (whole_area, inside_area)) in enumerate(zip(shapes, masks, areas)):
        visible = mask.copy()
        for later in masks[number + 1 :]:
            visible *= 1 - later
        rows, cols = np.nonzero(visible > 0.5)
        if len(rows) < 4:
            continue  # hidden or outside: not annotated
        box = (int(cols.min()) + 1, int(rows.min()) + 1, int(cols.max()) + 1, int(rows.max()) + 1)
        small = min(box[2] - box[0], box[3] - box[1]) + 1 < config.min_box
        difficult = small or float(visible.sum()) < config.min_visible * whole_area
        truncated = inside_area < whole_area - 0.5  # some of it lies outside the image
        objects.append((cls, box, bool(difficult), bool(truncated)))
    image = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    return image, objects


def write_devkit(config: EmbeddedDetectionConfig, root: Path) -> Path:
    """Write the demo set as a VOC devkit folder at ``root`` (atomically: built aside, then moved into place)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
            (scratch / folder).mkdir(parents=True)
        total = config.num_trainval + config.num_test
        ids = [f"{index:06d}" for index in range(total)]
        for index, image_id in enumerate(ids):
            image, objects = draw_image(config, index)
            height, width = image.shape[:2]
            ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
            if not ok:
                raise OSError(f"cannot encode demo image {image_id}")
            (scratch / "JPEGImages" / f"{image_id}.jpg").write_bytes(encoded.tobytes())
            xml = annotation_xml(
                "embedded_detection", f"{image_id}.jpg", width, height, [object_xml(*o) for o in objects]
            )
            (scratch / "Annotations" / f"{image_id}.xml").write_text(xml, encoding="utf-8")
        trainval = ids[: config.num_trainval]
        splits = {
            "trainval": trainval,
            "train": trainval[0::2],
            "val": trainval[1::2],
            "test": ids[config.num_trainval :],
        }
        for split, members in splits.items():
            (scratch / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in members))
        (scratch / "options.json").write_text(json.dumps(generation_options(config), indent=1) + "\n")
        try:
            os.replace(scratch, root)
        except OSError:
            if not (root / "options.json").is_file():  # not a concurrent writer that finished first
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return root


def generation_options(config: EmbeddedDetectionConfig) -> dict[str, object]:
    """The options that decide the files, with the format version."""
    return {"format": FORMAT_VERSION, **{option: getattr(config, option) for option in GENERATION_OPTIONS}}


def demo_root(config: EmbeddedDetectionConfig) -> Path:
    """Where the set of ``config`` lives: its ``root``, else a cache folder named by a hash of its options."""
    if config.root is not None:
        return Path(config.root).expanduser()
    digest = hashlib.sha256(json.dumps(generation_options(config), sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir("embedded_detection") / f"demo-{digest}"


class EmbeddedDetection(VocDetection):
    """Procedural detection demo (5 shape classes on real photographs, exact boxes), written as a VOC devkit."""

    name: ClassVar[str] = "embedded_detection"
    Config: ClassVar[type[SourceConfig]] = EmbeddedDetectionConfig
    config: EmbeddedDetectionConfig
    consumes: ClassVar[str] = "photographs bundled in the scikit-image and scikit-learn wheels"

    @classmethod
    def check(cls, config: EmbeddedDetectionConfig) -> list[str]:  # type: ignore[override]
        """Nothing to check: the set is generated when missing."""
        return []

    def __init__(self, config: EmbeddedDetectionConfig) -> None:
        root = demo_root(config)
        if not (root / "options.json").is_file():
            if root.exists() and (not root.is_dir() or any(root.iterdir())):
                raise UserError(f"dataset 'embedded_detection': root '{root}' exists and is not a demo set")
            write_devkit(config, root)
        elif json.loads((root / "options.json").read_text()) != generation_options(config):
            raise UserError(
                f"dataset 'embedded_detection': root '{root}' holds a demo set made with other options"
                " (give another root)"
            )
        self._devkit = root
        super().__init__(config)

    def devkit_roots(self) -> list[Path]:
        return [self._devkit]
