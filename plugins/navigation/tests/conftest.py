"""Shared fixtures: whether this machine renders MiniWorld headless, and a small evaluation context."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sslreg import EvalContext, UserError


@pytest.fixture(scope="session")
def gl() -> str:
    """The GL renderer; tests that render are skipped, naming the Debian packages, where there is none."""
    from sslreg_navigation.gl import gl_renderer

    try:
        return gl_renderer()
    except UserError as error:
        pytest.skip(str(error))


@pytest.fixture
def context(tmp_path: Path) -> EvalContext:
    def no_datasets(spec):
        raise AssertionError(f"navigation reads no dataset, asked for {spec}")

    return EvalContext(device=torch.device("cpu"), cache_dir=tmp_path, seed=0, build_dataset=no_datasets)
