"""check(config) of every source on tiny bad trees: the exact line each problem gives, found without decoding."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest
import sslreg_datasets
from sslreg_datasets import walk

from sslreg import UserError

EXTENSIONS = ".jpg, .jpeg, .png, .bmp, .webp, .tif, .tiff"


def check(name: str, **options: object) -> list[str]:
    cls = {source.name: source for source in sslreg_datasets.SOURCES}[name]
    return cls.check(cls.Config(name=name, **options))


@pytest.fixture(autouse=True)
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """check() must never decode an image."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("check() decoded an image")

    monkeypatch.setattr(cv2, "imdecode", refuse)
    monkeypatch.setattr(cv2, "imread", refuse)


def test_image_folder(tmp_path: Path, write_image: Callable[..., Path]) -> None:
    missing, empty, text_only, file = tmp_path / "missing", tmp_path / "empty", tmp_path / "text", tmp_path / "f.jpg"
    empty.mkdir()
    (text_only / "sub").mkdir(parents=True)
    (text_only / "sub" / "notes.txt").write_text("no image")
    file.write_bytes(b"x")
    assert check("image_folder", root=str(missing)) == [f"root '{missing}' does not exist"]
    assert check("image_folder", root=str(file)) == [f"root '{file}' is not a folder"]
    assert check("image_folder", root=str(empty)) == [f"root '{empty}' holds no images with extensions {EXTENSIONS}"]
    assert check("image_folder", root=str(text_only), extensions=["png", ".JPG"]) == [
        f"root '{text_only}' holds no images with extensions .png, .JPG"
    ]
    write_image(text_only / "sub" / "deep" / "a.PNG")
    assert check("image_folder", root=str(text_only), extensions=["png"]) == []
    with pytest.raises(UserError, match=rf"^dataset 'image_folder': root '{empty}' holds no images with"):
        sslreg_datasets.ImageFolder(sslreg_datasets.ImageFolder.Config(root=str(empty)))


