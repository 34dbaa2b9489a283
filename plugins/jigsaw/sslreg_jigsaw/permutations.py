"""Jigsaw permutation sets chosen greedily by Hamming distance (Noroozi & Favaro 2016, Algorithm 1).

The reference script recomputes the distances from every candidate to the whole chosen set at every
step, which is quadratic in |P|. Here each step only adds the distances to the newest permutation to a
running sum (``max_avg``) or running minimum (``max_min``), so generating |P| permutations costs
|P| vectorised passes over the k! candidates: |P| = 10,000 of 9! takes seconds, not hours.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from sslreg import UserError, atomic_open, cache_dir

Method = Literal["max_avg", "max_min"]
METHODS: tuple[str, ...] = ("max_avg", "max_min")
#: Largest number of tiles whose full permutation space we enumerate (10! = 3.6M candidates).
MAX_TILES = 10


@lru_cache(maxsize=2)
def all_permutations(num_tiles: int = 9) -> np.ndarray:
    """Every permutation of ``range(num_tiles)`` in lexicographic order, as a (k!, k) uint8 array."""
    if not 2 <= num_tiles <= MAX_TILES:
        raise ValueError(f"num_tiles must be in 2..{MAX_TILES}, got {num_tiles}")
    flat = itertools.chain.from_iterable(itertools.permutations(range(num_tiles)))
    perms = np.fromiter(flat, dtype=np.uint8, count=math.factorial(num_tiles) * num_tiles)
    perms = perms.reshape(-1, num_tiles)
    perms.setflags(write=False)
    return perms


@lru_cache(maxsize=2)
def _one_hot_rows(num_tiles: int) -> np.ndarray:
    """(k*k, k!) uint8: row ``pos*k + val`` marks the candidates with ``val`` at position ``pos``."""
    perms = all_permutations(num_tiles)
    rows = np.zeros((num_tiles * num_tiles, len(perms)), dtype=np.uint8)
    for pos in range(num_tiles):
        rows[pos * num_tiles + perms[:, pos].astype(np.intp), np.arange(len(perms))] = 1
    rows.setflags(write=False)
    return rows


def generate_permutations(
    num_permutations: int, seed: int = 0, method: Method = "max_avg", num_tiles: int = 9
) -> np.ndarray:
    """Choose ``num_permutations`` distinct permutations of ``num_tiles`` tiles by maximal Hamming distance.

    The first is drawn uniformly at random from ``np.random.default_rng(seed)``; every next one is the
    candidate with the largest mean (``max_avg``) or largest minimum (``max_min``) Hamming distance to
    those already chosen, ties going to the lexicographically first. Returns a (|P|, k) uint8 array.
    Greedy, hence nested: the set for n is the first n rows of the set for any larger n (same seed, method).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    total = math.factorial(num_tiles)
    if not 1 <= num_permutations <= total:
        raise ValueError(f"num_permutations must be in 1..{total} ({num_tiles}!), got {num_permutations}")
    perms = all_permutations(num_tiles)
    rows = _one_hot_rows(num_tiles)
    offsets = np.arange(num_tiles) * num_tiles
    # Score to minimise per candidate: the running SUM of matching positions (max_avg: fewest matches on
    # average = largest mean distance) or the running MAX of matches (max_min: largest minimum distance).
    taken = np.int32(2**30) if method == "max_avg" else np.int32(num_tiles + 1)
    score = np.zeros(total, dtype=np.int32)
    matches = np.empty(total, dtype=np.uint8)
    chosen = np.empty(num_permutations, dtype=np.int64)
    chosen[0] = np.random.default_rng(seed).integers(total)
    for step in range(1, num_permutations):
        newest = perms[chosen[step - 1]]
        # Positions where each candidate agrees with the newest permutation: sum of k one-hot rows.
        picked = offsets + newest
        np.copyto(matches, rows[picked[0]])
        for row in picked[1:]:
            matches += rows[row]
        if method == "max_avg":
            score += matches
        else:
            np.maximum(score, matches, out=score)
        score[chosen[step - 1]] = taken  # never chosen twice: its score only grows (sum) or stays (max)
        chosen[step] = int(np.argmin(score))
    return perms[chosen].copy()


@dataclass(frozen=True)
class HammingStats:
    """Minimum and mean Hamming distance over all pairs of a permutation set."""

    minimum: int
    mean: float

    def __str__(self) -> str:
        return f"Hamming distance min {self.minimum}, mean {self.mean:.3f}"


