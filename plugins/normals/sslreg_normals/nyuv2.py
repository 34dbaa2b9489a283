"""nyuv2: RGB images with ground-truth surface normals and valid masks, read from the layout of ``layout.py``.

The same reader serves converted NYUv2 (``sslreg convert-nyuv2``: the official 795 train / 654 test split) and
the rendered demo scenes (``rendered_normals``). A sample whose RGB, normals or mask file is missing, truncated,
undecodable or of another size than the others is skipped and counted (the core's loader drops it); past
``max_bad_fraction`` the run stops with one line.
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import ClassVar, Literal

import cv2
import numpy as np
from pydantic import Field
from sslreg_datasets import (
    IndexedSource,
    SourceConfig,
    file_problem,
    first_line,
    folder_problem,
    image_size,
    list_lines,
    read,
    truncation,
)

from sslreg import Sample
from sslreg_normals.layout import decode_normals, rgb_path, target


class NormalsFolderConfig(SourceConfig):
    """Options of nyuv2."""

    name: str = "nyuv2"
    root: str = Field(description="Dataset folder in the normals layout (train.txt, test.txt, rgb/, normals/, mask/).")
    split: Literal["train", "test"] = Field("train", description="Which list to read: train.txt or test.txt.")


def read_array(path: Path, max_pixels: int, flags: int) -> np.ndarray | str:
    """An image file decoded with OpenCV ``flags`` (16-bit kept), or why it cannot be: size checked first."""
    try:
        data = path.read_bytes()
    except OSError as error:
        return f"cannot read {path.name}: {error.strerror or error}"
    if not data:
        return f"{path.name}: empty file"
    size = image_size(data)
    if size is None:
        return f"{path.name}: not a decodable image"
    if size[0] * size[1] > max_pixels:
        return f"{path.name}: too large ({size[0]}x{size[1]} > max_pixels {max_pixels:,})"
    problem = truncation(data)
    if problem:
        return f"{path.name}: {problem}"
    array = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if array is None or array.size == 0:
        return f"{path.name}: not a decodable image"
    return array


def read_normals(path: Path, max_pixels: int) -> np.ndarray | str:
    """Unit normals (H, W, 3) float32 from a 16-bit normals PNG, or why not."""
    stored = read_array(path, max_pixels, cv2.IMREAD_UNCHANGED)
    if isinstance(stored, str):
        return stored
    if stored.dtype != np.uint16 or stored.ndim != 3 or stored.shape[2] != 3:
        return f"{path.name}: expected a 16-bit 3-channel PNG, got {stored.dtype} {stored.shape}"
    return decode_normals(stored)


def read_mask(path: Path, max_pixels: int) -> np.ndarray | str:
    """Valid pixels (H, W) bool from a mask PNG (nonzero = valid), or why not."""
    mask = read_array(path, max_pixels, cv2.IMREAD_GRAYSCALE)
    return mask if isinstance(mask, str) else mask > 0


class NormalsFolder(IndexedSource):
    """RGB + ground-truth surface normals + valid masks (NYUv2 converted, or rendered demo scenes)."""

    name: ClassVar[str] = "nyuv2"
    Config: ClassVar[type[SourceConfig]] = NormalsFolderConfig
    config: NormalsFolderConfig
    consumes: ClassVar[str] = "a folder with train.txt/test.txt, rgb/, normals/ (16-bit PNG) and mask/"
    produces: ClassVar[str] = "Sample(image RGB uint8, normals float32 (H, W, 3) zero where invalid, id)"
    target_kind: ClassVar[str] = "normals"

    @classmethod
    def check(cls, config: NormalsFolderConfig) -> builtins.list[str]:  # type: ignore[override]
        """The root, its three folders and the split list exist, and the list names a sample."""
        root = Path(config.root).expanduser()
        problem = folder_problem("root", config.root)
        if problem:
            return [problem]
        problems = [p for p in (folder_problem("root", root / part) for part in ("rgb", "normals", "mask")) if p]
        listing = root / f"{config.split}.txt"
        listing_problem = file_problem("split", listing)
        if listing_problem:
            problems.append(f"{listing_problem} (root must hold {config.split}.txt)")
        elif first_line(listing) is None:
            problems.append(f"split {str(listing)!r} lists no sample")
        return problems

    def __init__(self, config: NormalsFolderConfig) -> None:
        super().__init__(config)
        self._open(Path(config.root).expanduser(), config.split)

    def _open(self, root: Path, split: str) -> None:
        """Read the split's ids from ``root``."""
        self.root = root
        self.ids = [text for _, text in list_lines(root / f"{split}.txt", self.name)]

    def _count(self) -> int:
        return len(self.ids)

    def _item_key(self, item: int) -> str:
        return self.ids[item]

    def _read(self, item: int) -> Sample | str:
        sample_id, limit = self.ids[item], self.config.max_pixels
        decoded = read(rgb_path(self.root, sample_id), limit)
        if decoded.image is None:
            return f"rgb: {decoded.reason}"
        normals = read_normals(self.root / "normals" / f"{sample_id}.png", limit)
        if isinstance(normals, str):
            return normals
        mask = read_mask(self.root / "mask" / f"{sample_id}.png", limit)
        if isinstance(mask, str):
            return mask
        shapes = {decoded.image.shape[:2], normals.shape[:2], mask.shape}
        if len(shapes) > 1:
            return f"rgb, normals and mask sizes differ: {sorted(shapes)}"
        return Sample(decoded.image, target(normals, mask & np.any(normals != 0, axis=-1)), sample_id)
