"""Folder, list, VOC07 and Places205 readers on tiny fixtures; bad images skipped and counted; subsets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sslreg_datasets import SOURCES
from sslreg_datasets.badimages import TooManyBadImages
from sslreg_datasets.voc07 import VOC_CLASSES

from sslreg import UserError
from sslreg.plugins import load_plugins

CLASSES = ("cat", "dog", "fish")


def build(name: str, **options: object):
    """Build one of this plugin's sources directly (no other plugin is imported)."""
    cls = {source.name: source for source in SOURCES}[name]
    return cls(cls.Config(name=name, **options))


def test_every_source_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSLREG_LOAD_PLUGINS", "datasets")
    registry = load_plugins().registry
    assert {entry.name for entry in registry.list("dataset")} >= {source.name for source in SOURCES}
    source = registry.build("dataset", {"name": "embedded_shapes", "num_images": 5, "subset": 2})
    assert len(source) == 2


def test_image_folder_skips_and_counts_bad_images(mixed_folder: Path) -> None:
    source = build(name="image_folder", root=str(mixed_folder), max_bad_fraction=1.0)
    keys = ["a.jpg", "b.png", "c.jpg", "empty.png", "sub/d.JPG", "text.jpg", "trunc.jpg"]
    assert [source.key(i) for i in range(len(source))] == keys
    samples = [source.load(i) for i in range(len(source))]
    good = [s for s in samples if s is not None]
    assert [s.key for s in good] == ["a.jpg", "b.png", "c.jpg", "sub/d.JPG"]
    assert all(s.image.ndim == 3 and s.image.shape[2] == 3 and s.target is None for s in good)
    assert source.bad_images.bad == 3 and source.bad_images.seen == 7
    assert sorted(source.bad_images.keys) == ["empty.png", "text.jpg", "trunc.jpg"]


def test_too_many_bad_images_is_a_clear_error(mixed_folder: Path) -> None:
    source = build(name="image_folder", root=str(mixed_folder), max_bad_fraction=0.2, bad_check_after=5)
    with pytest.raises(TooManyBadImages, match=r"'image_folder': 2 of 6 images unreadable"):
        for index in range(len(source)):
            source.load(index)


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"^dataset 'image_folder': root '.*nope' does not exist$"):
        build(name="image_folder", root=str(tmp_path / "nope"))
    with pytest.raises(UserError, match=r"^dataset 'image_folder': root '.*' holds no images with extensions .jpg$"):
        build(name="image_folder", root=str(tmp_path), extensions=["jpg"])


def test_labeled_folder(class_folder: Path) -> None:
    source = build(name="labeled_folder", root=str(class_folder))
    assert source.class_names == list(CLASSES) and len(source) == 6 and source.target_kind == "class"
    assert [(s.key, s.target) for s in map(source.load, range(6))] == [
        ("cat/0.jpg", 0), ("cat/1.jpg", 0), ("dog/0.jpg", 1), ("dog/1.jpg", 1), ("fish/0.jpg", 2), ("fish/1.jpg", 2),
    ]  # fmt: skip
    picked = build(name="labeled_folder", root=str(class_folder), classes=["fish", "cat"])
    assert picked.class_names == ["fish", "cat"] and picked.load(0).key == "fish/0.jpg" and picked.load(0).target == 0
    with pytest.raises(UserError, match=r"^dataset 'labeled_folder': classes: no folder 'cow' under root '.*'$"):
        build(name="labeled_folder", root=str(class_folder), classes=["cow"])


