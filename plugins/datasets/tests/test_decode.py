"""The shared decoder and the bad-image counter."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from sslreg_datasets.badimages import BadImageCounter, TooManyBadImages
from sslreg_datasets.decode import decode, decode_image, read, read_image


def test_good_images_decode_to_rgb(tmp_path: Path) -> None:
    bgr = np.zeros((8, 10, 3), np.uint8)
    bgr[..., 0] = 255  # blue in OpenCV's order
    ok, png = cv2.imencode(".png", bgr)
    rgb = decode_image(png.tobytes())
    assert rgb is not None and rgb.shape == (8, 10, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == (0, 0, 255)
    gray = decode_image(cv2.imencode(".png", np.full((5, 6), 77, np.uint8))[1].tobytes())
    assert gray is not None and gray.shape == (5, 6, 3) and (gray == 77).all()
    rgba = np.dstack([bgr, np.full((8, 10), 9, np.uint8)])
    with_alpha = decode_image(cv2.imencode(".png", rgba)[1].tobytes())
    assert with_alpha is not None and with_alpha.shape == (8, 10, 3)
    path = tmp_path / "x.png"
    path.write_bytes(png.tobytes())
    np.testing.assert_array_equal(read_image(path), rgb)


def test_broken_images_give_none_and_a_reason(tmp_path: Path) -> None:
    jpeg = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8))[1].tobytes()
    png = cv2.imencode(".png", np.zeros((16, 16, 3), np.uint8))[1].tobytes()
    assert decode(jpeg).image is not None
    assert decode(jpeg + b"\0\0trailer").image is not None  # data after the end marker is fine
    assert "truncated JPEG" in decode(jpeg[: len(jpeg) - 50]).reason
    assert "truncated JPEG" in decode(jpeg[:-2]).reason
    assert "truncated PNG" in decode(png[:-12]).reason
    assert decode(b"").reason == "empty file"
    assert decode(b"hello, I am text").image is None
    assert "cannot read" in read(tmp_path / "missing.jpg").reason


def test_counter_counts_and_raises_past_the_limit() -> None:
    counter = BadImageCounter("demo", max_bad_fraction=0.25, min_seen=4)
    counter.record_bad("x.jpg", "truncated JPEG")  # 1 of 1 bad, but fewer than min_seen: no error yet
    for _ in range(4):
        counter.record_good()
    assert (counter.seen, counter.bad, counter.keys) == (5, 1, ["x.jpg"])
    assert "1 of 5 images skipped" in counter.summary() and "x.jpg" in counter.summary()
    with pytest.raises(TooManyBadImages, match=r"dataset 'demo': 2 of 6 images unreadable .*max_bad_fraction=0.25"):
        counter.record_bad("y.jpg", "empty file")
    other = BadImageCounter("demo")
    other.record_good()
    counter.merge(other)
    assert counter.seen == 7 and BadImageCounter("clean").summary() == "clean: 0 images read, none skipped"
