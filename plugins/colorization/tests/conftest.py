"""Shared fixtures: a session-wide gamut cache, the tiny trunk (from the example script), checkpoint writing."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tiny_training.py"


def _load_example():
    name = "sslreg_colorization_tiny_training_example"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, EXAMPLE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def example():
    """The tiny_training example module (TinyTrunk, photos, train)."""
    return _load_example()


@pytest.fixture(scope="session")
def gamut_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory holding the computed gamut bins, shared by the session (computing takes seconds)."""
    from sslreg_colorization.bins import gamut_bins

    path = tmp_path_factory.mktemp("cache") / "colorization"  # the layout of $SSLREG_CACHE/colorization
    gamut_bins(path)
    return path


@pytest.fixture()
def tiny_trunk(example):
    """A factory for the tiny 1-channel trunk, registered in the process registry while the test runs."""
    from sslreg.plugins import get_registry

    registry = get_registry()
    entry = None if registry.find(example.TinyTrunk.name) else registry.add(example.TinyTrunk, "colorization tests")

    def make(**options) -> torch.nn.Module:
        return example.TinyTrunk(example.TinyTrunkConfig(name="tiny_trunk", in_channels=1, seed=0, **options))

    yield make
    if entry is not None:
        registry.remove([entry])


def save_checkpoint_for_tests(path: Path, model: torch.nn.Module, backbone: dict, pretext: dict) -> Path:
    """Write exactly sslreg's pretraining checkpoint format: state_dict (trunk.*, head.*) + meta.config."""
    meta = {"config": {"pretrain": {"backbone": dict(backbone), "pretext": dict(pretext)}}}
    torch.save({"state_dict": model.state_dict(), "meta": meta}, path)
    return path


@pytest.fixture()
def save_checkpoint():
    """The ``save_checkpoint_for_tests`` helper."""
    return save_checkpoint_for_tests