def test_file_list(class_folder: Path, tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text("# path,label\ncat/0.jpg,cat\n\ndog/1.jpg,dog\nfish/0.jpg,fish\n")
    ints = tmp_path / "ints.txt"
    ints.write_text("cat/0.jpg,2\ndog/0.jpg,0\n")
    plain = class_folder / "plain.txt"
    plain.write_text("cat/1.jpg\nfish/1.jpg\n")
    by_name = build(name="file_list", list=str(names), root=str(class_folder))
    assert by_name.class_names == list(CLASSES) and [by_name.load(i).target for i in range(3)] == [0, 1, 2]
    np.testing.assert_array_equal(
        by_name.load(1).image, build(name="image_folder", root=str(class_folder / "dog")).load(1).image
    )
    by_index = build(name="file_list", list=str(ints), root=str(class_folder), class_names=list(CLASSES))
    assert [by_index.load(i).target for i in range(2)] == [2, 0] and by_index.class_names == list(CLASSES)
    unlabeled = build(name="file_list", list=str(plain))  # paths relative to the list's own folder
    assert unlabeled.target_kind == "none" and unlabeled.class_names == [] and unlabeled.load(1).key == "fish/1.jpg"
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("cat/0.jpg,0\ndog/0.jpg\n")
    with pytest.raises(UserError, match=r"^dataset 'file_list': list .*mixed.txt:2: some lines have a label"):
        build(name="file_list", list=str(mixed), root=str(class_folder))
    with pytest.raises(UserError, match=r"names.txt:2: unknown class 'cat'"):
        build(name="file_list", list=str(names), root=str(class_folder), class_names=["x", "y", "z"])
    with pytest.raises(UserError, match=r"^dataset 'file_list': list '.*none.txt' does not exist$"):
        build(name="file_list", list=str(tmp_path / "none.txt"))


def test_voc07(tmp_path: Path, make_voc: Callable[..., dict[str, np.ndarray]]) -> None:
    expected = make_voc(tmp_path / "VOCdevkit" / "VOC2007")
    source = build(name="voc07", root=str(tmp_path / "VOCdevkit"), split="trainval")
    assert len(source) == 4 and source.class_names == list(VOC_CLASSES) and source.target_kind == "multilabel"
    for index in range(4):
        sample = source.load(index)
        assert sample.target.dtype == np.int8 and sample.image.shape == (24, 32, 3)
        np.testing.assert_array_equal(sample.target, expected[sample.key])
    targets = source.targets()  # from the class files, no image read
    assert targets.shape == (4, 20) and targets.dtype == np.int8
    np.testing.assert_array_equal(targets, [expected[source.key(index)] for index in range(4)])
    with pytest.raises(UserError, match=r"no ImageSets/Main/aeroplane_test.txt \(and 19 more class files"):
        build(name="voc07", root=str(tmp_path / "VOCdevkit"), split="test")
    main = tmp_path / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main"
    (main / "sheep_trainval.txt").write_text("000005 1\n")
    with pytest.raises(UserError, match=r"^dataset 'voc07': root '.*VOC2007': ImageSets/Main/sheep_trainval.txt lists"):
        build(name="voc07", root=str(tmp_path / "VOCdevkit" / "VOC2007"))
    (main / "sheep_trainval.txt").write_text("000005 2\n")
    with pytest.raises(UserError, match=r"sheep_trainval.txt:1: expected '<id> <1\|-1\|0>', got '000005 2'$"):
        build(name="voc07", root=str(tmp_path / "VOCdevkit" / "VOC2007"))


def test_places205(class_folder: Path, tmp_path: Path) -> None:
    listing = tmp_path / "train_places205.csv"
    listing.write_text("cat/0.jpg 3\ndog/1.jpg 0\nfish/0.jpg 204\n")
    categories = tmp_path / "categoryIndex_places205.csv"
    categories.write_text("/a/abbey 0\n/f/field/wild 3\n")
    source = build("places205", root=str(tmp_path), list=str(listing), images=str(class_folder))
    assert [(s.key, s.target) for s in map(source.load, range(3))] == [
        ("cat/0.jpg", 3),
        ("dog/1.jpg", 0),
        ("fish/0.jpg", 204),
    ]
    assert len(source.class_names) == 205 and source.class_names[:4] == ["abbey", "1", "2", "field/wild"]
    (class_folder / "dog" / "1.jpg").write_bytes(b"not an image")  # targets() comes from the list alone
    assert source.targets().tolist() == [3, 0, 204]
    picked = build("places205", root=str(tmp_path), list=str(listing), images=str(class_folder), subset=2)
    listed = {"cat/0.jpg": 3, "dog/1.jpg": 0, "fish/0.jpg": 204}
    assert picked.targets().tolist() == [listed[picked.key(i)] for i in range(2)]  # the subset's, in its order
    listing.write_text("cat/0.jpg 205\n")
    with pytest.raises(UserError, match=r"^dataset 'places205': list train_places205.csv:1: expected 'path label'"):
        build("places205", root=str(tmp_path), images=str(class_folder))


def test_places205_default_layout(class_folder: Path, tmp_path: Path, make_places: Callable) -> None:
    root = make_places(tmp_path / "places", class_folder)
    source = build("places205", root=str(root), split="val")
    assert len(source) == 1 and source.load(0).target == 1 and source.class_names[1] == "1"
    assert len(build("places205", root=str(root))) == 3
    (root / "trainvalsplit_places205" / "train_places205.csv").unlink()
    with pytest.raises(UserError, match=r"no split list trainvalsplit_places205/train_places205.csv or train_"):
        build("places205", root=str(root))


def test_subsets_are_deterministic_and_seeded(tmp_path: Path, write_image: Callable[..., Path]) -> None:
    for i in range(40):
        write_image(tmp_path / "many" / f"{i:02d}.png", i, size=8)
    root = str(tmp_path / "many")
    keys = lambda s: [s.key(i) for i in range(len(s))]
    a, b = build(name="image_folder", root=root, subset=10), build(name="image_folder", root=root, subset=10)
    other = build(name="image_folder", root=root, subset=10, subset_seed=1)
    assert len(a) == 10 and keys(a) == keys(b) == sorted(keys(a)) and len(set(keys(a))) == 10
    assert a.targets() is None  # unlabeled: only reading the images would tell
    assert keys(a) != keys(other)
    np.testing.assert_array_equal(a.load(3).image, b.load(3).image)
    with pytest.raises(IndexError):
        a.load(10)
    with pytest.raises(UserError, match=r"dataset 'image_folder': subset=41 is larger than the 40 images"):
        len(build(name="image_folder", root=root, subset=41))


def test_sources_pickle_for_dataloader_workers(class_folder: Path) -> None:
    import pickle

    for source in (
        build("labeled_folder", root=str(class_folder)),
        build("embedded_shapes", num_images=4),
        build("embedded_photos", num_crops=4, photos=["chelsea"]),
    ):
        copy = pickle.loads(pickle.dumps(source))
        np.testing.assert_array_equal(copy.load(1).image, source.load(1).image)
