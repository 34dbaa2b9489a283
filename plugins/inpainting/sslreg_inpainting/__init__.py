"""sslreg-inpainting: context encoders (Pathak et al. 2016), learning by filling in a masked image region."""

from __future__ import annotations

from collections.abc import Callable

from sslreg import hookimpl
from sslreg_inpainting.inpainting import Inpainting, InpaintingConfig, block_mask, centre_mask

SSLREG_API_VERSION = 1

__all__ = ["Inpainting", "InpaintingConfig", "block_mask", "centre_mask"]


@hookimpl
def sslreg_register(register: Callable[[type], None]) -> None:
    """Register the ``inpainting`` pretext task."""
    register(Inpainting)
