"""sslreg-jigsaw: the Jigsaw pretext task (Noroozi & Favaro 2016) with scalable problem complexity |P|."""

from __future__ import annotations

from collections.abc import Callable

from sslreg import hookimpl
from sslreg_jigsaw.jigsaw import Jigsaw, JigsawConfig
from sslreg_jigsaw.model import JigsawHead, JigsawModel
from sslreg_jigsaw.permutations import (
    generate_permutations,
    hamming_stats,
    load_permutations,
)

SSLREG_API_VERSION = 1

__all__ = [
    "Jigsaw",
    "JigsawConfig",
    "JigsawHead",
    "JigsawModel",
    "generate_permutations",
    "hamming_stats",
    "load_permutations",
]


@hookimpl
def sslreg_register(register: Callable[[type], None]) -> None:
    """Register the ``jigsaw`` pretext task."""
    register(Jigsaw)
