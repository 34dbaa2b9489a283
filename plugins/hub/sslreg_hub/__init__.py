"""sslreg-hub: any torchvision or timm architecture as a trunk with per-stage taps; weights from local files only."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from sslreg import hookimpl
from sslreg_hub.hub import Hub, HubConfig
from sslreg_hub.pooling import pool_spec

SSLREG_API_VERSION = 1

__all__ = ["Hub", "HubConfig", "SSLREG_API_VERSION", "pool_spec"]


@hookimpl
def sslreg_register(register: Callable[[type], None]) -> None:
    """Register the ``hub`` trunk."""
    register(Hub)


@hookimpl
def sslreg_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sslreg hub ARCH``: the taps of any torchvision or timm architecture."""
    from sslreg_hub.cli import add_hub_command

    add_hub_command(subparsers)