def test_image_folder_check_stops_at_the_first_image(
    tmp_path: Path, write_image: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for folder in ("a", "b", "c", "d"):
        for i in range(3):
            write_image(tmp_path / "root" / folder / f"{i}.png", i, size=4)
    listed = []
    scandir = os.scandir
    monkeypatch.setattr(walk.os, "scandir", lambda path: listed.append(path) or scandir(path))
    assert check("image_folder", root=str(tmp_path / "root")) == []
    assert len(listed) == 2  # the root, then folder a, where the first image is


def test_labeled_folder(tmp_path: Path, class_folder: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "x.jpg").write_bytes(b"x")
    (flat / ".hidden").mkdir()
    no_images = tmp_path / "no_images"
    for cls in ("a", "b"):
        (no_images / cls).mkdir(parents=True)
    assert check("labeled_folder", root=str(tmp_path / "none")) == [f"root '{tmp_path / 'none'}' does not exist"]
    assert check("labeled_folder", root=str(flat)) == [
        f"root '{flat}' has no class sub-folders (expected root/<class>/<image>)"
    ]
    assert check("labeled_folder", root=str(class_folder), classes=["cat", "cow", "emu"]) == [
        f"classes: no folder 'cow', 'emu' under root '{class_folder}'"
    ]
    assert check("labeled_folder", root=str(no_images)) == [
        f"root '{no_images}' holds no images with extensions {EXTENSIONS} in its class folders"
    ]
    assert check("labeled_folder", root=str(class_folder)) == []


def test_file_list(tmp_path: Path, class_folder: Path) -> None:
    listing, comments = tmp_path / "list.txt", tmp_path / "comments.txt"
    listing.write_text("# header\n\ncat/1.jpg,0\nnope.jpg,1\n")
    comments.write_text("# only a comment\n\n")
    assert check("file_list", list=str(tmp_path / "none.txt")) == [f"list '{tmp_path / 'none.txt'}' does not exist"]
    assert check("file_list", list=str(tmp_path)) == [f"list '{tmp_path}' is a folder, not a file"]
    assert check("file_list", list=str(listing), root=str(tmp_path / "gone")) == [
        f"root '{tmp_path / 'gone'}' does not exist"
    ]
    assert check("file_list", list=str(comments)) == [f"list '{comments}' names no images"]
    assert check("file_list", list=str(listing)) == [
        f"list '{listing}' line 3: image 'cat/1.jpg' does not exist under the list's folder"
    ]
    assert check("file_list", list=str(listing), root=str(tmp_path)) == [
        f"list '{listing}' line 3: image 'cat/1.jpg' does not exist under root '{tmp_path}'"
    ]
    assert check("file_list", list=str(listing), root=str(class_folder)) == []  # only the first image is looked at


def test_voc07(tmp_path: Path, make_voc: Callable) -> None:
    devkit = tmp_path / "VOCdevkit"
    voc = devkit / "VOC2007"
    assert check("voc07", root=str(voc)) == [f"root '{voc}' does not exist"]
    voc.mkdir(parents=True)
    assert check("voc07", root=str(voc)) == [f"root '{voc}': no ImageSets/Main folder (is it the VOC2007 folder?)"]
    make_voc(voc)
    assert check("voc07", root=str(voc)) == [] and check("voc07", root=str(devkit)) == []
    assert check("voc07", root=str(voc), split="test") == [
        f"root '{voc}': no ImageSets/Main/aeroplane_test.txt (and 19 more class files of split 'test')"
    ]
    main = voc / "ImageSets" / "Main"
    (main / "sheep_trainval.txt").unlink()
    assert check("voc07", root=str(voc)) == [f"root '{voc}': no ImageSets/Main/sheep_trainval.txt"]
    make_voc(voc)
    (voc / "JPEGImages" / "000005.jpg").unlink()
    assert check("voc07", root=str(devkit)) == [
        f"root '{devkit}': JPEGImages/000005.jpg (the first image of split 'trainval') does not exist"
    ]
    (main / "aeroplane_trainval.txt").write_text("")
    assert check("voc07", root=str(voc)) == [f"root '{voc}': ImageSets/Main/aeroplane_trainval.txt names no images"]
    (main / "aeroplane_trainval.txt").write_text("000007 1\n")
    for image in (voc / "JPEGImages").iterdir():
        image.unlink()
    (voc / "JPEGImages").rmdir()
    assert check("voc07", root=str(voc)) == [f"root '{voc}': no JPEGImages folder"]


def test_places205(tmp_path: Path, class_folder: Path, make_places: Callable) -> None:
    root = tmp_path / "places"
    assert check("places205", root=str(root)) == [f"root '{root}' does not exist"]
    root.mkdir()
    assert check("places205", root=str(root)) == [
        f"root '{root}': no split list trainvalsplit_places205/train_places205.csv or train_places205.csv (set list)"
    ]
    assert check(
        "places205", root=str(root), list=str(root / "l.csv"), images=str(root / "im"), categories=str(root / "c.csv")
    ) == [
        f"list '{root / 'l.csv'}' does not exist",
        f"images '{root / 'im'}' does not exist",
        f"categories '{root / 'c.csv'}' does not exist",
    ]
    root.rmdir()
    make_places(root, class_folder)
    assert check("places205", root=str(root)) == [] and check("places205", root=str(root), split="val") == []
    listing = root / "trainvalsplit_places205" / "train_places205.csv"
    listing.write_text("# nothing\n")
    assert check("places205", root=str(root)) == [f"list '{listing}' names no images"]
    listing.write_text("a/abbey/1.jpg 0\n")
    assert check("places205", root=str(root)) == [
        f"list '{listing}' line 1: image 'a/abbey/1.jpg' does not exist under images '{root / 'images256'}'"
    ]


def test_shards(tmp_path: Path, make_shards: Callable[..., str]) -> None:
    urls = make_shards(tmp_path / "good", broken=None)
    assert check("shards", urls=urls) == [] and check("shards", urls=[urls, "file:" + urls]) == []
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(3):
        (bad / f"e{i}.tar").write_bytes(b"")
    assert check("shards", urls=str(bad / "e{0..2}.tar")) == [
        f"urls: 3 of 3 shards are empty (0 bytes): '{bad / 'e0.tar'}' and 2 more"
    ]
    good = sorted((tmp_path / "good").glob("*.tar"))
    data = good[0].read_bytes()
    (bad / "cut.tar").write_bytes(data[:-3000])
    (bad / "cut512.tar").write_bytes(data[: len(data) // 2 // 512 * 512])
    (bad / "text.tar").write_text("hello, not a tar file\n" * 40)
    (bad / "zeros.tar").write_bytes(bytes(10240))
    mixed = [str(good[0]), str(bad / "nope.tar"), str(bad / "e0.tar"), str(bad / "cut.tar"), str(bad / "cut512.tar"),
             str(bad / "text.tar"), str(bad / "zeros.tar")]  # fmt: skip
    assert check("shards", urls=mixed) == [
        f"urls: 1 of 7 shards do not exist: '{bad / 'nope.tar'}'",
        f"urls: 1 of 7 shards are empty (0 bytes): '{bad / 'e0.tar'}'",
        f"urls: 2 of 7 shards are truncated (no end-of-archive blocks): '{bad / 'cut.tar'}' and 1 more",
        f"urls: 1 of 7 shards are not tar files: '{bad / 'text.tar'}'",
        f"urls: 1 of 7 shards hold no samples (empty tar archives): '{bad / 'zeros.tar'}'",
    ]
    assert check("shards", urls=[]) == ["urls: [] names no shards"]
    assert check("shards", urls="::") == ["urls: '::' names no shards"]


@pytest.mark.parametrize(
    "url", ["pipe:touch CANARY", "http://example.org/a.tar", "https://x/a.tar", "s3://b/a.tar", "gs://b/a.tar"]
)
def test_remote_urls_are_refused_by_default(url: str) -> None:
    assert check("shards", urls=url) == [
        f"urls: '{url}' is not a local file; urls with a scheme (pipe: runs a shell command, http:, s3:, gs:, ...)"
        " are read only with allow_remote: true"
    ]
    assert check("shards", urls=[url, url + "x"], allow_remote=True) == []  # allowed: not read by check()


def test_embedded_sources_have_nothing_to_check() -> None:
    assert check("embedded_photos") == [] and check("embedded_shapes") == []
