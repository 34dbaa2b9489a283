"""embedded_photos and embedded_shapes: deterministic, right sizes and counts, exact labels, splits differ."""

from __future__ import annotations

import numpy as np
import pytest
from sslreg_datasets.embedded_photos import GRAYSCALE, PHOTOS, EmbeddedPhotos, EmbeddedPhotosConfig
from sslreg_datasets.embedded_shapes import (
    CLASSES,
    EmbeddedShapes,
    EmbeddedShapesConfig,
    ShapeObject,
    draw,
    labels,
)


def photos(**options: object) -> EmbeddedPhotos:
    return EmbeddedPhotos(EmbeddedPhotosConfig(**options))


def shapes(**options: object) -> EmbeddedShapes:
    return EmbeddedShapes(EmbeddedShapesConfig(**options))


def test_photos_count_size_and_determinism() -> None:
    source = photos(num_crops=30, crop_size=40)
    assert len(source) == 30
    first = [source.load(i) for i in range(len(source.photos) + 2)]
    again = photos(num_crops=30, crop_size=40)
    for index, sample in enumerate(first):
        assert sample.image.shape == (40, 40, 3) and sample.image.dtype == np.uint8 and sample.target is None
        np.testing.assert_array_equal(sample.image, again.load(index).image)
    assert len({s.key.split("/")[0] for s in first}) == len(PHOTOS)  # every photo is used
    assert not np.array_equal(first[0].image, photos(num_crops=30, crop_size=40, seed=1).load(0).image)


def test_photos_options() -> None:
    colour = photos(include_grayscale=False)
    assert not set(colour.photos) & set(GRAYSCALE)
    assert photos(photos=["china"]).load(5).key == "china/5"
    with pytest.raises(ValueError, match="unknown photos"):
        EmbeddedPhotosConfig(photos=["nope"])
    with pytest.raises(ValueError, match="larger than the 10 images"):
        len(photos(num_crops=10, subset=11))
    assert len(photos(num_crops=10, subset=4)) == 4


def test_shapes_labels_of_a_known_scene() -> None:
    size = 64
    background = np.full((size, size, 3), 128.0, np.float32)
    objects = [
        ShapeObject("circle", 20, 20, 12, 0.0, (255, 0, 0)),
        ShapeObject("square", 46, 46, 10, 0.3, (0, 0, 255)),
        ShapeObject("star", 46, 46, 4, 0.0, (0, 255, 0)),  # tiny: difficult
    ]
    image, visible, areas = draw(background, objects)
    assert tuple(image[20, 20]) == (255, 0, 0) and tuple(image[5, 60]) == (128, 128, 128)
    assert visible[0] == pytest.approx(1.0) and visible[1] < 1.0
    assert areas[0] == pytest.approx(np.pi * 12**2, rel=0.05)
    target = labels(objects, visible, areas, size, min_visible=0.5, min_area=0.01)
    expected = np.full(len(CLASSES), -1, np.int8)
    expected[[CLASSES.index("circle"), CLASSES.index("square")]] = 1
    expected[CLASSES.index("star")] = 0
    np.testing.assert_array_equal(target, expected)
    # a second circle drawn right on top of the square hides it: the square becomes difficult
    hidden = objects[:2] + [ShapeObject("circle", 46, 46, 14, 0.0, (0, 255, 0))]
    image, visible, areas = draw(background, hidden)
    assert labels(hidden, visible, areas, size, 0.5, 0.01)[CLASSES.index("square")] == 0


def test_shapes_samples_match_their_objects_and_splits_differ() -> None:
    train, test = shapes(num_images=20), shapes(num_images=20, split="test")
    assert train.class_names == list(CLASSES) and train.target_kind == "multilabel"
    for index in range(20):
        sample = train.load(index)
        image, target, objects = train.render(index)
        np.testing.assert_array_equal(sample.image, image)
        assert sample.image.shape == (64, 64, 3) and sample.target.dtype == np.int8
        drawn = {CLASSES.index(o.cls) for o in objects}
        assert set(np.flatnonzero(sample.target >= 0)) == drawn  # present or difficult exactly where drawn
        assert 1 <= len(objects) <= 3 and len(drawn) == len(objects)
    again = shapes(num_images=20)
    assert all(np.array_equal(train.load(i).image, again.load(i).image) for i in range(5))
    assert not any(np.array_equal(train.load(i).image, test.load(i).image) for i in range(5))
    assert train.load(3).key == "train/0000003" and test.load(3).key == "test/0000003"


def test_shapes_size_option_and_errors() -> None:
    assert shapes(size=96, num_images=3).load(2).image.shape == (96, 96, 3)
    with pytest.raises(ValueError, match="min_objects"):
        EmbeddedShapesConfig(min_objects=3, max_objects=2)
