"""Image decoding shared by every source: bytes or a file in, RGB uint8 (H, W, 3) or a reason it is unreadable.

OpenCV decodes truncated JPEGs silently (the missing rows come out grey), so the end markers are checked
explicitly: a JPEG needs an end-of-image marker (FFD9) after its last start-of-scan, a PNG its IEND chunk.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import cv2
import numpy as np

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_SOS, JPEG_EOI = b"\xff\xda", b"\xff\xd9"
#: Decode straight to RGB where OpenCV can (4.10+), else decode BGR and convert.
_RGB_FLAG = getattr(cv2, "IMREAD_COLOR_RGB", None)


class Decoded(NamedTuple):
    """An RGB uint8 image, or None and a short reason (``"truncated JPEG"``, ``"empty file"``, ...)."""

    image: np.ndarray | None
    reason: str = ""


def truncation(data: bytes) -> str:
    """Why ``data`` is a cut-off JPEG or PNG, or '' when its end marker is there (other formats: '')."""
    if data.startswith(JPEG_MAGIC):
        if data[-64:].rstrip(b"\0\r\n ").endswith(JPEG_EOI):
            return ""  # the common case, without scanning the whole file
        last_scan = data.rfind(JPEG_SOS)
        if data.find(JPEG_EOI, max(last_scan, 2)) < 0:
            return "truncated JPEG (no end-of-image marker FFD9)"
    elif data.startswith(PNG_MAGIC) and data.rfind(b"IEND") < 0:
        return "truncated PNG (no IEND chunk)"
    return ""


def decode(data: bytes | bytearray | memoryview) -> Decoded:
    """Decode encoded image bytes to RGB uint8; grey becomes 3 channels, alpha is dropped, EXIF rotation applied."""
    data = bytes(data)
    if not data:
        return Decoded(None, "empty file")
    problem = truncation(data)
    if problem:
        return Decoded(None, problem)
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR if _RGB_FLAG is None else _RGB_FLAG)
    except cv2.error as error:
        return Decoded(None, f"decode error: {str(error).strip().splitlines()[-1]}")
    if image is None or image.size == 0:
        return Decoded(None, "not a decodable image")
    if _RGB_FLAG is None:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return Decoded(image)


def read(path: str | os.PathLike[str]) -> Decoded:
    """Read and decode one image file; a missing or unreadable file is a reason, not an exception."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        return Decoded(None, f"cannot read: {error.strerror or error}")
    return decode(data)


def decode_image(data: bytes | bytearray | memoryview) -> np.ndarray | None:
    """RGB uint8 (H, W, 3) from encoded bytes, or None when corrupt, truncated, empty or not an image."""
    return decode(data).image


def read_image(path: str | os.PathLike[str]) -> np.ndarray | None:
    """RGB uint8 (H, W, 3) from a file, or None when unreadable (see ``decode_image``)."""
    return read(path).image
