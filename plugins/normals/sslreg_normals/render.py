"""A small numpy ray caster for demo scenes with exact normals: a textured room with boxes, spheres and cylinders.

Every primitive is intersected analytically, so each pixel's normal is exact (up to float32), given in camera
coordinates (x right, y up, z towards the viewer). Surfaces are textured with the photographs embedded in the
datasets plugin and lit by a directional light plus ambient light, so that shading carries the shape. Pixels
seen at grazing angles, and now and then a whole object, are invalid (where a depth sensor fails). A scene is a
pure function of its rng.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

#: The colour photographs scenes are textured with (names of sslreg_datasets.embedded_photos).
TEXTURES = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "china", "flower", "brick", "gravel")
#: Texture side in pixels (photos are shrunk once per process) and texture pixels per metre.
TEXTURE_SIDE, TEXELS_PER_METRE = 256, 110.0
#: Pixels whose normal is within this cosine of perpendicular to the ray are invalid (a grazing view).
GRAZING_COS = 0.1
#: Chance that an object is unmeasured (invalid), as dark or glossy surfaces are for a depth sensor.
UNMEASURED = 0.12
EPS = 1e-4


@cache
def texture(name: str) -> np.ndarray:
    """Photo ``name`` shrunk so its longer side is TEXTURE_SIDE, float32 RGB in [0, 1] (cached per process)."""
    from sslreg_datasets import photo

    image = photo(name)
    scale = TEXTURE_SIDE / max(image.shape[:2])
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    result = small.astype(np.float32) / 255.0
    result.setflags(write=False)
    return result


@dataclass
class Hits:
    """Nearest hit per ray so far: distance, world normal, local point (for texturing) and surface id."""

    t: np.ndarray
    normal: np.ndarray
    local: np.ndarray
    surface: np.ndarray

    @classmethod
    def empty(cls, count: int) -> Hits:
        return cls(
            np.full(count, np.inf, np.float32),
            np.zeros((count, 3), np.float32),
            np.zeros((count, 3), np.float32),
            np.full(count, -1, np.int32),
        )

    def take(self, t: np.ndarray, normal: np.ndarray, local: np.ndarray, surface: int) -> None:
        """Keep the hits at distance ``t`` (inf: none) that are nearer than what is there."""
        closer = (t > EPS) & (t < self.t)
        self.t[closer] = t[closer]
        self.normal[closer] = normal[closer]
        self.local[closer] = local[closer]
        self.surface[closer] = surface


def rotation_y(angle: float) -> np.ndarray:
    """Rotation about the vertical axis."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], np.float32)


def room(hits: Hits, origin: np.ndarray, dirs: np.ndarray, half: np.ndarray, height: float) -> int:
    """The six inner faces of the room [-half_x, half_x] x [0, height] x [-half_z, half_z]; returns faces used."""
    faces = [(0, half[0], -1.0), (0, -half[0], 1.0), (1, height, -1.0), (1, 0.0, 1.0), (2, half[1], -1.0)]
    faces.append((2, -half[1], 1.0))
    for surface, (axis, offset, inward) in enumerate(faces):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (offset - origin[axis]) / dirs[:, axis]
        t = np.where(dirs[:, axis] * inward < 0, t, np.inf).astype(np.float32)
        normal = np.zeros_like(dirs)
        normal[:, axis] = inward
        hits.take(t, normal, origin + np.where(np.isfinite(t), t, 0.0)[:, None] * dirs, surface)
    return len(faces)


def box(hits: Hits, origin, dirs, centre, size, angle, surface) -> None:
    """An upright box (half sizes ``size``) turned by ``angle`` about the vertical: slab intersection."""
    turn = rotation_y(angle)
    o = (origin - centre) @ turn  # into the box frame (turn is orthonormal: x @ R = R^T x)
    d = dirs @ turn
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = 1.0 / d
        lo, hi = (-size - o) * inverse, (size - o) * inverse
    near, far = np.minimum(lo, hi), np.maximum(lo, hi)
    near = np.nan_to_num(near, nan=-np.inf)
    far = np.nan_to_num(far, nan=np.inf)
    entry, leave = near.max(axis=1), far.min(axis=1)
    t = np.where((leave >= entry) & (entry > EPS), entry, np.inf).astype(np.float32)
    axis = near.argmax(axis=1)
    normal = np.zeros_like(d)
    rows = np.arange(len(d))
    normal[rows, axis] = -np.sign(d[rows, axis])
    local = o + np.where(np.isfinite(t), t, 0.0)[:, None] * d
    hits.take(t, normal @ turn.T, local, surface)


