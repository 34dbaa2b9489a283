"""embedded_shapes: a procedural multi-label image set with exact labels, the embedded benchmark data.

Each image holds 1-3 objects of distinct classes (shapes and textured patches) in random colours, sizes, angles
and places over a smooth random-colour background with noise and clutter lines. Labels follow the VOC devkit
convention: 1 present, -1 absent, 0 difficult (every instance of the class is tiny or mostly hidden).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import cv2
import numpy as np
from pydantic import Field, model_validator

from sslreg import Sample
from sslreg_datasets.base import IndexedSource, SourceConfig

CLASSES: tuple[str, ...] = (
    "circle", "square", "triangle", "hexagon", "star", "cross", "ring", "crescent", "stripes", "checker",
)  # fmt: skip
SPLITS = {"train": 0, "test": 1}


@dataclass(frozen=True)
class ShapeObject:
    """One drawn object: class name, centre and radius in pixels, angle in radians, RGB colours (0-255)."""

    cls: str
    cx: float
    cy: float
    radius: float
    angle: float
    color: tuple[float, float, float]
    color2: tuple[float, float, float] = (0.0, 0.0, 0.0)


def _polygon(obj: ShapeObject, corners: int, scale: float = 1.0, phase: float = 0.0) -> np.ndarray:
    angles = obj.angle + phase + 2 * np.pi * np.arange(corners) / corners
    points = np.stack([obj.cx + scale * obj.radius * np.cos(angles), obj.cy + scale * obj.radius * np.sin(angles)], 1)
    return points


SUPERSAMPLE = 4  # masks are drawn 4x larger and area-averaged: smooth edges, coverage true to the geometry
_SHIFT = 4  # sub-pixel vertex precision of OpenCV's drawing


def _to_fine(points: np.ndarray) -> np.ndarray:
    """Pixel coordinates (pixel i has its centre at i) to fixed-point coordinates on the supersampled grid."""
    return np.round((points * SUPERSAMPLE + (SUPERSAMPLE - 1) / 2) * (1 << _SHIFT)).astype(np.int32)


def _coverage(fine: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(fine, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _fill(size: int, *polygons: np.ndarray) -> np.ndarray:
    fine = np.zeros((size * SUPERSAMPLE, size * SUPERSAMPLE), np.uint8)
    cv2.fillPoly(fine, [_to_fine(p) for p in polygons], 255, cv2.LINE_8, _SHIFT)
    return _coverage(fine, size)


def _disc(size: int, cx: float, cy: float, radius: float) -> np.ndarray:
    fine = np.zeros((size * SUPERSAMPLE, size * SUPERSAMPLE), np.uint8)
    centre = _to_fine(np.array([cx, cy]))
    cv2.circle(fine, (int(centre[0]), int(centre[1])), int(round(radius * SUPERSAMPLE * (1 << _SHIFT))), 255, -1,
               cv2.LINE_8, _SHIFT)  # fmt: skip
    return _coverage(fine, size)


def shape_mask(obj: ShapeObject, size: int) -> np.ndarray:
    """Coverage in [0, 1] (size, size) of ``obj``'s outline (textured classes: a rotated square patch)."""
    r = obj.radius
    if obj.cls == "circle":
        return _disc(size, obj.cx, obj.cy, r)
    if obj.cls in ("square", "stripes", "checker"):
        return _fill(size, _polygon(obj, 4, phase=np.pi / 4))
    if obj.cls == "triangle":
        return _fill(size, _polygon(obj, 3))
    if obj.cls == "hexagon":
        return _fill(size, _polygon(obj, 6))
    if obj.cls == "star":
        outer, inner = _polygon(obj, 5), _polygon(obj, 5, scale=0.42, phase=np.pi / 5)
        return _fill(size, np.stack([outer, inner], 1).reshape(-1, 2))
    if obj.cls == "cross":
        c, s = np.cos(obj.angle), np.sin(obj.angle)
        bars = []
        for ux, uy in ((c, s), (-s, c)):
            vx, vy = -uy, ux
            half_w = 0.3 * r
            bars.append(np.array([[obj.cx + a * r * ux + b * half_w * vx, obj.cy + a * r * uy + b * half_w * vy]
                                  for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1))]))  # fmt: skip
        return np.maximum(_fill(size, bars[0]), _fill(size, bars[1]))
    if obj.cls == "ring":
        return np.clip(_disc(size, obj.cx, obj.cy, r) - _disc(size, obj.cx, obj.cy, 0.55 * r), 0, 1)
    if obj.cls == "crescent":
        dx, dy = 0.45 * r * np.cos(obj.angle), 0.45 * r * np.sin(obj.angle)
        return np.clip(_disc(size, obj.cx, obj.cy, r) - _disc(size, obj.cx + dx, obj.cy + dy, 0.85 * r), 0, 1)
    raise ValueError(f"unknown shape class {obj.cls!r}; known: {', '.join(CLASSES)}")


