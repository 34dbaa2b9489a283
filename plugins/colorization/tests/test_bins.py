"""The in-gamut ab bins: count, grid, cache."""

import numpy as np
import pytest
from sslreg_colorization import bins as bins_module
from sslreg_colorization.bins import (
    compute_gamut_bins,
    effective_k,
    gamut_bins,
    gamut_cache_path,
)
from sslreg_colorization.lab import rgb_to_lab


def test_q_is_262_for_the_srgb_gamut(gamut_dir):
    bins = gamut_bins(gamut_dir)
    # 262, not Zhang et al.'s 313: see the bins module docstring. Same bounding box as pts_in_hull.npy.
    assert bins.shape == (262, 2)
    assert bins[:, 0].min() == -90 and bins[:, 0].max() == 100
    assert bins[:, 1].min() == -110 and bins[:, 1].max() == 90
    assert np.all(bins % 10 == 0)
    assert len(np.unique(bins, axis=0)) == len(bins)


def test_every_srgb_colour_is_near_a_bin(gamut_dir):
    bins = gamut_bins(gamut_dir)
    rgb = np.random.default_rng(0).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    ab = rgb_to_lab(rgb)[..., 1:].reshape(-1, 2)
    distance = np.sqrt(((ab[:, None] - bins[None]) ** 2).sum(-1)).min(1)
    assert distance.max() <= 5 * np.sqrt(2) + 1e-4  # within its own grid cell


def test_coarse_sampling_gives_a_subset():
    coarse = {tuple(b) for b in compute_gamut_bins(levels=16)}
    assert 150 < len(coarse) < 262


def test_cache_is_written_and_reused(tmp_path, gamut_dir, monkeypatch):
    target = gamut_cache_path(tmp_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(gamut_cache_path(gamut_dir).read_bytes())
    bins_module._load_or_compute.cache_clear()

    def boom(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(bins_module, "compute_gamut_bins", boom)
    np.testing.assert_array_equal(gamut_bins(tmp_path), gamut_bins(gamut_dir))
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary files left behind


def test_default_cache_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SSLREG_CACHE", str(tmp_path))
    assert gamut_cache_path().parent == tmp_path / "colorization"


def test_effective_k():
    assert effective_k(10, 262) == 10
    assert effective_k(313, 262) == 262
    with pytest.raises(ValueError, match="num_neighbors"):
        effective_k(0, 262)
