"""A test-only two-layer conv trunk implementing sslreg.Backbone (never registered)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from sslreg import Backbone, BackboneConfig, PoolSpec


class TinyTrunk(Backbone):
    """Two 3x3 conv + BN + ReLU blocks with stride 2: layers conv1 (16 ch, /2) and conv2 (32 ch, /4)."""

    name: ClassVar[str] = "tiny_test_trunk"
    layer_names = ("conv1", "conv2")
    input_size = 32

    def __init__(self, config: BackboneConfig | None = None, width: int = 16) -> None:
        super().__init__(config or BackboneConfig(name=self.name))
        self.width = width
        channels = self.config.in_channels
        self.conv1 = nn.Sequential(
            nn.Conv2d(channels, width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        self.conv2 = nn.Sequential(
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
        )

    @property
    def layer_channels(self) -> dict[str, int]:
        return {"conv1": self.width, "conv2": 2 * self.width}

    @property
    def layer_strides(self) -> dict[str, int]:
        return {"conv1": 2, "conv2": 4}

    @property
    def pool_specs(self) -> dict[str, PoolSpec]:
        return {"conv1": PoolSpec(4, 4, 0, 4), "conv2": PoolSpec(2, 2, 0, 4)}

    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = self.resolve_layers(layers)
        out: dict[str, torch.Tensor] = {}
        x = self.conv1(x)
        if "conv1" in wanted:
            out["conv1"] = x
        if "conv2" in wanted:
            out["conv2"] = self.conv2(x)
        return out