def paint(obj: ShapeObject, size: int) -> np.ndarray:
    """The object's RGB colour per pixel (textured classes alternate colour and colour2)."""
    flat = np.broadcast_to(np.asarray(obj.color, np.float32), (size, size, 3))
    if obj.cls not in ("stripes", "checker"):
        return flat
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    c, s = np.cos(obj.angle), np.sin(obj.angle)
    u, v = (xs - obj.cx) * c + (ys - obj.cy) * s, -(xs - obj.cx) * s + (ys - obj.cy) * c
    period = max(obj.radius / 2.5, 2.0)
    if obj.cls == "stripes":
        first = np.floor(u / period) % 2 == 0
    else:
        first = (np.floor(u / period) + np.floor(v / period)) % 2 == 0
    return np.where(first[..., None], flat, np.asarray(obj.color2, np.float32))


def draw(background: np.ndarray, objects: list[ShapeObject]) -> tuple[np.ndarray, list[float], list[float]]:
    """Composite ``objects`` in order over ``background`` (float RGB).

    Returns the uint8 RGB image and, per object, the fraction of it left visible and its visible area in pixels.
    """
    size = background.shape[0]
    image = background.astype(np.float32).copy()
    masks = [shape_mask(obj, size) for obj in objects]
    for obj, mask in zip(objects, masks):
        image = image * (1 - mask[..., None]) + paint(obj, size) * mask[..., None]
    fractions, areas = [], []
    for i, mask in enumerate(masks):
        cover = np.zeros_like(mask)
        for later in masks[i + 1 :]:
            cover = np.maximum(cover, later)
        area, shown = float(mask.sum()), float((mask * (1 - cover)).sum())
        fractions.append(shown / area if area > 0 else 0.0)
        areas.append(shown)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), fractions, areas


def labels(objects: list[ShapeObject], fractions: list[float], areas: list[float], size: int,
           min_visible: float, min_area: float) -> np.ndarray:  # fmt: skip
    """VOC-style int8 vector over CLASSES: 1 if some instance is clear, 0 if all are difficult, -1 if absent.

    An instance is difficult when less than ``min_visible`` of it shows, or its visible area (``areas``, pixels)
    is under ``min_area`` of the image area.
    """
    target = np.full(len(CLASSES), -1, np.int8)
    for obj, seen, area in zip(objects, fractions, areas):
        index = CLASSES.index(obj.cls)
        clear = seen >= min_visible and area >= min_area * size**2
        target[index] = max(int(target[index]), 1 if clear else 0)
    return target