def sphere(hits: Hits, origin, dirs, centre, radius, surface) -> None:
    """A sphere: the nearer root of |o + t d - c|^2 = r^2."""
    o = origin - centre
    b = dirs @ o
    disc = b * b - (o @ o - radius * radius)
    root = np.sqrt(np.maximum(disc, 0.0))
    t = np.where(disc > 0, -b - root, np.inf)
    t = np.where(t > EPS, t, np.inf).astype(np.float32)
    point = o + np.where(np.isfinite(t), t, 0.0)[:, None] * dirs
    hits.take(t, point / radius, point, surface)


def cylinder(hits: Hits, origin, dirs, base, radius, height, surface) -> None:
    """An upright cylinder standing at ``base`` (x, y, z): side and top cap."""
    o = origin - base
    a = dirs[:, 0] ** 2 + dirs[:, 2] ** 2
    b = o[0] * dirs[:, 0] + o[2] * dirs[:, 2]
    c = o[0] ** 2 + o[2] ** 2 - radius * radius
    disc = b * b - a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
    y = o[1] + t * dirs[:, 1]
    t = np.where((disc > 0) & (a > 1e-12) & (t > EPS) & (y >= 0) & (y <= height), t, np.inf).astype(np.float32)
    point = o + np.where(np.isfinite(t), t, 0.0)[:, None] * dirs
    normal = point * np.array([1.0, 0.0, 1.0], np.float32) / radius
    hits.take(t, normal, point, surface)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (height - o[1]) / dirs[:, 1]
    point = o + np.where(np.isfinite(t), t, 0.0)[:, None] * dirs
    inside = point[:, 0] ** 2 + point[:, 2] ** 2 <= radius * radius
    t = np.where(inside & (dirs[:, 1] < 0), t, np.inf).astype(np.float32)
    hits.take(t, np.broadcast_to(np.array([0.0, 1.0, 0.0], np.float32), point.shape), point, surface)


