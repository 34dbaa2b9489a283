"""sslreg-moco-v2: MoCo v2 (He et al. 2020; Chen et al. 2020): momentum contrast with a queue of negatives."""

from __future__ import annotations

from collections.abc import Callable

from sslreg import hookimpl
from sslreg_moco_v2.moco import MocoModel, MocoV2, MocoV2Config, info_nce

SSLREG_API_VERSION = 1

__all__ = ["MocoModel", "MocoV2", "MocoV2Config", "info_nce"]


@hookimpl
def sslreg_register(register: Callable[[type], None]) -> None:
    """Register the ``moco_v2`` pretext task."""
    register(MocoV2)
