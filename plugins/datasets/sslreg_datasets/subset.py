"""The data-size axis: a deterministic random subset of N indices, the same for the same seed."""

from __future__ import annotations

import hashlib

import numpy as np

from sslreg import UserError


def subset_indices(total: int, subset: int | None, seed: int, source: str = "dataset") -> np.ndarray | range:
    """Sorted indices of a random ``subset`` of ``range(total)``; ``range(total)`` itself when ``subset`` is None."""
    if subset is None:
        return range(total)
    if subset > total:
        raise UserError(f"dataset {source!r}: subset={subset} is larger than the {total} images it has")
    chosen = np.random.Generator(np.random.PCG64(seed)).choice(total, size=subset, replace=False, shuffle=False)
    return np.sort(chosen).astype(np.int64)


def key_hash(seed: int, key: str) -> float:
    """A uniform number in [0, 1) fixed by (seed, key): streams keep a key when it is below subset/total."""
    digest = hashlib.blake2b(f"{seed}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64
