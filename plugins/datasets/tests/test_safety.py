"""Data that must not run code, exhaust memory or hang a scan: pipe: names, decompression bombs, link loops."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest
import webdataset as wds
from sslreg_datasets import ImageFolder, LabeledFolder, Shards
from sslreg_datasets.decode import decode, image_size
from sslreg_datasets.walk import scan

from sslreg import UserError


@pytest.fixture
def no_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to start a process fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(subprocess, "Popen", refuse)


def test_a_shard_file_named_like_a_pipe_is_read_not_run(
    tmp_path: Path, make_shards: Callable[..., str], monkeypatch: pytest.MonkeyPatch, no_subprocess: None
) -> None:
    make_shards(tmp_path / "good", counts=(3,), broken=None)
    monkeypatch.chdir(tmp_path)
    shutil.copy(tmp_path / "good" / "data-000.tar", tmp_path / "pipe:touch CANARY")
    source = Shards(Shards.Config(urls="pipe:touch CANARY"))
    assert [s.key for s in source.stream()] == [
        "pipe:touch CANARY/s0_00",
        "pipe:touch CANARY/s0_01",
        "pipe:touch CANARY/s0_02",
    ]
    (tmp_path / "pipe:touch CANARY2").write_text("echo not a tar\n" * 50)
    assert Shards.check(Shards.Config(urls="pipe:touch CANARY2")) == [
        "urls: 1 of 1 shards are not tar files: 'pipe:touch CANARY2'"
    ]
    assert not (tmp_path / "CANARY").exists() and not (tmp_path / "CANARY2").exists()


@pytest.mark.parametrize("url", ["pipe:touch CANARY", "file:pipe:touch CANARY", "http://127.0.0.1:9/a.tar"])
def test_urls_that_are_not_files_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_subprocess: None, url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"^dataset 'shards': urls: .* (is not a local file|do not exist)"):
        Shards(Shards.Config(urls=url))
    assert not (tmp_path / "CANARY").exists()


def test_allow_remote_hands_urls_to_gopen(tmp_path: Path, make_shards: Callable[..., str]) -> None:
    """With allow_remote, pipe: urls do run (documented): here `cat` of a local shard."""
    make_shards(tmp_path, counts=(2,), broken=None)
    source = Shards(Shards.Config(urls=f"pipe:cat '{tmp_path / 'data-000.tar'}'", allow_remote=True))
    assert len([s for s in source.stream() if s is not None]) == 2


def huge_png(width: int = 30000, height: int = 30000) -> bytes:
    """A valid 1-bit greyscale PNG of width x height, all black: about 110 KB, 2.7 GB once decoded to RGB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    rows = row * 1000
    body = b"".join(packer.compress(rows) for _ in range(height // 1000)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def with_jpeg_size(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its frame header claiming width x height."""
    start = jpeg.index(b"\xff\xc0")
    return jpeg[: start + 5] + struct.pack(">HH", height, width) + jpeg[start + 9 :]


def test_huge_images_are_skipped_from_their_header(
    tmp_path: Path,
    write_image: Callable[..., Path],
    encode_image: Callable[..., bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bomb = huge_png()
    assert len(bomb) < 200_000 and image_size(bomb) == (30000, 30000)
    jpeg = encode_image(1, ".jpg")
    assert image_size(jpeg) == (32, 24) and image_size(with_jpeg_size(jpeg, 60000, 50000)) == (60000, 50000)
    bmp = bytearray(encode_image(2, ".bmp"))
    bmp[18:26] = struct.pack("<ii", 40000, 40000)
    decoded_sizes = []
    imdecode = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda data, flags: decoded_sizes.append(data.size) or imdecode(data, flags))

    assert decode(bomb).reason == "too large: 30000x30000 = 900,000,000 pixels > max_pixels 100,000,000"
    assert decode(with_jpeg_size(jpeg, 60000, 50000)).reason.startswith("too large: 60000x50000 = 3,000,000,000")
    assert decode(bytes(bmp)).reason.startswith("too large: Image size (1600000000 pixels) exceeds limit")
    assert decode(jpeg, max_pixels=32 * 24).image is not None
    assert decode(jpeg, max_pixels=32 * 24 - 1).reason == "too large: 32x24 = 768 pixels > max_pixels 767"
    assert decoded_sizes == [len(jpeg)]  # only the image under the limit reached the decoder

    folder = tmp_path / "photos"
    write_image(folder / "a.jpg", 1)
    (folder / "bomb.png").write_bytes(bomb)
    source = ImageFolder(ImageFolder.Config(root=str(folder), max_bad_fraction=1.0))
    assert source.load(0) is not None and source.load(1) is None
    assert source.bad_images.examples == [("bomb.png", decode(bomb).reason)]

    with wds.TarWriter(str(tmp_path / "bomb.tar")) as sink:
        sink.write({"__key__": "ok", "jpg": jpeg})
        sink.write({"__key__": "bomb", "png": bomb})
    shards = Shards(Shards.Config(urls=str(tmp_path / "bomb.tar"), max_bad_fraction=1.0, max_pixels=10_000_000))
    assert [s is None for s in shards.stream()] == [False, True]
    assert shards.bad_images.examples == [
        ("bomb.tar/bomb", "too large: 30000x30000 = 900,000,000 pixels > max_pixels 10,000,000")
    ]


def test_link_loops_end_and_every_file_is_listed_once(tmp_path: Path, write_image: Callable[..., Path]) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    write_image(root / "a.jpg", 1)
    write_image(root / "sub" / "b.jpg", 2)
    write_image(outside / "c.jpg", 3)
    (root / "self").symlink_to(root)  # two self-links: os.walk(followlinks=True) loops on these
    (root / "sub" / "up").symlink_to("..")
    (root / "0_first_link_to_sub").symlink_to(root / "sub")  # sorts before 'sub': the direct path still wins
    (root / "a_link.jpg").symlink_to(root / "a.jpg")  # a file reached twice
    (root / "ext").symlink_to(outside)
    (root / "ext2").symlink_to(outside)  # the same outside folder twice: listed under the first name
    (root / "z.jpg").symlink_to(outside / "c.jpg")  # also reached through ext/
    assert scan(root, [".jpg"]) == ["a.jpg", "ext/c.jpg", "sub/b.jpg"]
    source = ImageFolder(ImageFolder.Config(root=str(root)))
    assert [source.key(i) for i in range(len(source))] == ["a.jpg", "ext/c.jpg", "sub/b.jpg"]
    assert all(source.load(i) is not None for i in range(3))
    (root / "sub" / "b.jpg").unlink()
    (root / "sub" / "b_link.jpg").symlink_to(outside / "c.jpg")
    assert scan(root, ["jpg"]) == ["a.jpg", "ext/c.jpg"]  # links to a file listed already are left out


def test_link_loops_inside_class_folders(class_folder: Path) -> None:
    (class_folder / "cat" / "again").symlink_to(class_folder / "cat")
    (class_folder / "dog" / "everything").symlink_to(class_folder)
    source = LabeledFolder(LabeledFolder.Config(root=str(class_folder)))
    keys = [source.key(i) for i in range(len(source))]
    assert [key for key in keys if key.startswith("cat/")] == ["cat/0.jpg", "cat/1.jpg"]  # cat/again: same folder
    # dog/everything reaches the other classes' folders once each (each class folder is scanned on its own)
    assert [key for key in keys if key.startswith("dog/")] == [
        "dog/0.jpg", "dog/1.jpg", "dog/everything/cat/0.jpg", "dog/everything/cat/1.jpg",
        "dog/everything/fish/0.jpg", "dog/everything/fish/1.jpg",
    ]  # fmt: skip


def test_bad_data_refused_before_work(tmp_path: Path) -> None:
    (tmp_path / "zero.tar").write_bytes(b"")
    with pytest.raises(UserError, match=r"^dataset 'shards': urls: 1 of 1 shards are empty \(0 bytes\): '.*zero.tar'$"):
        Shards(Shards.Config(urls=str(tmp_path / "zero.tar")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"^dataset 'image_folder': root '.*empty' holds no images with extensions"):
        ImageFolder(ImageFolder.Config(root=str(tmp_path / "empty")))
