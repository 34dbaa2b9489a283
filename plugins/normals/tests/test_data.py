"""The normals layout, its reader (nyuv2) and the rendered demo scenes (rendered_normals)."""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest
import sslreg_normals
from sslreg_normals import render
from sslreg_normals.demo import RenderedNormals, RenderedNormalsConfig, dataset_key
from sslreg_normals.layout import decode_normals, encode_normals, valid_mask
from sslreg_normals.nyuv2 import NormalsFolder, NormalsFolderConfig

from sslreg import UserError
from sslreg.testing import check_plugin


def angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles in degrees between (..., 3) vectors, accurate near 0 (arccos of a float32 dot is not)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), np.sum(a * b, axis=-1)))


def test_16_bit_normals_round_trip_within_a_hundredth_of_a_degree():
    rng = np.random.default_rng(0)
    normals = rng.normal(size=(50, 60, 3))
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    normals[0, 0] = (0.0, 0.0, 1.0)
    back = decode_normals(encode_normals(normals))
    assert angles(back, normals).max() < 0.01
    assert np.allclose(np.linalg.norm(back, axis=-1), 1.0, atol=1e-6)


def test_reader_serves_what_was_written(tmp_path, make_folder):
    written = make_folder(tmp_path, {"train": 3, "test": 2})
    source = NormalsFolder(NormalsFolderConfig(root=str(tmp_path), split="test"))
    assert len(source) == 2 and source.target_kind == "normals"
    for index in range(2):
        sample = source.load(index)
        rgb, normals, valid = written[sample.key]
        assert np.array_equal(sample.image, rgb)
        assert sample.target.dtype == np.float32 and sample.target.shape == (*rgb.shape[:2], 3)
        assert np.array_equal(valid_mask(sample.target), valid)
        assert angles(sample.target[valid], normals[valid]).max() < 0.01
        assert not sample.target[~valid].any()


def test_conformance_kit_on_both_sources(tmp_path, make_folder):
    make_folder(tmp_path / "data", {"train": 4, "test": 3})
    tiny = {"num_train": 4, "num_test": 3, "size": 24, "cache": str(tmp_path / "demo")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the evaluator is checked in test_evaluator.py with its own data
        check_plugin(
            sslreg_normals,
            dataset_options={
                "nyuv2": [{"root": str(tmp_path / "data"), "split": s} for s in ("train", "test")],
                "rendered_normals": [{**tiny, "split": s} for s in ("train", "test")],
            },
        )


def test_unreadable_samples_are_skipped_and_counted_then_stop(tmp_path, make_folder):
    make_folder(tmp_path, {"train": 10, "test": 1})
    (tmp_path / "normals" / "train001.png").write_bytes((tmp_path / "normals" / "train001.png").read_bytes()[:100])
    (tmp_path / "mask" / "train002.png").unlink()
    (tmp_path / "rgb" / "train003.png").write_bytes(b"not an image")
    config = NormalsFolderConfig(root=str(tmp_path), split="train", bad_check_after=1, max_bad_fraction=0.8)
    source = NormalsFolder(config)
    loaded = [source.load(i) for i in range(4)]
    assert loaded[0] is not None and loaded[1:] == [None, None, None]
    assert source.bad_images.bad == 3
    reasons = " ".join(reason for _, reason in source.bad_images.examples)
    assert "truncated PNG" in reasons and "cannot read" in reasons and "not a decodable image" in reasons
    strict = NormalsFolder(config.model_copy(update={"max_bad_fraction": 0.1}))
    strict.load(0)
    with pytest.raises(UserError, match=r"1 of 2 images unreadable") as caught:
        strict.load(1)
    assert "\n" not in str(caught.value)


def test_mismatched_sizes_are_a_bad_sample(tmp_path, make_folder):
    make_folder(tmp_path, {"train": 1, "test": 1})
    other = make_folder(tmp_path / "other", {"train": 1}, size=(10, 16))
    assert other
    (tmp_path / "mask" / "train000.png").write_bytes((tmp_path / "other" / "mask" / "train000.png").read_bytes())
    source = NormalsFolder(NormalsFolderConfig(root=str(tmp_path), split="train"))
    assert source.load(0) is None and "sizes differ" in source.bad_images.examples[0][1]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda root, write: None, "root '.*' does not exist"),
        (lambda root, write: root.mkdir(), "rgb' does not exist.*normals' does not exist.*train.txt"),
        (lambda root, write: write(root, {"test": 1}), "train.txt' does not exist"),
    ],
)
def test_check_names_what_is_missing(tmp_path, make_folder, setup, message):
    root = tmp_path / "nyu"
    setup(root, make_folder)
    config = NormalsFolderConfig(root=str(root), split="train")
    assert NormalsFolder.check(config)
    with pytest.raises(UserError, match=message):
        NormalsFolder(config)


