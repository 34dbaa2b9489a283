"""embedded_detection: deterministic, exact boxes, difficult and truncated instances, the VOC layout on disk."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from sslreg_detection import demo
from sslreg_detection.annotations import parse_annotation
from sslreg_detection.demo import DEMO_CLASSES, EmbeddedDetection, EmbeddedDetectionConfig, draw_image
from sslreg_detection.voc_detection import VocDetection, VocDetectionConfig

from sslreg import UserError

SMALL = {"num_trainval": 16, "num_test": 8, "size": 64}


def test_written_as_a_devkit_and_read_by_the_voc_reader(tmp_path: Path):
    root = tmp_path / "demo"
    data = EmbeddedDetection(EmbeddedDetectionConfig(root=str(root), **SMALL))
    assert isinstance(data, VocDetection) and len(data) == 16 and data.skipped == {"bad_annotation": 0,
                                                                                  "missing_image": 0}  # fmt: skip
    assert (root / "ImageSets/Main/test.txt").read_text().split() == [f"{i:06d}" for i in range(16, 24)]
    assert len((root / "ImageSets/Main/train.txt").read_text().split()) == 8
    plain = VocDetection(VocDetectionConfig(root=str(root), split="test", classes=list(DEMO_CLASSES)))
    test = EmbeddedDetection(EmbeddedDetectionConfig(root=str(root), split="test", **SMALL))
    assert len(plain) == len(test) == 8
    for index in range(8):
        a, b = plain.load(index), test.load(index)
        assert a.key == b.key and np.array_equal(a.image, b.image)
        assert a.target.keys() == b.target.keys()
        assert all(np.array_equal(a.target[k], b.target[k]) for k in a.target)
    image = data.load(0).image
    assert min(image.shape[:2]) == 64 and max(image.shape[:2]) <= 96


def test_same_options_same_files_and_a_cache_folder_per_options(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SSLREG_CACHE", str(tmp_path / "cache"))
    one = EmbeddedDetection(EmbeddedDetectionConfig(**SMALL))
    two = EmbeddedDetection(EmbeddedDetectionConfig(root=str(tmp_path / "elsewhere"), **SMALL))
    for name in ("Annotations/000003.xml", "JPEGImages/000003.jpg", "ImageSets/Main/trainval.txt"):
        assert (one.devkit_roots()[0] / name).read_bytes() == (two.devkit_roots()[0] / name).read_bytes()
    other = EmbeddedDetection(EmbeddedDetectionConfig(**{**SMALL, "seed": 1}))
    assert other.devkit_roots()[0] != one.devkit_roots()[0]
    assert other.devkit_roots()[0].parent == tmp_path / "cache" / "embedded_detection"
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(UserError, match="exists and is not a demo set"):
        EmbeddedDetection(EmbeddedDetectionConfig(root=str(tmp_path / "taken"), **SMALL))
    with pytest.raises(UserError, match="made with other options"):
        EmbeddedDetection(EmbeddedDetectionConfig(root=str(tmp_path / "elsewhere"), **{**SMALL, "seed": 1}))


def test_statistics_of_the_set(tmp_path: Path):
    config = EmbeddedDetectionConfig(root=str(tmp_path / "d"), num_trainval=60, num_test=1, size=64)
    objects = [o for index in range(60) for o in draw_image(config, index)[1]]
    classes = Counter(name for name, *_ in objects)
    assert set(classes) == set(DEMO_CLASSES) and min(classes.values()) >= 10
    difficult = sum(hard for *_, hard, _ in objects)
    truncated = sum(cut for *_, cut in objects)
    assert 0.02 * len(objects) < difficult < 0.5 * len(objects)
    assert 0.05 * len(objects) < truncated < 0.8 * len(objects)


def test_boxes_are_the_exact_extent_of_the_visible_object(tmp_path: Path, monkeypatch):
    black = np.zeros((200, 200, 3), np.uint8)
    monkeypatch.setattr(demo, "photo", lambda name: black)  # black backgrounds and black textures
    config = EmbeddedDetectionConfig(root=str(tmp_path / "d"), num_trainval=60, num_test=1, size=64, max_objects=1)
    checked = 0
    for index in range(60):
        image, objects = draw_image(config, index)
        lit = np.nonzero(image.max(axis=2) > 40)
        if not objects or len(lit[0]) < 20:
            continue  # a black-textured object: invisible here
        [(_, (xmin, ymin, xmax, ymax), _, _)] = objects
        extent = (lit[1].min() + 1, lit[0].min() + 1, lit[1].max() + 1, lit[0].max() + 1)
        assert np.abs(np.subtract((xmin, ymin, xmax, ymax), extent)).max() <= 1, (index, objects, extent)
        checked += 1
    assert checked >= 15


def test_the_xml_round_trip(tmp_path: Path):
    data = EmbeddedDetection(EmbeddedDetectionConfig(root=str(tmp_path / "d"), **SMALL))
    image, objects = draw_image(data.config, 5)
    parsed = parse_annotation(tmp_path / "d" / "Annotations" / "000005.xml", DEMO_CLASSES)
    assert parsed.width == image.shape[1] and parsed.height == image.shape[0]
    assert [DEMO_CLASSES[i] for i in parsed.labels] == [name for name, *_ in objects]
    np.testing.assert_array_equal(parsed.boxes, [[x1 - 1, y1 - 1, x2, y2] for _, (x1, y1, x2, y2), _, _ in objects])
    assert parsed.difficult.tolist() == [hard for *_, hard, _ in objects]
