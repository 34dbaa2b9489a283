"""What every architecture adapter gives the trunk: its taps, the module tree holding its weights, and a forward."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from sslreg import PoolSpec
from sslreg_hub.pooling import pool_spec


@dataclass(frozen=True)
class Tap:
    """One feature tap: its name in configs, the library's node it reads, and the map it gives at input_size."""

    name: str
    node: str
    channels: int
    stride: int
    side: int

    @property
    def pooling(self) -> PoolSpec:
        """The ~9k-dim average pooling of this tap at the architecture's input size (sslreg_hub.pooling)."""
        return pool_spec(self.channels, self.side)


class Adapter(Protocol):
    """An external model made tappable. ``module`` holds exactly the tensors the taps need, under the library's
    own state-dict keys; the trunk adopts its children, so weights files of that library load by name."""

    module: nn.Module
    taps: list[Tap]
    input_size: int
    head_prefixes: tuple[str, ...]

    def run(self, owner: nn.Module, x: torch.Tensor, wanted: list[Tap]) -> dict[str, torch.Tensor]:
        """The ``wanted`` taps of ``owner`` (the trunk that adopted ``module``) from one pass, stopping early."""

    def rebind(self, owner: nn.Module) -> None:
        """Called after ``owner`` moved or cast its tensors (``.to()``, ``.double()``): drop stale references."""


def dropped_prefixes(dropped: Iterable[str], kept: Collection[str]) -> tuple[str, ...]:
    """The shortest dotted prefixes ('fc.', 'layer4.1.') that cover every dropped key and no kept key."""
    prefixes: set[str] = set()
    for key in sorted(dropped):
        parts = key.split(".")
        for depth in range(1, len(parts) + 1):
            prefix = ".".join(parts[:depth]) + ("." if depth < len(parts) else "")
            if not any(k == prefix or k.startswith(prefix if prefix.endswith(".") else prefix + ".") for k in kept):
                prefixes.add(prefix)
                break
    return tuple(sorted(p for p in prefixes if not any(p != q and p.startswith(q) for q in prefixes)))
