"""sslreg.features: one-pass extraction, the on-disk cache and its key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sslreg import InputContract, Preprocess, extract_features, feature_cache_key


def test_extract_shapes_targets_independent_of_batching_and_workers(trunk, voc_dataset) -> None:
    dataset = voc_dataset()
    one = extract_features(trunk, dataset, "all", image_size=32, batch_size=1)
    many = extract_features(trunk, dataset, "all", image_size=32, batch_size=5, num_workers=2)
    assert one.features["l1"].shape == (12, 8 * 4 * 4) and one.features["l2"].shape == (12, 16 * 4 * 4)
    np.testing.assert_array_equal(one.targets, dataset.targets())
    assert one.class_names == dataset.class_names and len(one.class_names) == 20 and one.skipped == 0
    for layer in ("l1", "l2"):
        np.testing.assert_allclose(one.features[layer], many.features[layer], rtol=1e-5, atol=1e-6)


def test_all_layers_in_one_pass_and_cache_reused(trunk, voc_dataset, tmp_path: Path) -> None:
    dataset = voc_dataset()
    first = extract_features(trunk, dataset, ["l1"], image_size=32, batch_size=4, cache_dir=tmp_path)
    assert trunk.calls == 3 and first.extracted == ["l1"]  # 12 images / 4 per batch
    again = extract_features(trunk, dataset, ["l1"], image_size=32, batch_size=4, cache_dir=tmp_path)
    assert trunk.calls == 3 and again.extracted == []
    assert isinstance(again.features["l1"], np.memmap)
    np.testing.assert_array_equal(first.features["l1"], again.features["l1"])
    both = extract_features(trunk, dataset, "all", image_size=32, batch_size=4, cache_dir=tmp_path)
    assert trunk.calls == 6 and both.extracted == ["l2"]  # only the missing layer is computed
    fresh = extract_features(trunk, dataset, "all", image_size=32, batch_size=4)
    np.testing.assert_allclose(both.features["l2"], fresh.features["l2"], rtol=1e-6)
    assert not list(both.path.glob("*.tmp")) + list(both.path.glob("*.part"))  # no temp file left behind


def test_cache_key_tracks_weights_config_and_preprocessing(trunk, make_trunk, voc_dataset) -> None:
    dataset = voc_dataset()
    key = feature_cache_key(trunk, dataset, Preprocess(32))
    assert key == feature_cache_key(trunk, voc_dataset(), Preprocess(32))
    assert key != feature_cache_key(trunk, dataset, Preprocess(64))
    assert key != feature_cache_key(trunk, voc_dataset(split="test"), Preprocess(32))
    assert key != feature_cache_key(trunk, dataset, Preprocess(32, InputContract(mean=(0.5,), std=(0.5,))))
    other = make_trunk()
    assert key == feature_cache_key(other, dataset, Preprocess(32))
    with torch.no_grad():
        other.l1[0].weight[0, 0, 0, 0] += 1.0
    assert key != feature_cache_key(other, dataset, Preprocess(32))


def test_unreadable_images_are_skipped_and_counted(trunk, voc_dataset, voc_root: Path, tmp_path: Path) -> None:
    (voc_root / "VOC2007" / "JPEGImages" / "000003.jpg").write_bytes(b"not a jpeg")
    dataset = voc_dataset()
    result = extract_features(trunk, dataset, "all", image_size=32, cache_dir=tmp_path)
    assert result.skipped == 1 and len(result) == 11 and result.targets.shape == (11, 20)
    np.testing.assert_array_equal(result.targets, np.delete(dataset.targets(), 3, axis=0))
    cached = extract_features(trunk, dataset, "all", image_size=32, cache_dir=tmp_path)
    assert cached.skipped == 1 and cached.features["l2"].shape == (11, 256)


def test_colorization_trunk_gets_lightness(make_trunk, voc_dataset) -> None:
    trunk = make_trunk(in_channels=1)
    result = extract_features(trunk, voc_dataset(), "l1", image_size=32)
    assert result.features["l1"].shape == (12, 128)
    assert trunk.last_input.shape[1:] == (1, 32, 32)
    assert -1.0 <= float(trunk.last_input.min()) < 0.0 < float(trunk.last_input.max()) <= 1.0
