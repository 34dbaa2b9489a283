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


@pytest.fixture
def class_folder(tmp_path: Path, write_image: Callable[..., Path]) -> Path:
    """root/<class>/<i>.jpg for 3 classes (cat, dog, fish) x 2 images."""
    root = tmp_path / "classes"
    for c, cls in enumerate(("cat", "dog", "fish")):
        for i in range(2):
            write_image(root / cls / f"{i}.jpg", 10 * c + i)
    return root


def write_shards(folder: Path, counts: tuple[int, ...] = (5, 5, 4), broken: tuple[int, int] | None = (2, 3)) -> str:
    """Shards data-000.tar, ... with ``counts`` samples and a .cls label; sample ``broken`` is a cut-off JPEG.

    Returns the brace pattern naming them all.
    """
    import webdataset as wds

    folder.mkdir(parents=True, exist_ok=True)
    for shard, count in enumerate(counts):
        with wds.TarWriter(str(folder / f"data-{shard:03d}.tar")) as sink:
            for i in range(count):
                data = encode(10 * shard + i, ".jpg", size=16)
                if (shard, i) == broken:
                    data = data[:-40]
                sink.write({"__key__": f"s{shard}_{i:02d}", "jpg": data, "cls": str(shard)})
    return str(folder / f"data-{{000..{len(counts) - 1:03d}}}.tar")


@pytest.fixture
def shard_dir(tmp_path: Path) -> Path:
    """3 shards of 5, 5 and 4 samples with a .cls label; the last sample of shard 2 is a broken JPEG."""
    write_shards(tmp_path)
    return tmp_path


VOC_IDS = ("000005", "000007", "000009", "000012")


def write_voc(root: Path, split: str = "trainval") -> dict[str, np.ndarray]:
    """A 4-image VOC2007 folder; returns the expected label vector per id."""
    from sslreg_datasets.voc07 import VOC_CLASSES

    rng = np.random.default_rng(7)
    expected = {i: rng.choice(np.array([1, -1, 0], np.int8), size=20, p=[0.3, 0.6, 0.1]) for i in VOC_IDS}
    for i in VOC_IDS:
        path = root / "JPEGImages" / f"{i}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(int(i)))
    main = root / "ImageSets" / "Main"
    main.mkdir(parents=True, exist_ok=True)
    (main / f"{split}.txt").write_text("\n".join(VOC_IDS) + "\n")
    for c, cls in enumerate(VOC_CLASSES):
        (main / f"{cls}_{split}.txt").write_text("".join(f"{i} {expected[i][c]:2d}\n" for i in VOC_IDS))
    return expected


def write_places(root: Path, class_folder: Path) -> Path:
    """The default Places205 layout under ``root`` with class_folder's images as images256/; returns root."""
    (root / "trainvalsplit_places205").mkdir(parents=True)
    class_folder.rename(root / "images256")
    (root / "trainvalsplit_places205" / "train_places205.csv").write_text("cat/0.jpg 3\ndog/1.jpg 0\nfish/0.jpg 204\n")
    (root / "trainvalsplit_places205" / "val_places205.csv").write_text("dog/0.jpg 1\n")
    return root


@pytest.fixture
def make_shards() -> Callable[..., str]:
    """make_shards(folder, counts=(5, 5, 4), broken=(2, 3)): see write_shards."""
    return write_shards


@pytest.fixture
def make_voc() -> Callable[..., dict[str, np.ndarray]]:
    """make_voc(root, split="trainval"): see write_voc."""
    return write_voc


@pytest.fixture
def make_places() -> Callable[[Path, Path], Path]:
    """make_places(root, class_folder): see write_places."""
    return write_places
