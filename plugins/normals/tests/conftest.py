"""Tiny fixtures for the normals plugin: a dataset folder written by the test and a private cache folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sslreg_normals.layout import write_sample, write_split

from sslreg import get_registry


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


def write_folder(root: Path, counts: dict[str, int], size: tuple[int, int] = (12, 16), seed: int = 0) -> dict:
    """A normals dataset with random images, normals and masks; returns {id: (rgb, normals, valid)}."""
    rng = np.random.default_rng(seed)
    written = {}
    for split, count in counts.items():
        ids = []
        for index in range(count):
            sample_id = f"{split}{index:03d}"
            rgb = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            normals = unit(rng.normal(size=(*size, 3)))
            valid = rng.random(size) < 0.8
            write_sample(root, sample_id, rgb, normals, valid)
            written[sample_id] = (rgb, normals, valid)
            ids.append(sample_id)
        write_split(root, split, ids)
    return written


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Rendered demo data goes to a folder of the test, never to the user's cache; one thread keeps tests fair."""
    monkeypatch.setenv("SSLREG_CACHE", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path / "cache"
    torch.set_num_threads(threads)


@pytest.fixture
def make_folder():
    """``write_folder`` (tests import no helper module: pytest runs with --import-mode=importlib)."""
    return write_folder


@pytest.fixture
def registry():
    return get_registry()


def builder(registry):
    """EvalContext.build_dataset over the installed plugins."""

    def build(spec):
        options = spec.model_dump() if hasattr(spec, "model_dump") else dict(spec)
        return registry.build("dataset", options)

    return build
