"""One linear classifier per trunk layer, all fed from the same pooled features of one trunk pass."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from sslreg import PoolSpec


class LayerHead(nn.Module):
    """Pooled (N, C·g·g) features -> optional per-channel BatchNorm -> Linear (init N(0, 0.01²), bias 0).

    The BatchNorm is the reference benchmark's SpatialBN on the pooled map: statistics per trunk channel
    over the batch and the g×g grid.
    """

    def __init__(
        self, channels: int, grid: int, num_classes: int, batch_norm: bool, generator: torch.Generator
    ) -> None:
        super().__init__()
        self.channels = channels
        self.norm = nn.BatchNorm1d(channels) if batch_norm else None
        self.fc = nn.Linear(channels * grid * grid, num_classes)
        nn.init.normal_(self.fc.weight, 0.0, 0.01, generator=generator)
        nn.init.zeros_(self.fc.bias)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        if self.norm is not None:
            pooled = self.norm(pooled.view(len(pooled), self.channels, -1)).flatten(1)
        return self.fc(pooled)


class LinearHeads(nn.ModuleDict):
    """A LayerHead per layer, keyed by layer name; ``forward`` maps pooled features to logits layer by layer."""

    def __init__(
        self,
        channels: Mapping[str, int],
        pool_specs: Mapping[str, PoolSpec],
        num_classes: int,
        *,
        batch_norm: bool = True,
        seed: int = 0,
    ) -> None:
        generator = torch.Generator().manual_seed(seed)
        super().__init__(
            {
                layer: LayerHead(channels[layer], pool_specs[layer].grid, num_classes, batch_norm, generator)
                for layer in channels
            }
        )

    def forward(self, pooled: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {layer: head(pooled[layer]) for layer, head in self.items()}

    def param_groups(self, weight_decay: float) -> list[dict]:
        """Linear weights and biases decay; BatchNorm scale/shift do not (the reference's WEIGHT_DECAY_BN = 0)."""
        norm = [p for head in self.values() if head.norm is not None for p in head.norm.parameters()]
        linear = [p for head in self.values() for p in head.fc.parameters()]
        groups = [{"params": linear, "weight_decay": weight_decay}]
        if norm:
            groups.append({"params": norm, "weight_decay": 0.0})
        return groups
