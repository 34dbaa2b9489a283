"""Image decoding shared by every source: bytes or a file in, RGB uint8 (H, W, 3) or a reason it is unreadable.

Two checks run before OpenCV sees the bytes:
- Size: the width and height come from the header (PNG IHDR and JPEG SOF parsed here, other formats through
  Pillow's lazy open, which reads only the header), and an image with more than ``max_pixels`` pixels is refused
  without decoding it: a 30000x30000 PNG is under 1 MB on disk and 2.7 GB decoded. An image whose size cannot be
  read from its header is not decoded either.
- Truncation: OpenCV decodes truncated JPEGs silently (the missing rows come out grey), so the end markers are
  checked explicitly: a JPEG needs an end-of-image marker (FFD9) after its last start-of-scan, a PNG its IEND chunk.
"""

from __future__ import annotations

import io
import os
import warnings
from typing import NamedTuple

import cv2
import numpy as np

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_SOS, JPEG_EOI = b"\xff\xda", b"\xff\xd9"
#: Default of the ``max_pixels`` option: 100 megapixels (300 MB as RGB uint8).
MAX_PIXELS = 100_000_000
#: JPEG start-of-frame markers (C0-CF except DHT C4, JPG C8 and DAC CC): they carry the height and width.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: JPEG markers without a length field (TEM, RSTn, SOI, EOI).
_JPEG_STANDALONE = frozenset([0x01, *range(0xD0, 0xDA)])
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


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the first start-of-frame segment of a JPEG, None when there is none."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker in _JPEG_STANDALONE:
            position += 2
            continue
        if marker in _JPEG_SOF:
            if position + 9 > len(data):
                return None
            height = int.from_bytes(data[position + 5 : position + 7], "big")
            width = int.from_bytes(data[position + 7 : position + 9], "big")
            return width, height
        if marker == 0xDA:  # start of scan before any frame header
            return None
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from the header of encoded image bytes, without decoding; None when unknown."""
    if data.startswith(PNG_MAGIC):
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data.startswith(JPEG_MAGIC):
        return _jpeg_size(data)
    from PIL import Image  # other formats (BMP, WebP, TIFF, GIF, ...): Pillow reads only the header here

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                return image.size
        except Image.DecompressionBombError as error:  # Pillow's own limit (about 179M pixels) is lower
            raise OverflowError(str(error)) from None
        except Exception:  # noqa: BLE001 - any failure to parse a header means: size unknown
            return None


def decode(data: bytes | bytearray | memoryview, max_pixels: int = MAX_PIXELS) -> Decoded:
    """Decode encoded image bytes to RGB uint8; grey becomes 3 channels, alpha is dropped, EXIF rotation applied.

    Images with more than ``max_pixels`` pixels (read from the header) or no readable size are not decoded.
    """
    data = bytes(data)
    if not data:
        return Decoded(None, "empty file")
    try:
        size = image_size(data)
    except OverflowError as error:
        return Decoded(None, f"too large: {error}")
    if size is None:
        return Decoded(None, "not a decodable image (no image size in its header)")
    width, height = size
    if width * height > max_pixels:
        return Decoded(None, f"too large: {width}x{height} = {width * height:,} pixels > max_pixels {max_pixels:,}")
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


def read(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> Decoded:
    """Read and decode one image file; a missing or unreadable file is a reason, not an exception."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        return Decoded(None, f"cannot read: {error.strerror or error}")
    return decode(data, max_pixels)


def decode_image(data: bytes | bytearray | memoryview, max_pixels: int = MAX_PIXELS) -> np.ndarray | None:
    """RGB uint8 (H, W, 3) from encoded bytes, or None when corrupt, truncated, empty, too large or not an image."""
    return decode(data, max_pixels).image


def read_image(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> np.ndarray | None:
    """RGB uint8 (H, W, 3) from a file, or None when unreadable (see ``decode_image``)."""
    return read(path, max_pixels).image
