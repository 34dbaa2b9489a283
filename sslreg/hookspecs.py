"""The hooks a plugin implements. One module, one line of doc each (as pytest and llm do)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("sslreg")
hookimpl = pluggy.HookimplMarker("sslreg")


@hookspec
def sslreg_register(register: Callable[[type], None]) -> None:
    """Register components: call ``register(ComponentClass)`` once per class (kind from its base)."""


@hookspec
def sslreg_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add sub-commands to the ``sslreg`` CLI (each sets ``func`` with ``set_defaults``)."""
