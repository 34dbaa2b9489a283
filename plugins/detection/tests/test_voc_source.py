"""voc_detection: the devkit layout, VOC07+12 unions, bad files skipped and counted, a clear line past the limit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sslreg_detection
from sslreg_detection.annotations import BadAnnotation, parse_annotation
from sslreg_detection.voc_detection import VocDetection, VocDetectionConfig

from sslreg import UserError
from sslreg.testing import check_plugin

CLASSES = ["cat", "dog", "car"]  # as in conftest.py


def source(root, split="trainval", **options) -> VocDetection:
    return VocDetection(VocDetectionConfig(root=root if isinstance(root, list) else str(root), split=split,
                                           classes=CLASSES, **options))  # fmt: skip


def test_conformance_kit(devkit: Path, tmp_path: Path):
    demo = {"root": str(tmp_path / "demo"), "num_trainval": 6, "num_test": 3, "size": 48}
    with pytest.warns(UserWarning, match="voc07_detection"):  # the evaluator runs in test_evaluator.py
        entries = check_plugin(
            sslreg_detection,
            dataset_options={
                "voc_detection": {"root": str(devkit), "classes": CLASSES},
                "embedded_detection": [demo, {**demo, "split": "test"}],
            },
        )
    assert {(e.kind, e.name) for e in entries} == {
        ("evaluator", "voc07_detection"), ("dataset", "voc_detection"), ("dataset", "embedded_detection"),
    }  # fmt: skip


def test_reads_boxes_labels_and_flags(devkit: Path):
    data = source(devkit)
    assert len(data) == 4 and data.class_names == CLASSES and data.target_kind == "boxes"
    sample = data.load(0)
    assert sample.key == "VOC2007/000001" and sample.image.shape == (30, 40, 3)
    target = sample.target
    # inclusive 1-based devkit pixels -> continuous: xmin - 1 .. xmax
    np.testing.assert_array_equal(target["boxes"], [[0, 0, 20, 15], [9, 4, 40, 30]])
    assert target["labels"].tolist() == [0, 1]
    assert target["difficult"].tolist() == [False, True] and target["truncated"].tolist() == [False, True]
    empty = data.load(2).target
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,)


def test_union_of_two_devkits(devkit: Path, tmp_path: Path, make_devkit):
    other = make_devkit(tmp_path / "VOC2012", {"2008_000001": [("car", (1, 1, 5, 5), False, False)]})
    data = source([str(devkit), str(other)])
    assert len(data) == 5
    assert [data.key(i) for i in range(len(data))][-2:] == ["VOC2007/000004", "VOC2012/2008_000001"]
    assert data.load(4).target["labels"].tolist() == [2]


def test_subset_is_deterministic(devkit: Path):
    a, b = source(devkit, subset=2, subset_seed=3), source(devkit, subset=2, subset_seed=3)
    assert len(a) == 2 and [a.key(i) for i in range(2)] == [b.key(i) for i in range(2)]


BAD_FILES = {
    "broken": "<annotation><object><name>cat</name>",
    "not_a_number": "<annotation><object><name>cat</name><bndbox><xmin>x</xmin><ymin>1</ymin><xmax>3</xmax>"
    "<ymax>3</ymax></bndbox></object></annotation>",
    "unknown_class": "<annotation><object><name>zebra</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>3</xmax>"
    "<ymax>3</ymax></bndbox></object></annotation>",
    "empty_box": "<annotation><object><name>cat</name><bndbox><xmin>5</xmin><ymin>1</ymin><xmax>3</xmax>"
    "<ymax>3</ymax></bndbox></object></annotation>",
    "no_box": "<annotation><object><name>cat</name></object></annotation>",
    "bad_flag": "<annotation><object><name>cat</name><difficult>yes</difficult><bndbox><xmin>1</xmin><ymin>1</ymin>"
    "<xmax>3</xmax><ymax>3</ymax></bndbox></object></annotation>",
    "entities": '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
    "<annotation><object><name>&lol2;</name></object></annotation>",
    "external": '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    "<annotation><folder>&x;</folder></annotation>",
    "wrong_root": "<html></html>",
}
WHERE = {
    "broken": "not well-formed",
    "not_a_number": "object[1]/bndbox/xmin: not a number: 'x'",
    "unknown_class": "object[1]/name: unknown class 'zebra'",
    "empty_box": "object[1]/bndbox: empty box",
    "no_box": "object[1]/bndbox: missing",
    "bad_flag": "object[1]/difficult: expected 0 or 1",
    "entities": "refused",
    "external": "refused",
    "wrong_root": "html: the root element must be <annotation>",
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_annotation_names_the_element(tmp_path: Path, name: str):
    path = tmp_path / f"{name}.xml"
    path.write_text(BAD_FILES[name])
    with pytest.raises(BadAnnotation) as caught:
        parse_annotation(path, CLASSES)
    assert WHERE[name] in str(caught.value)


def test_bad_files_are_skipped_and_counted_below_the_limit(devkit: Path):
    (devkit / "Annotations" / "000002.xml").write_text(BAD_FILES["not_a_number"])
    (devkit / "JPEGImages" / "000003.jpg").unlink()
    data = source(devkit, max_bad_fraction=0.5)
    assert len(data) == 2 and data.skipped == {"bad_annotation": 1, "missing_image": 1}
    assert data.problems == [
        "VOC2007/Annotations/000002.xml: object[1]/bndbox/xmin: not a number: 'x'",
        "VOC2007/JPEGImages/000003.jpg: file missing",
    ]


def test_past_the_limit_one_line_names_file_and_element(devkit: Path):
    (devkit / "Annotations" / "000002.xml").write_text(BAD_FILES["unknown_class"])
    with pytest.raises(UserError) as caught:
        source(devkit, max_bad_fraction=0.1)
    message = str(caught.value)
    assert "\n" not in message
    assert "1 of 4 images of split 'trainval' unusable (25.0%" in message
    assert "VOC2007/Annotations/000002.xml: object[1]/name: unknown class 'zebra'" in message


def test_check_names_what_is_missing(devkit: Path, tmp_path: Path):
    assert VocDetection.check(VocDetectionConfig(root=str(devkit), classes=CLASSES)) == []
    missing = tmp_path / "nope"
    assert VocDetection.check(VocDetectionConfig(root=str(missing))) == [f"root '{missing}' does not exist"]
    problems = VocDetection.check(VocDetectionConfig(root=[str(devkit), str(devkit)], split="test"))
    assert [p.split(" ")[0] for p in problems] == ["root[0]", "root[1]"]
    assert all("no ImageSets/Main/test.txt" in p for p in problems)
    (devkit / "JPEGImages" / "000001.jpg").unlink()
    [problem] = VocDetection.check(VocDetectionConfig(root=str(devkit)))
    assert "JPEGImages/000001.jpg (the first image of split 'trainval') does not exist" in problem
    with pytest.raises(UserError, match="does not exist"):
        source(missing)
    with pytest.raises(ValueError, match="split must be a plain file stem"):
        VocDetectionConfig(root=str(devkit), split="../x")


def test_unreadable_or_mismatched_image_is_skipped_at_load(devkit: Path):
    (devkit / "JPEGImages" / "000002.jpg").write_bytes(b"\xff\xd8\xff garbage")
    data = source(devkit)
    assert data.load(1) is None and data.bad_images.bad == 1
    (devkit / "Annotations" / "000004.xml").write_text(
        (devkit / "Annotations" / "000004.xml").read_text().replace("<width>40</width>", "<width>41</width>")
    )
    assert source(devkit).load(3) is None