class EmbeddedShapesConfig(SourceConfig):
    """Options of embedded_shapes."""

    name: str = "embedded_shapes"
    split: Literal["train", "test"] = Field("train", description="Which split; train and test use different seeds.")
    num_images: int = Field(600, ge=1, le=10_000_000, description="Images in the split (before subset).")
    size: int = Field(64, ge=32, le=512, description="Side in pixels of every (square) image.")
    min_objects: int = Field(1, ge=1, le=len(CLASSES), description="Fewest objects per image.")
    max_objects: int = Field(3, ge=1, le=len(CLASSES), description="Most objects per image (distinct classes).")
    min_radius: float = Field(0.12, gt=0.0, le=0.5, description="Smallest object radius, as a fraction of size.")
    max_radius: float = Field(0.26, gt=0.0, le=0.5, description="Largest object radius, as a fraction of size.")
    background_contrast: float = Field(
        0.5, ge=0.0, le=1.0, description="Contrast of the random-colour background around its mean (1: full, 0: flat)."
    )
    noise: float = Field(10.0, ge=0.0, le=100.0, description="Std of the Gaussian pixel noise (0-255 scale).")
    clutter_lines: int = Field(3, ge=0, le=50, description="Most random thin lines drawn on the background.")
    min_visible: float = Field(
        0.5, ge=0.0, le=1.0, description="An instance showing less than this fraction of itself is difficult (0)."
    )
    min_area: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="An instance whose visible area is below this fraction of the image is difficult.",
    )
    seed: int = Field(0, description="Seed of the whole set; image i depends only on (seed, split, i).")

    @model_validator(mode="after")
    def _check(self) -> EmbeddedShapesConfig:
        if self.min_objects > self.max_objects:
            raise ValueError(f"min_objects={self.min_objects} is larger than max_objects={self.max_objects}")
        if self.min_radius > self.max_radius:
            raise ValueError(f"min_radius={self.min_radius} is larger than max_radius={self.max_radius}")
        return self


def _colour(rng: np.random.Generator) -> tuple[float, float, float]:
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(90, 255), rng.uniform(70, 255)]]], np.float32)
    rgb = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0]
    return tuple(float(v) for v in rgb)  # type: ignore[return-value]


class EmbeddedShapes(IndexedSource):
    """Procedural multi-label shapes (10 classes, VOC-style labels), generated per index: the embedded benchmark set.

    Colours, sizes, angles and places are random, so the class is the local shape or texture only.
    """

    name: ClassVar[str] = "embedded_shapes"
    Config: ClassVar[type[SourceConfig]] = EmbeddedShapesConfig
    config: EmbeddedShapesConfig
    consumes: ClassVar[str] = "nothing (generated from a seed)"
    produces: ClassVar[str] = "Sample(image RGB uint8, int8 multi-label over 10 shape classes, key)"
    target_kind: ClassVar[str] = "multilabel"

    @property
    def class_names(self) -> list[str]:
        return list(CLASSES)

    def _count(self) -> int:
        return self.config.num_images

    def _item_key(self, item: int) -> str:
        return f"{self.config.split}/{item:07d}"

    def scene(self, item: int) -> tuple[np.ndarray, list[ShapeObject]]:
        """Background (float RGB) and the objects of image ``item``: a pure function of (seed, split, item)."""
        cfg, size = self.config, self.config.size
        rng = np.random.default_rng([cfg.seed, SPLITS[cfg.split], item])
        grid = rng.uniform(0, 255, (3, 3, 3)).astype(np.float32)
        background = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
        background = background.mean() + cfg.background_contrast * (background - background.mean())
        for _ in range(int(rng.integers(0, cfg.clutter_lines + 1))):
            p, q = rng.uniform(0, size, 2), rng.uniform(0, size, 2)
            cv2.line(background, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), _colour(rng), 1, cv2.LINE_AA)
        background += rng.normal(0, cfg.noise, background.shape).astype(np.float32)
        count = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
        objects = []
        for index in rng.choice(len(CLASSES), size=count, replace=False):
            radius = rng.uniform(cfg.min_radius, cfg.max_radius) * size
            cx, cy = rng.uniform(radius, size - radius, 2)
            objects.append(
                ShapeObject(
                    CLASSES[index],
                    float(cx),
                    float(cy),
                    float(radius),
                    float(rng.uniform(0, 2 * np.pi)),
                    _colour(rng),
                    _colour(rng),
                )  # fmt: skip
            )
        return background, objects

    def render(self, item: int) -> tuple[np.ndarray, np.ndarray, list[ShapeObject]]:
        """Image, label vector and objects of image ``item`` (before the subset)."""
        background, objects = self.scene(item)
        image, fractions, areas = draw(background, objects)
        cfg = self.config
        return image, labels(objects, fractions, areas, cfg.size, cfg.min_visible, cfg.min_area), objects

    def _read(self, item: int) -> Sample:
        image, target, _ = self.render(item)
        return Sample(image, target, self._item_key(item))
