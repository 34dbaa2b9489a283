"""AlexNet with BatchNorm, as in the paper's benchmark (CaffeNet layout, 227 px), taps conv1..conv5.

Layout (no padding in conv1, Caffe's ceil-mode max pooling), map sizes at 227 px:
conv1 96 k11 s4 p0 -> 55, pool 3/2 -> 27, conv2 256 k5 p2 g2 -> 27, pool 3/2 -> 13,
conv3 384 k3 p1 -> 13, conv4 384 k3 p1 g2 -> 13, conv5 256 k3 p1 g2 -> 13.
Each tap is the conv's output after BatchNorm and ReLU, before any pooling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from sslreg import BackboneConfig, PoolSpec
from sslreg_backbones.base import Trunk
from sslreg_backbones.seeding import seeded

#: docs/protocol.md#feature-taps-and-pooling, 227 px: conv1 55->10x10, conv2 27->6x6, conv3/4 13->5x5, conv5 13->6x6.
ALEXNET_POOL_SPECS: dict[str, PoolSpec] = {
    "conv1": PoolSpec(kernel=19, stride=4, padding=0, grid=10),
    "conv2": PoolSpec(kernel=12, stride=3, padding=0, grid=6),
    "conv3": PoolSpec(kernel=9, stride=1, padding=0, grid=5),
    "conv4": PoolSpec(kernel=9, stride=1, padding=0, grid=5),
    "conv5": PoolSpec(kernel=8, stride=1, padding=0, grid=6),
}
ALEXNET_CHANNELS: dict[str, int] = {"conv1": 96, "conv2": 256, "conv3": 384, "conv4": 384, "conv5": 256}
ALEXNET_STRIDES: dict[str, int] = {"conv1": 4, "conv2": 8, "conv3": 16, "conv4": 16, "conv5": 16}

#: A torchvision AlexNet state dict starts with this key; it has no BatchNorm and other widths.
TORCHVISION_ALEXNET_MESSAGE = (
    "this is a torchvision AlexNet state dict (features.N / classifier.N, no BatchNorm, 64-192-384-256-256 "
    "channels); it cannot be mapped onto the paper's BatchNorm AlexNet (96-256-384-384-256). "
    "Load an sslreg checkpoint of 'alexnet' instead"
)


class AlexNetConfig(BackboneConfig):
    """Options of the BatchNorm AlexNet."""

    groups: Literal[1, 2] = Field(
        2, description="Groups of conv2, conv4 and conv5: 2 as in CaffeNet and the reference, 1 for dense convs."
    )


class AlexNet(Trunk):
    """AlexNet with BatchNorm (CaffeNet layout, 227 px) as in the paper's benchmark; taps conv1..conv5."""

    name = "alexnet"
    Config: ClassVar[type[AlexNetConfig]] = AlexNetConfig
    layer_names: tuple[str, ...] = ("conv1", "conv2", "conv3", "conv4", "conv5")
    input_size: int = 227
    protocol_pooling = ALEXNET_POOL_SPECS
    strides = ALEXNET_STRIDES
    foreign_layouts: ClassVar[Mapping[str, str]] = {"features.0.weight": TORCHVISION_ALEXNET_MESSAGE}

    def __init__(self, config: AlexNetConfig) -> None:
        super().__init__(config)
        groups = config.groups
        with seeded(config.seed):
            self.conv1 = nn.Conv2d(config.in_channels, 96, kernel_size=11, stride=4, padding=0, bias=False)
            self.bn1 = nn.BatchNorm2d(96)
            self.conv2 = nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=groups, bias=False)
            self.bn2 = nn.BatchNorm2d(256)
            self.conv3 = nn.Conv2d(256, 384, kernel_size=3, padding=1, bias=False)
            self.bn3 = nn.BatchNorm2d(384)
            self.conv4 = nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=groups, bias=False)
            self.bn4 = nn.BatchNorm2d(384)
            self.conv5 = nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=groups, bias=False)
            self.bn5 = nn.BatchNorm2d(256)
            self.relu = nn.ReLU(inplace=True)
            self.pool = nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)
            self.reset_parameters()

    @property
    def layer_channels(self) -> dict[str, int]:
        return dict(ALEXNET_CHANNELS)

    def forward(self, x: torch.Tensor, layers: Sequence[str] | str | None = None) -> dict[str, torch.Tensor]:
        """Features of ``layers`` from one pass; convs after the deepest requested one never run."""
        wanted = self.resolve_layers(layers)
        stages = (
            ("conv1", self.conv1, self.bn1, False),
            ("conv2", self.conv2, self.bn2, True),
            ("conv3", self.conv3, self.bn3, True),
            ("conv4", self.conv4, self.bn4, False),
            ("conv5", self.conv5, self.bn5, False),
        )
        features: dict[str, torch.Tensor] = {}
        for name, conv, bn, pool_first in stages:
            if pool_first:
                x = self.pool(x)
            x = self.relu(bn(conv(x)))
            if name in wanted:
                features[name] = x
            if name == wanted[-1]:
                break
        return features
