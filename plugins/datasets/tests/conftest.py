"""Tiny image fixtures written to tmp_path: good JPEG/PNG files and the usual broken ones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest


def encode(seed: int, ext: str = ".jpg", size: int = 24, gray: bool = False) -> bytes:
    """Encoded bytes of a small deterministic random image."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (size, size + 8) if gray else (size, size + 8, 3), dtype=np.uint8)
    ok, data = cv2.imencode(ext, image)
    assert ok
    return data.tobytes()


@pytest.fixture
def encode_image() -> Callable[..., bytes]:
    """encode_image(seed, ext=".jpg", size=24, gray=False): bytes of a small deterministic image."""
    return encode


@pytest.fixture
def write_image() -> Callable[..., Path]:
    """write_image(path, seed, ext=...) writes a small valid image and returns its path."""

    def write(path: Path, seed: int = 0, **options: object) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(seed, path.suffix.lower(), **options))  # type: ignore[arg-type]
        return path

    return write


@pytest.fixture
def mixed_folder(tmp_path: Path, write_image: Callable[..., Path]) -> Path:
    """A folder with 4 good images (one grey, one in a sub-folder) and 3 bad ones: truncated, text, empty."""
    root = tmp_path / "mixed"
    write_image(root / "a.jpg", 1)
    write_image(root / "b.png", 2)
    write_image(root / "c.jpg", 3, gray=True)
    write_image(root / "sub" / "d.JPG", 4)
    good = encode(5, ".jpg", size=64)
    (root / "trunc.jpg").write_bytes(good[: len(good) // 2])
    (root / "text.jpg").write_text("this is not an image\n")
    (root / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("ignored: not an image extension")
    return root