def camera(rng: np.random.Generator, half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A random camera inside the room: (position, rotation whose rows are its right, up and back axes)."""
    position = np.array(
        [rng.uniform(-half[0] + 0.4, half[0] - 0.4), rng.uniform(1.0, 1.8), rng.uniform(-half[1] + 0.4, half[1] - 0.4)],
        np.float32,
    )
    yaw, pitch, roll = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(-35, 5)), math.radians(rng.uniform(-6, 6))
    forward = np.array([math.sin(yaw) * math.cos(pitch), math.sin(pitch), -math.cos(yaw) * math.cos(pitch)])
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    right, up = math.cos(roll) * right + math.sin(roll) * up, -math.sin(roll) * right + math.cos(roll) * up
    return position, np.stack([right, up, -forward]).astype(np.float32)


def objects(rng: np.random.Generator, hits: Hits, origin, dirs, half, first: int) -> int:
    """3 to 7 random boxes, spheres and cylinders on the floor, away from the camera; returns their count."""
    count = int(rng.integers(3, 8))
    for index in range(count):
        kind = rng.integers(3)
        for _ in range(20):  # a place not too close to the camera
            x, z = rng.uniform(-half[0] + 0.3, half[0] - 0.3), rng.uniform(-half[1] + 0.3, half[1] - 0.3)
            if math.hypot(x - origin[0], z - origin[2]) > 1.3:
                break
        if kind == 0:
            size = rng.uniform(0.15, 0.6, 3).astype(np.float32)
            centre = np.array([x, size[1], z], np.float32)
            box(hits, origin, dirs, centre, size, rng.uniform(0, math.pi), first + index)
        elif kind == 1:
            radius = float(rng.uniform(0.2, 0.55))
            centre = np.array([x, radius + rng.uniform(0, 0.6), z], np.float32)
            sphere(hits, origin, dirs, centre, radius, first + index)
        else:
            base = np.array([x, 0.0, z], np.float32)
            cylinder(
                hits, origin, dirs, base, float(rng.uniform(0.12, 0.45)), float(rng.uniform(0.3, 1.4)), first + index
            )
    return count


def shade(rng: np.random.Generator, hits: Hits, surfaces: int, rotation: np.ndarray) -> np.ndarray:
    """Texture each surface with a random photo (planar mapping on the dominant axis, contrast lowered), then light
    it with ambient light and a lamp near the camera (fixed in camera space up to a jitter), so shading carries the
    camera-space normal as it does under a flash."""
    colour = np.zeros((len(hits.t), 3), np.float32)
    for surface in range(surfaces):
        rows = np.flatnonzero(hits.surface == surface)
        if not len(rows):
            continue
        image = texture(TEXTURES[int(rng.integers(len(TEXTURES)))])
        albedo = rng.uniform(0.55, 0.95, 3).astype(np.float32)
        contrast = np.float32(rng.uniform(0.3, 0.7))
        scale, shift = TEXELS_PER_METRE * rng.uniform(0.5, 1.5), rng.uniform(0, 1000, 2)
        local, normal = hits.local[rows], hits.normal[rows]
        dominant = np.abs(normal).argmax(axis=1)
        u = np.choose(dominant, [local[:, 2], local[:, 0], local[:, 0]])
        v = np.choose(dominant, [local[:, 1], local[:, 2], local[:, 1]])
        col = ((u * scale + shift[0]).astype(np.int64)) % image.shape[1]
        row = ((-v * scale + shift[1]).astype(np.int64)) % image.shape[0]
        colour[rows] = albedo * ((1 - contrast) * 0.6 + contrast * image[row, col])
    lamp = np.array([rng.uniform(-0.5, 0.1), rng.uniform(0.2, 0.7), 1.0], np.float32)  # camera space: up-left-front
    lamp = (lamp / np.linalg.norm(lamp)) @ rotation  # to world
    lambert = np.clip(hits.normal @ lamp, 0.0, 1.0)
    return colour * (0.25 + 0.8 * lambert)[:, None]


def render_scene(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One scene: RGB uint8 (size, size, 3), camera-space unit normals float32 (size, size, 3), valid (size, size)."""
    half = rng.uniform(1.6, 3.2, 2).astype(np.float32)
    height = float(rng.uniform(2.4, 3.2))
    origin, rotation = camera(rng, half)
    focal = 0.5 * size / math.tan(math.radians(rng.uniform(50, 65)) / 2)
    pixels = (np.arange(size, dtype=np.float32) + 0.5 - size / 2) / focal
    xs, ys = np.meshgrid(pixels, -pixels)
    rays = np.stack([xs, ys, -np.ones_like(xs)], axis=-1).reshape(-1, 3)
    dirs = (rays / np.linalg.norm(rays, axis=1, keepdims=True)) @ rotation  # camera to world
    hits = Hits.empty(len(dirs))
    walls = room(hits, origin, dirs, half, height)
    surfaces = walls + objects(rng, hits, origin, dirs, half, walls)
    facing = -np.sum(hits.normal * dirs, axis=1)
    hits.normal[facing < 0] *= -1.0  # always the side the camera sees
    colour = shade(rng, hits, surfaces, rotation)
    noise = rng.normal(0.0, 0.01, colour.shape).astype(np.float32)
    rgb = np.clip((colour + noise) * 255.0 + 0.5, 0, 255).astype(np.uint8).reshape(size, size, 3)
    normals = hits.normal @ rotation.T  # world to camera
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)  # float32 rounding of p / r
    normals = normals.reshape(size, size, 3)
    measured = rng.random(surfaces) >= UNMEASURED
    measured[:walls] = True  # only objects go unmeasured: most of a view stays valid
    valid = (np.isfinite(hits.t) & (np.abs(facing) > GRAZING_COS) & measured[hits.surface]).reshape(size, size)
    return rgb, normals.astype(np.float32), valid
