"""The Jigsaw tile pipeline on the CPU: image -> 3x3 grid of randomly placed tiles -> per-tile colour
augmentation and normalisation -> shuffle. Plain numpy/OpenCV functions, all randomness from one Generator.

Whole-image steps that act pixel by pixel (grayscale of the whole image, ImageNet mean/std) are applied to the
cut tiles with one decision per image: the same numbers as applying them before cutting, on 9 tiles instead of
the whole crop.

Shuffle convention (used everywhere in this plugin): ``shuffled[i] = tiles[perm[i]]``, i.e. output slot i
holds the tile cut from grid cell ``perm[i]`` (cells numbered row-major). ``unshuffle`` inverts it exactly.
"""

from __future__ import annotations

import cv2
import numpy as np

from sslreg import IMAGENET_MEAN, IMAGENET_STD

#: ITU-R 601 luma weights, as in OpenCV's and PIL's RGB -> gray.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def as_rgb(image: np.ndarray) -> np.ndarray:
    """An (H, W, 3) uint8 view of a gray (H, W), gray (H, W, 1), RGB or RGBA uint8 image."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"jigsaw: expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"jigsaw: expected an (H, W, 3) RGB image, got shape {image.shape}")
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[:, :, :3]


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize a square image to ``size`` x ``size`` with OpenCV: exact 2x area halvings while it is at least
    twice too large (anti-aliased and fast), then one bilinear step (PIL's ``reducing_gap`` idea)."""
    while image.shape[0] >= 2 * size:
        half = image.shape[0] // 2
        image = cv2.resize(image[: 2 * half, : 2 * half], (half, half), interpolation=cv2.INTER_AREA)
    if image.shape[0] == size:
        return image
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)