def test_rendered_scenes_are_deterministic_with_unit_normals():
    for index in range(6):
        rgb, normals, valid = render.render_scene(np.random.default_rng([7, index]), 48)
        assert rgb.dtype == np.uint8 and rgb.shape == (48, 48, 3) and rgb.std() > 5
        assert np.allclose(np.linalg.norm(normals, axis=-1), 1.0, atol=1e-5)
        assert 0.3 < valid.mean() <= 1.0
    a = render.render_scene(np.random.default_rng([1, 2]), 32)
    b = render.render_scene(np.random.default_rng([1, 2]), 32)
    c = render.render_scene(np.random.default_rng([1, 3]), 32)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])


def rays(*directions):
    dirs = np.array(directions, np.float32)
    return dirs / np.linalg.norm(dirs, axis=1, keepdims=True)


def test_analytic_intersections_and_normals():
    origin = np.zeros(3, np.float32)
    hits = render.Hits.empty(3)
    render.room(hits, origin + [0, 1, 0], rays([1, 0, 0], [0, -1, 0], [0, 0, -1]), np.float32([2, 3]), 2.5)
    assert hits.t.tolist() == pytest.approx([2.0, 1.0, 3.0])
    assert hits.normal.tolist() == [[-1, 0, 0], [0, 1, 0], [0, 0, 1]]

    hits = render.Hits.empty(2)
    render.sphere(hits, origin, rays([0, 0, -1], [0, 1, -2]), np.float32([0, 0, -5]), 1.0, 0)
    assert hits.t[0] == pytest.approx(4.0) and hits.normal[0].tolist() == pytest.approx([0, 0, 1])
    assert math.isinf(hits.t[1])

    hits = render.Hits.empty(2)  # the box's front face; then turned 90 degrees, its narrow side is in front
    render.box(hits, origin, rays([0, 0, -1], [0.3, 0, -1]), np.float32([0, 0, -4]), np.float32([1, 1, 0.5]), 0.0, 0)
    assert hits.t[0] == pytest.approx(3.5) and hits.normal[0].tolist() == pytest.approx([0, 0, 1])
    turned = render.Hits.empty(1)
    render.box(turned, origin, rays([0, 0, -1]), np.float32([0, 0, -4]), np.float32([1, 1, 0.5]), math.pi / 2, 0)
    assert turned.t[0] == pytest.approx(3.0) and turned.normal[0].tolist() == pytest.approx([0, 0, 1], abs=1e-6)

    hits = render.Hits.empty(1)  # side from the front, cap from above
    start = np.float32([0, 0.5, 3])
    render.cylinder(hits, start, rays([0, 0, -1]), np.float32([0, 0, 0]), 1.0, 1.0, 0)
    assert hits.t[0] == pytest.approx(2.0) and hits.normal[0].tolist() == pytest.approx([0, 0, 1])
    above = render.Hits.empty(1)
    render.cylinder(above, np.float32([0.2, 3, 0]), rays([0, -1, 0]), np.float32([0, 0, 0]), 1.0, 1.0, 0)
    assert above.t[0] == pytest.approx(2.0) and above.normal[0].tolist() == [0, 1, 0]


def test_demo_is_generated_once_into_the_cache(private_cache):
    config = RenderedNormalsConfig(split="test", num_train=3, num_test=2, size=20, seed=5)
    source = RenderedNormals(config)
    folder = private_cache / "normals_demo" / dataset_key(config)
    assert source.root == folder and len(source) == 2 and source.load(0).key == "test_00000"
    stamp = os.stat(folder / "normals" / "test_00001.png").st_mtime_ns
    again = RenderedNormals(config.model_copy(update={"split": "train"}))
    assert len(again) == 3 and os.stat(folder / "normals" / "test_00001.png").st_mtime_ns == stamp
    assert not [p for p in folder.parent.iterdir() if p.name.endswith(".part")]
    sample = source.load(1)
    expected = render.render_scene(np.random.default_rng([5, 1, 1]), 20)
    assert np.array_equal(sample.image, expected[0])
    assert angles(sample.target[expected[2]], expected[1][expected[2]]).max() < 0.01