def hamming_stats(perms: np.ndarray, chunk: int = 2048) -> HammingStats:
    """Minimum and mean pairwise Hamming distance of a (n, k) permutation set (n >= 2).

    The mean comes in O(n) from per-(position, value) counts; the minimum from chunked one-hot products.
    """
    perms = np.asarray(perms)
    n, k = perms.shape
    if n < 2:
        raise ValueError(f"need at least 2 permutations for pairwise distances, got {n}")
    one_hot = np.zeros((n, k * k), dtype=np.float32)
    one_hot[np.arange(n)[:, None], np.arange(k) * k + perms.astype(np.intp)] = 1.0
    counts = one_hot.sum(axis=0, dtype=np.float64)
    pair_matches = float((counts * (counts - 1)).sum())  # ordered pairs i != j agreeing at one position
    mean = k - pair_matches / (n * (n - 1))
    most = 0
    for start in range(0, n, chunk):
        block = one_hot[start : start + chunk] @ one_hot.T
        block[np.arange(len(block)), np.arange(start, start + len(block))] = -1  # skip self-pairs
        most = max(most, int(block.max()))
    return HammingStats(minimum=k - most, mean=mean)


def default_cache_dir() -> Path:
    """``$SSLREG_CACHE/jigsaw`` if set, else ``~/.cache/sslreg/jigsaw``."""
    return cache_dir("jigsaw")


def cache_path(cache_dir: Path, num_permutations: int, seed: int, method: str, num_tiles: int = 9) -> Path:
    """File of one cached set, keyed by (|P|, seed, method) and the number of tiles."""
    return Path(cache_dir) / f"perms_k{num_tiles}_{method}_n{num_permutations}_seed{seed}.npy"


def _valid(array: np.ndarray, num_permutations: int, num_tiles: int) -> bool:
    return (
        array.dtype == np.uint8
        and array.shape == (num_permutations, num_tiles)
        and bool((np.sort(array, axis=1) == np.arange(num_tiles)).all())
    )


def _save_atomic(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as .npy through a temporary file and os.replace, so readers never see half a file."""
    with atomic_open(path, "wb") as stream:
        np.save(stream, array)


def load_permutations(
    num_permutations: int,
    seed: int = 0,
    method: Method = "max_avg",
    cache_dir: str | Path | None = None,
    num_tiles: int = 9,
) -> tuple[np.ndarray, bool]:
    """The permutation set for (|P|, seed, method) from the cache, generating and caching it on a miss.

    Returns (perms, cache_hit). An unreadable or malformed cache file is regenerated, never trusted.
    """
    directory = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = cache_path(directory, num_permutations, seed, method, num_tiles)
    if path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            cached = None
        if cached is not None and _valid(cached, num_permutations, num_tiles):
            return cached, True
    perms = generate_permutations(num_permutations, seed=seed, method=method, num_tiles=num_tiles)
    try:
        _save_atomic(path, perms)
    except OSError as error:
        raise OSError(f"jigsaw: cannot write the permutation cache {path}: {error}") from error
    return perms, False


def read_permutation_file(path: str | Path, num_tiles: int = 9) -> np.ndarray:
    """A published permutation set (a ``.npy`` array of shape (|P|, num_tiles)) as (|P|, num_tiles) uint8, 0-indexed.

    Files whose smallest entry is 1 are 1-indexed (the published sets are, as VISSL reads them) and are shifted
    to 0-indexed. Every row must be a permutation of the tiles and no row may repeat; anything else is a
    UserError naming the file.
    """
    shown = str(path)
    try:
        array = np.load(Path(path).expanduser(), allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"perm_file: {shown!r} does not exist") from None
    except (OSError, ValueError) as error:
        raise UserError(f"perm_file: {shown!r} is not a readable .npy array ({error})") from None
    if array.ndim != 2 or array.shape[1] != num_tiles or len(array) < 1:
        raise UserError(f"perm_file: {shown!r} has shape {array.shape}, expected (|P|, {num_tiles})")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise UserError(f"perm_file: {shown!r} holds {array.dtype} values, not tile indices")
    if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
        raise UserError(f"perm_file: {shown!r} holds values that are not whole tile indices")
    values = array.astype(np.int64)
    if values.min() == 1:
        values = values - 1
    if not (np.sort(values, axis=1) == np.arange(num_tiles)).all():
        bad = int(np.flatnonzero((np.sort(values, axis=1) != np.arange(num_tiles)).any(axis=1))[0])
        raise UserError(
            f"perm_file: {shown!r} row {bad} is not a permutation of the {num_tiles} tiles (0..{num_tiles - 1}"
            f" or 1..{num_tiles}): {array[bad].tolist()}"
        )
    if len(np.unique(values, axis=0)) != len(values):
        raise UserError(f"perm_file: {shown!r} lists the same permutation twice")
    return values.astype(np.uint8)
