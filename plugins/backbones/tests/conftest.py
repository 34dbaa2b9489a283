"""Shared fixtures: default trunks built once per session (random init dominates CPU test time)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sslreg_backbones import BACKBONES

from sslreg import Backbone

BY_NAME = {cls.name: cls for cls in BACKBONES}


@pytest.fixture(scope="session")
def trunk() -> Callable[[str], Backbone]:
    """``trunk(name)``: a seed-0 default instance in eval mode, shared by tests that only read it."""
    cache: dict[str, Backbone] = {}

    def get(name: str) -> Backbone:
        if name not in cache:
            cls = BY_NAME[name]
            cache[name] = cls(cls.Config(name=name, seed=0)).eval()
        return cache[name]

    return get
