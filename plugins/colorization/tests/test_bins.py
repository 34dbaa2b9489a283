"""The ab bin sets: Zhang et al.'s 313 (the default, as documented) and the 262 that sRGB reaches; cache."""

import re
from pathlib import Path

import numpy as np
import pytest
from sslreg_colorization import bins as bins_module
from sslreg_colorization.bins import (
    compute_gamut_bins,
    effective_k,
    gamut_bins,
    gamut_cache_path,
    load_bins,
    zhang_bins,
)
from sslreg_colorization.lab import rgb_to_lab

PROTOCOL = Path(__file__).resolve().parents[3] / "docs" / "protocol.md"


def documented_313() -> list[tuple[int, int]]:
    """The 313 centres as docs/protocol.md#colorization lists them: (a, b range) cells of its table."""
    text = PROTOCOL.read_text().replace("\u2212", "-")
    ranges = {}
    for line in text.splitlines():
        if re.fullmatch(r"\s*\|(\s*-?\d+\s*\|\s*-?\d+…-?\d+\s*\|)+", line):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            for a, span in zip(cells[::2], cells[1::2]):
                low, high = span.split("…")
                ranges[int(a)] = (int(low), int(high))
    return [(a, b) for a in sorted(ranges) for b in range(ranges[a][0], ranges[a][1] + 10, 10)]


def test_default_set_is_zhangs_313_exactly_as_documented():
    bins = zhang_bins()
    assert bins.shape == (313, 2) and bins.dtype == np.float32
    assert [tuple(map(int, centre)) for centre in bins] == documented_313()  # same centres, same order
    assert [tuple(map(int, centre)) for centre in bins[:2]] == [(-90, 50), (-90, 60)]
    assert bins[:, 0].min() == -90 and bins[:, 0].max() == 100
    assert bins[:, 1].min() == -110 and bins[:, 1].max() == 100  # b reaches +100 (the 262 stop at +90)
    np.testing.assert_array_equal(load_bins("zhang313"), bins)
    with pytest.raises(ValueError, match="unknown bin set"):
        load_bins("zhang314")


def test_srgb_bins_are_262_of_the_313_and_the_rest_is_a_ring_at_the_gamut_edge(gamut_dir):
    zhang = {tuple(map(int, centre)) for centre in zhang_bins()}
    srgb = {tuple(map(int, centre)) for centre in load_bins("srgb262", gamut_dir)}
    assert len(srgb) == 262 and srgb < zhang
    ring = zhang - srgb
    assert len(ring) == 51
    steps = [(10, 0), (-10, 0), (0, 10), (0, -10)]
    assert all(any((a + da, b + db) in srgb for da, db in steps) for a, b in ring)  # each touches the gamut


def test_q_is_262_for_the_srgb_gamut(gamut_dir):
    bins = gamut_bins(gamut_dir)
    # the sRGB-reachable bins: inside the 313's box (a in [-90, 100], b in [-110, 100]), b only up to +90
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
    assert effective_k(313, 313) == 313
    with pytest.raises(ValueError, match="num_neighbors"):
        effective_k(0, 262)