def resize_and_crop(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random square crop with the image's short side, resized (OpenCV) to ``size`` x ``size``.

    Same as resizing the short side to ``size`` and cropping, but only the crop is resampled (faster).
    """
    height, width = image.shape[:2]
    side = min(height, width)
    top = int(rng.integers(height - side + 1))
    left = int(rng.integers(width - side + 1))
    return resize_square(image[top : top + side, left : left + side], size)


def resize_short_side(image: np.ndarray, side: int) -> np.ndarray:
    """The image with its shorter side resized to ``side``, aspect kept (OpenCV; area filter when shrinking)."""
    height, width = image.shape[:2]
    if min(height, width) == side:
        return image
    scale = side / min(height, width)
    size = (max(side, round(width * scale)), max(side, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def random_crop(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``size`` x ``size`` crop (top, then left, drawn from ``rng``) of an image at least that large."""
    height, width = image.shape[:2]
    top = int(rng.integers(height - size + 1))
    left = int(rng.integers(width - size + 1))
    return image[top : top + size, left : left + size]


def cut_tiles(
    image: np.ndarray,
    grid: int,
    cell: int,
    tile: int,
    rng: np.random.Generator,
    channel_shift: int = 0,
) -> np.ndarray:
    """Cut one ``tile`` x ``tile`` crop at a random place inside each of the grid's ``cell`` x ``cell`` cells.

    The grid is centred in the image; cells are numbered row-major. With ``channel_shift`` > 0 each colour
    channel of a tile is cut at its own offset (up to +-channel_shift px, kept inside the cell), which hides
    the chromatic-aberration cue. Returns (grid*grid, tile, tile, 3) uint8.
    """
    margin = (image.shape[0] - grid * cell) // 2, (image.shape[1] - grid * cell) // 2
    count = grid * grid
    room = cell - tile
    offsets = rng.integers(room + 1, size=(count, 2))
    tiles = np.empty((count, tile, tile, 3), dtype=np.uint8)
    if channel_shift > 0:
        shifts = rng.integers(-channel_shift, channel_shift + 1, size=(count, 3, 2))
    for index in range(count):
        top = margin[0] + (index // grid) * cell
        left = margin[1] + (index % grid) * cell
        y, x = offsets[index]
        if channel_shift == 0:
            tiles[index] = image[top + y : top + y + tile, left + x : left + x + tile]
            continue
        for channel in range(3):
            cy = top + min(max(int(y + shifts[index, channel, 0]), 0), room)
            cx = left + min(max(int(x + shifts[index, channel, 1]), 0), room)
            tiles[index, :, :, channel] = image[cy : cy + tile, cx : cx + tile, channel]
    return tiles


def to_float_chw(tiles: np.ndarray) -> np.ndarray:
    """(n, T, T, 3) uint8 -> (n, 3, T, T) float32 in [0, 255]; channel-first keeps numpy's inner loops long."""
    return np.ascontiguousarray(tiles.transpose(0, 3, 1, 2), dtype=np.float32)


def luma(tiles: np.ndarray) -> np.ndarray:
    """Gray level (n, T, T) of (n, 3, T, T) RGB tiles."""
    return LUMA[0] * tiles[:, 0] + LUMA[1] * tiles[:, 1] + LUMA[2] * tiles[:, 2]


def augment_colour(
    tiles: np.ndarray,
    rng: np.random.Generator,
    grayscale_prob: float,
    color_jitter: float,
) -> np.ndarray:
    """Per-tile colour augmentation, in place, of (n, 3, T, T) float32 tiles in [0, 255].

    Brightness b, contrast c and saturation s factors are drawn per tile from [1 - j, 1 + j] and applied in
    that order as in torchvision's ColorJitter (x -> b*x; -> c*x + (1-c)*mean gray; -> s*x + (1-s)*gray),
    fused into one affine map and clipped once; then each tile turns gray with ``grayscale_prob``.
    """
    count = len(tiles)
    gray = luma(tiles)
    if color_jitter > 0:
        low, high = max(0.0, 1.0 - color_jitter), 1.0 + color_jitter
        b, c, s = rng.uniform(low, high, size=(3, count, 1, 1)).astype(np.float32)
        offset = (1.0 - c) * b * gray.mean(axis=(1, 2), keepdims=True)
        gray = c * b * gray + offset  # luma after brightness and contrast; saturation keeps it
        tiles *= (s * c * b)[:, None]
        tiles += ((1.0 - s) * gray + s * offset)[:, None]
        np.clip(tiles, 0.0, 255.0, out=tiles)
    if grayscale_prob > 0:
        to_gray = np.flatnonzero(rng.random(count) < grayscale_prob)
        if len(to_gray):
            tiles[to_gray] = np.clip(gray[to_gray], 0.0, 255.0)[:, None]
    return tiles


def to_gray(tiles: np.ndarray) -> np.ndarray:
    """(n, 3, T, T) float RGB tiles turned gray in place: every channel set to the luma."""
    tiles[:] = luma(tiles)[:, None]
    return tiles


def normalise(tiles: np.ndarray, mode: str, eps: float = 1e-5) -> np.ndarray:
    """(n, 3, T, T) tiles in [0, 255] normalised: each tile on its own to zero mean, unit std per colour channel
    (``channel``) or over the whole tile (``tile``); only scaled to [0, 1] (``none``); or scaled to [0, 1] and
    standardised with the ImageNet mean/std (``imagenet``, the same for every tile, as for the whole image).
    Flat tiles get std 1, not a division by zero.
    """
    tiles = tiles.astype(np.float32, copy=False)
    if mode == "none":
        return tiles / np.float32(255.0)
    if mode == "imagenet":
        mean = np.asarray(IMAGENET_MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(IMAGENET_STD, dtype=np.float32).reshape(1, 3, 1, 1)
        return ((tiles / np.float32(255.0) - mean) / std).astype(np.float32, copy=False)
    count = len(tiles)
    flat = tiles.reshape(count, 3, -1) if mode == "channel" else tiles.reshape(count, 1, -1)
    mean = flat.mean(axis=2, dtype=np.float64)
    std = flat.std(axis=2, dtype=np.float64)
    std[std < eps] = 1.0
    scale = (1.0 / std).astype(np.float32)[..., None]
    shift = (mean / std).astype(np.float32)[..., None]
    return (flat * scale - shift).reshape(tiles.shape)


def shuffle(tiles: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Reorder tiles (first axis) by ``perm``: ``shuffled[i] = tiles[perm[i]]`` (slot i shows cell perm[i]'s tile)."""
    return tiles[np.asarray(perm, dtype=np.intp)]


def unshuffle(shuffled: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Exact inverse of ``shuffle``: puts every tile back into its grid cell (works on numpy and torch)."""
    order = np.argsort(np.asarray(perm, dtype=np.intp))
    return shuffled[order]


def assemble(tiles: np.ndarray, grid: int) -> np.ndarray:
    """Lay (grid*grid, T, T, C) tiles out as one (grid*T, grid*T, C) image, row-major (for tests and figures)."""
    count, size = tiles.shape[0], tiles.shape[1]
    if count != grid * grid:
        raise ValueError(f"jigsaw: {count} tiles do not fill a {grid}x{grid} grid")
    rows = tiles.reshape(grid, grid, size, size, *tiles.shape[3:])
    return np.concatenate([np.concatenate(list(row), axis=1) for row in rows], axis=0)
