"""Permutation sets: Algorithm 1 of Noroozi & Favaro, its running-sum speed-up, statistics and the cache."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from sslreg_jigsaw import permutations as P


def reference_greedy(n: int, seed: int, method: str, num_tiles: int) -> np.ndarray:
    """The reference script's quadratic loop: recompute all distances to the chosen set at every step."""
    candidates = P.all_permutations(num_tiles).astype(np.int64)
    chosen = [int(np.random.default_rng(seed).integers(len(candidates)))]
    for _ in range(n - 1):
        distances = (candidates[:, None, :] != candidates[chosen][None, :, :]).sum(axis=2)
        score = distances.mean(axis=1) if method == "max_avg" else distances.min(axis=1).astype(float)
        score[chosen] = -1
        chosen.append(int(np.argmax(score)))
    return candidates[chosen].astype(np.uint8)


def pairwise(perms: np.ndarray) -> np.ndarray:
    distances = (perms[:, None, :] != perms[None, :, :]).sum(axis=2)
    return distances[~np.eye(len(perms), dtype=bool)]


def test_all_permutations_are_the_full_lexicographic_space() -> None:
    perms = P.all_permutations(9)
    assert perms.shape == (math.factorial(9), 9) and perms.dtype == np.uint8
    assert perms[0].tolist() == list(range(9)) and perms[-1].tolist() == list(range(8, -1, -1))
    codes = perms.astype(np.int64) @ (9 ** np.arange(8, -1, -1))
    assert (np.diff(codes) > 0).all()  # strictly increasing base-9 codes: lexicographic and distinct
    assert (np.sort(perms, axis=1) == np.arange(9)).all()


@pytest.mark.parametrize("method", ["max_avg", "max_min"])
@pytest.mark.parametrize("num_tiles,n", [(4, 12), (5, 40), (6, 25)])
def test_running_version_matches_the_quadratic_reference(method: str, num_tiles: int, n: int) -> None:
    ours = P.generate_permutations(n, seed=3, method=method, num_tiles=num_tiles)
    np.testing.assert_array_equal(ours, reference_greedy(n, 3, method, num_tiles))


@pytest.mark.parametrize("method", ["max_avg", "max_min"])
def test_permutations_unique_valid_and_stats_as_reported(method: str) -> None:
    perms = P.generate_permutations(200, seed=1, method=method)
    assert perms.shape == (200, 9) and perms.dtype == np.uint8
    assert (np.sort(perms, axis=1) == np.arange(9)).all()
    assert len(np.unique(perms, axis=0)) == 200
    stats = P.hamming_stats(perms)
    distances = pairwise(perms)
    assert stats.minimum == distances.min()
    assert stats.mean == pytest.approx(distances.mean(), abs=1e-9)


def test_max_min_beats_max_avg_on_minimum_distance() -> None:
    avg = P.hamming_stats(P.generate_permutations(200, seed=0, method="max_avg"))
    low = P.hamming_stats(P.generate_permutations(200, seed=0, method="max_min"))
    assert low.minimum > avg.minimum
    assert avg.mean >= low.mean


def test_deterministic_for_a_seed_and_nested_across_sizes() -> None:
    first = P.generate_permutations(60, seed=7)
    np.testing.assert_array_equal(first, P.generate_permutations(60, seed=7))
    assert not np.array_equal(first, P.generate_permutations(60, seed=8))
    np.testing.assert_array_equal(P.generate_permutations(150, seed=7)[:60], first)


def test_first_permutation_comes_from_the_seeded_rng() -> None:
    index = np.random.default_rng(11).integers(math.factorial(9))
    np.testing.assert_array_equal(P.generate_permutations(2, seed=11)[0], P.all_permutations(9)[index])


def test_hamming_stats_small_case_by_hand() -> None:
    perms = np.array([[0, 1, 2], [1, 0, 2], [2, 0, 1]], dtype=np.uint8)  # distances 2, 3, 2
    stats = P.hamming_stats(perms, chunk=2)
    assert stats.minimum == 2 and stats.mean == pytest.approx(7 / 3)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="method"):
        P.generate_permutations(10, method="max_sum")
    with pytest.raises(ValueError, match=r"num_permutations must be in 1\.\.362880"):
        P.generate_permutations(362881)
    with pytest.raises(ValueError, match="at least 2"):
        P.hamming_stats(P.generate_permutations(1))


def test_cache_hit_returns_the_same_array(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    perms, hit = P.load_permutations(50, seed=2, method="max_min", cache_dir=tmp_path)
    assert not hit
    path = P.cache_path(tmp_path, 50, 2, "max_min")
    assert path.is_file() and [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("cache hit must not regenerate")

    monkeypatch.setattr(P, "generate_permutations", fail)
    again, hit = P.load_permutations(50, seed=2, method="max_min", cache_dir=tmp_path)
    assert hit
    np.testing.assert_array_equal(again, perms)


def test_cache_is_keyed_by_size_seed_and_method(tmp_path: Path) -> None:
    P.load_permutations(20, seed=0, method="max_avg", cache_dir=tmp_path)
    for n, seed, method in [(21, 0, "max_avg"), (20, 1, "max_avg"), (20, 0, "max_min")]:
        assert not P.load_permutations(n, seed=seed, method=method, cache_dir=tmp_path)[1]
    assert len(list(tmp_path.glob("*.npy"))) == 4


def test_corrupt_cache_file_is_regenerated(tmp_path: Path) -> None:
    perms, _ = P.load_permutations(30, cache_dir=tmp_path)
    path = P.cache_path(tmp_path, 30, 0, "max_avg")
    path.write_bytes(b"not an npy file")
    again, hit = P.load_permutations(30, cache_dir=tmp_path)
    assert not hit
    np.testing.assert_array_equal(again, perms)
    np.save(path, np.zeros((30, 9), dtype=np.uint8))  # readable but not permutations
    assert not P.load_permutations(30, cache_dir=tmp_path)[1]


def test_default_cache_dir_follows_sslreg_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSLREG_CACHE", str(tmp_path))
    assert P.default_cache_dir() == tmp_path / "jigsaw"
    P.load_permutations(10)
    assert P.cache_path(tmp_path / "jigsaw", 10, 0, "max_avg").is_file()
    monkeypatch.delenv("SSLREG_CACHE")
    assert P.default_cache_dir() == Path(os.path.expanduser("~")) / ".cache" / "sslreg" / "jigsaw"


def test_unwritable_cache_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match="permutation cache"):
        P.load_permutations(5, cache_dir=blocker / "sub")
