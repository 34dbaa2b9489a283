"""sslreg-rotation: the RotNet pretext task (Gidaris et al. 2018), 4-way rotation prediction."""

from __future__ import annotations

from collections.abc import Callable

from sslreg import hookimpl
from sslreg_rotation.rotation import Rotation, RotationConfig, RotationHead

SSLREG_API_VERSION = 1

__all__ = ["Rotation", "RotationConfig", "RotationHead"]


@hookimpl
def sslreg_register(register: Callable[[type], None]) -> None:
    """Register the ``rotation`` pretext task."""
    register(Rotation)
