"""Shared fixtures for the core tests."""

from __future__ import annotations

import sys

import pytest

import sslreg.plugins


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder on sys.path where tests put plugin modules; plugin state is reset around the test."""
    monkeypatch.syspath_prepend(str(tmp_path))
    sslreg.plugins.reset()
    yield tmp_path
    sslreg.plugins.reset()
    for name in [m for m in sys.modules if m.startswith("sslregtest_")]:
        del sys.modules[name]
