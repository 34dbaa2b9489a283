"""Fixtures of the jigsaw plugin's tests: a tiny trunk, small real photos, a private permutation cache."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from sslreg_jigsaw import Jigsaw, JigsawConfig

HERE = Path(__file__).parent


def load_module(path: Path, name: str):
    """Import a helper file by path (tests run with --import-mode=importlib, so no sys.path tricks)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TinyTrunk = load_module(HERE / "tiny_trunk.py", "sslreg_jigsaw_tests_tiny_trunk").TinyTrunk

#: Small CPU geometry: 96 px image, 32 px cells, 28 px tiles.
SMALL = {
    "image_size": 96,
    "cell": 32,
    "tile": 28,
    "tile_dim": 32,
    "hidden_dim": 64,
    "dropout": 0.0,
}


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One permutation cache for the whole run, so each (|P|, seed, method) set is generated once."""
    return tmp_path_factory.mktemp("sslreg_cache")


@pytest.fixture(autouse=True)
def private_cache(session_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the default permutation cache ($SSLREG_CACHE) away from ~/.cache."""
    monkeypatch.setenv("SSLREG_CACHE", str(session_cache))
    return session_cache / "jigsaw"


@pytest.fixture(scope="session")
def photos() -> list[np.ndarray]:
    """Real photos bundled with scikit-image (no download), shrunk to about 128 px."""
    data = pytest.importorskip("skimage.data")
    import cv2

    images = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    return [
        cv2.resize(
            im,
            (im.shape[1] * 128 // min(im.shape[:2]), 128),
            interpolation=cv2.INTER_AREA,
        )
        for im in images
    ]


@pytest.fixture
def make_task(private_cache: Path):
    """Build a small Jigsaw task with options on top of SMALL."""

    def build(**options) -> Jigsaw:
        return Jigsaw(JigsawConfig(**{"cache_dir": str(private_cache), **SMALL, **options}))

    return build


@pytest.fixture
def tiny_trunk() -> TinyTrunk:
    import torch

    torch.manual_seed(0)
    return TinyTrunk()
