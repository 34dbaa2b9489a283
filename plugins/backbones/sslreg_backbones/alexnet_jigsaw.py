"""The Jigsaw AlexNet of the paper's benchmark (Noroozi & Favaro's CFN trunk; FAIR benchmark and VISSL
``alexnet_jigsaw``), taps conv1..conv5. Not the CaffeNet of ``alexnet``: conv1 has stride 2, conv1 and conv2 have
biases and no BatchNorm (LRN after their max pooling instead), conv3..conv5 have BatchNorm.

Layout (Caffe's ceil-mode max pooling), map sizes at 227 px / at a 64 px Jigsaw tile:
conv1 96 k11 s2 p0 -> 109 / 27, pool 3/2 + LRN -> 54 / 13, conv2 256 k5 p2 g2 -> 54 / 13, pool 3/2 + LRN -> 27 / 6,
conv3 384 k3 p1 -> 27 / 6, conv4 384 k3 p1 g2 -> 27 / 6, conv5 256 k3 p1 g2 -> 27 / 6 (pool5 3/2 -> 3x3 per tile,
the Jigsaw head's fc6 input). Each tap is the conv's output after (BatchNorm and) ReLU, before any pooling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from sslreg import PoolSpec
from sslreg_backbones.alexnet import ALEXNET_CHANNELS, TORCHVISION_ALEXNET_MESSAGE, AlexNetConfig
from sslreg_backbones.base import Trunk
from sslreg_backbones.seeding import seeded

#: The reference benchmark's pooling of the Jigsaw AlexNet at 227 px (docs/protocol.md#feature-taps-and-pooling):
#: conv1 109 -> 10x10, conv2 54 -> 6x6, conv3/4 27 -> 5x5, conv5 27 -> 6x6.
ALEXNET_JIGSAW_POOL_SPECS: dict[str, PoolSpec] = {
    "conv1": PoolSpec(kernel=28, stride=9, padding=0, grid=10),
    "conv2": PoolSpec(kernel=24, stride=6, padding=0, grid=6),
    "conv3": PoolSpec(kernel=14, stride=3, padding=0, grid=5),
    "conv4": PoolSpec(kernel=14, stride=3, padding=0, grid=5),
    "conv5": PoolSpec(kernel=16, stride=2, padding=0, grid=6),
}
ALEXNET_JIGSAW_STRIDES: dict[str, int] = {"conv1": 2, "conv2": 4, "conv3": 8, "conv4": 8, "conv5": 8}


class LocalResponseNorm(nn.Module):
    """Caffe's across-channel LRN, x / (k + alpha/size * sum of x^2 over ``size`` neighbouring channels)^beta.

    The same numbers as ``nn.LocalResponseNorm``, but the window sum is a few shifted additions: torch's version
    sums with ``avg_pool3d``, whose CUDA backward refuses to run under ``torch.use_deterministic_algorithms``
    (the runner's default).
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        squares = F.pad(x.square(), (0, 0, 0, 0, self.size // 2, (self.size - 1) // 2))
        window = squares[:, 0:channels]
        for shift in range(1, self.size):
            window = window + squares[:, shift : shift + channels]
        return x / (self.k + (self.alpha / self.size) * window).pow(self.beta)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class AlexNetJigsaw(Trunk):
    """The paper's Jigsaw AlexNet (conv1 k11 s2, LRN after conv1/conv2, BN on conv3..conv5); taps conv1..conv5."""

    name = "alexnet_jigsaw"
    Config: ClassVar[type[AlexNetConfig]] = AlexNetConfig
    layer_names: tuple[str, ...] = ("conv1", "conv2", "conv3", "conv4", "conv5")
    input_size: int = 227
    protocol_pooling = ALEXNET_JIGSAW_POOL_SPECS
    strides = ALEXNET_JIGSAW_STRIDES
    foreign_layouts: ClassVar[Mapping[str, str]] = {"features.0.weight": TORCHVISION_ALEXNET_MESSAGE}

    def __init__(self, config: AlexNetConfig) -> None:
        super().__init__(config)
        groups = config.groups
        with seeded(config.seed):
            self.conv1 = nn.Conv2d(config.in_channels, 96, kernel_size=11, stride=2, padding=0)
            self.conv2 = nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=groups)
            self.conv3 = nn.Conv2d(256, 384, kernel_size=3, padding=1, bias=False)
            self.bn3 = nn.BatchNorm2d(384)
            self.conv4 = nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=groups, bias=False)
            self.bn4 = nn.BatchNorm2d(384)
            self.conv5 = nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=groups, bias=False)
            self.bn5 = nn.BatchNorm2d(256)
            self.relu = nn.ReLU(inplace=True)
            self.pool = nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)
            self.lrn = LocalResponseNorm(size=5, alpha=1e-4, beta=0.75)  # Caffe's LRN: alpha is divided by size
            self.reset_parameters()
            nn.init.zeros_(self.conv1.bias)
            nn.init.zeros_(self.conv2.bias)

    @property
    def layer_channels(self) -> dict[str, int]:
        return dict(ALEXNET_CHANNELS)

    def forward(self, x: torch.Tensor, layers: Sequence[str] | str | None = None) -> dict[str, torch.Tensor]:
        """Features of ``layers`` from one pass; convs after the deepest requested one never run."""
        wanted = self.resolve_layers(layers)
        stages = (
            ("conv1", self.conv1, None, False),
            ("conv2", self.conv2, None, True),
            ("conv3", self.conv3, self.bn3, True),
            ("conv4", self.conv4, self.bn4, False),
            ("conv5", self.conv5, self.bn5, False),
        )
        features: dict[str, torch.Tensor] = {}
        for name, conv, bn, pool_first in stages:
            if pool_first:
                x = self.lrn(self.pool(x))
            x = conv(x)
            x = self.relu(x if bn is None else bn(x))
            if name in wanted:
                features[name] = x
            if name == wanted[-1]:
                break
        return features
