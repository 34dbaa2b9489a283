"""sslreg-simclr: SimCLR (Chen et al. 2020), contrastive learning of two views with NT-Xent over the global batch."""

from __future__ import annotations

from collections.abc import Callable

from sslreg import hookimpl
from sslreg_simclr.simclr import SimCLR, SimCLRConfig, nt_xent

SSLREG_API_VERSION = 1

__all__ = ["SimCLR", "SimCLRConfig", "nt_xent"]


@hookimpl
def sslreg_register(register: Callable[[type], None]) -> None:
    """Register the ``simclr`` pretext task."""
    register(SimCLR)
