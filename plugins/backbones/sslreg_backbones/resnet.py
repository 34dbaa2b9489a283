"""ResNet-18/34/50/101 trunks with the benchmark's taps res1..res5, optionally widened (ResNet-50 ×2 ...).

Parameter names follow torchvision's ``resnet.py`` (conv1, bn1, layer1..layer4, blocks named as torchvision's
BasicBlock/Bottleneck), so a torchvision state dict loads as is; its ``fc.`` head is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from sslreg import BackboneConfig, PoolSpec
from sslreg_backbones.base import Trunk
from sslreg_backbones.blocks import BasicBlock, Bottleneck
from sslreg_backbones.seeding import seeded

#: docs/protocol.md#feature-taps-and-pooling, 224 px: res1 112->12x12, res2->6x6, res3->4x4, res4->3x3, res5->2x2.
RESNET_POOL_SPECS: dict[str, PoolSpec] = {
    "res1": PoolSpec(kernel=10, stride=10, padding=4, grid=12),
    "res2": PoolSpec(kernel=16, stride=8, padding=0, grid=6),
    "res3": PoolSpec(kernel=13, stride=5, padding=0, grid=4),
    "res4": PoolSpec(kernel=8, stride=3, padding=0, grid=3),
    "res5": PoolSpec(kernel=6, stride=1, padding=0, grid=2),
}
RESNET_STRIDES: dict[str, int] = {"res1": 2, "res2": 4, "res3": 8, "res4": 16, "res5": 32}
#: res5 of the Colorization ResNet-50 (``layer4_stride: 1``, no dilation): 14x14 at 224 px, pooled k12 s2 -> 2x2.
RES5_STRIDE1_POOL_SPEC = PoolSpec(kernel=12, stride=2, padding=0, grid=2)


class ResNetConfig(BackboneConfig):
    """Options of the ResNet trunks."""

    width: int = Field(
        1, ge=1, le=4, description="Channel multiplier for every layer (2: ResNet-50 x2); pooled dims scale with it."
    )
    zero_init_residual: bool = Field(
        False, description="Start each block's last BatchNorm at zero, so every block begins as the identity."
    )
    layer4_stride: Literal[1, 2] = Field(
        2,
        description="Stride of res5's first block: 2 as torchvision; 1 (no dilation) as the paper's Colorization"
        " ResNet-50 (res5 14x14 at 224 px, pooled k12 s2).",
    )


class ResNet(Trunk):
    """ResNet trunk (base class): subclasses set ``block`` and ``depths``."""

    Config: ClassVar[type[ResNetConfig]] = ResNetConfig
    layer_names: tuple[str, ...] = ("res1", "res2", "res3", "res4", "res5")
    input_size: int = 224
    protocol_pooling = RESNET_POOL_SPECS
    strides = RESNET_STRIDES
    head_prefixes = ("fc.",)
    block: ClassVar[type[BasicBlock | Bottleneck]] = Bottleneck
    depths: ClassVar[tuple[int, int, int, int]] = (3, 4, 6, 3)

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__(config)
        base = 64 * config.width
        with seeded(config.seed):
            self.conv1 = nn.Conv2d(config.in_channels, base, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(base)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.inplanes = base
            self.layer1 = self._make_stage(base, self.depths[0], stride=1)
            self.layer2 = self._make_stage(base * 2, self.depths[1], stride=2)
            self.layer3 = self._make_stage(base * 4, self.depths[2], stride=2)
            self.layer4 = self._make_stage(base * 8, self.depths[3], stride=config.layer4_stride)
            self.reset_parameters()
            if config.zero_init_residual:
                self._zero_init_residual()

    def _make_stage(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        """One stage of ``blocks`` residual blocks; the first one changes stride/width (as torchvision does)."""
        downsample = None
        if stride != 1 or self.inplanes != planes * self.block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * self.block.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * self.block.expansion),
            )
        layers = [self.block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * self.block.expansion
        layers += [self.block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _zero_init_residual(self) -> None:
        """Zero each block's last BatchNorm scale (torchvision's ``zero_init_residual``)."""
        for module in self.modules():
            if isinstance(module, Bottleneck):
                nn.init.zeros_(module.bn3.weight)
            elif isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)

    @property
    def layer_strides(self) -> dict[str, int]:
        return {**self.strides, "res5": 16 * self.config.layer4_stride}

    @property
    def pool_specs(self) -> dict[str, PoolSpec]:
        if self.config.layer4_stride == 1:
            return {**self.protocol_pooling, "res5": RES5_STRIDE1_POOL_SPEC}
        return dict(self.protocol_pooling)

    @classmethod
    def describe(cls) -> dict[str, object]:
        """The default trunk's facts, plus res5 with ``layer4_stride: 1`` (the Colorization ResNet)."""
        facts = super().describe()
        spec = RES5_STRIDE1_POOL_SPEC
        channels = facts["layers"]["res5"]["channels"]
        facts["layer4_stride: 1"] = (
            f"res5 stride 16, k{spec.kernel} s{spec.stride} p{spec.padding} -> {spec.grid}x{spec.grid},"
            f" {channels * spec.grid**2} dims"
        )
        return facts

    @property
    def layer_channels(self) -> dict[str, int]:
        base, expansion = 64 * self.config.width, self.block.expansion
        return {
            "res1": base,
            "res2": base * expansion,
            "res3": base * 2 * expansion,
            "res4": base * 4 * expansion,
            "res5": base * 8 * expansion,
        }

    def forward(self, x: torch.Tensor, layers: Sequence[str] | str | None = None) -> dict[str, torch.Tensor]:
        """Features of ``layers`` from one pass; stages after the deepest requested one never run."""
        wanted = self.resolve_layers(layers)
        features: dict[str, torch.Tensor] = {}
        x = self.relu(self.bn1(self.conv1(x)))
        if "res1" in wanted:
            features["res1"] = x
        if wanted[-1] == "res1":
            return features
        x = self.maxpool(x)
        for name, stage in zip(self.layer_names[1:], (self.layer1, self.layer2, self.layer3, self.layer4)):
            x = stage(x)
            if name in wanted:
                features[name] = x
            if name == wanted[-1]:
                break
        return features


class ResNet18(ResNet):
    """ResNet-18 trunk (BasicBlock 2-2-2-2), taps res1..res5."""

    name = "resnet18"
    block = BasicBlock
    depths = (2, 2, 2, 2)


class ResNet34(ResNet):
    """ResNet-34 trunk (BasicBlock 3-4-6-3), taps res1..res5."""

    name = "resnet34"
    block = BasicBlock
    depths = (3, 4, 6, 3)


class ResNet50(ResNet):
    """ResNet-50 trunk (Bottleneck 3-4-6-3), the paper's large model; taps res1..res5."""

    name = "resnet50"
    block = Bottleneck
    depths = (3, 4, 6, 3)


class ResNet101(ResNet):
    """ResNet-101 trunk (Bottleneck 3-4-23-3), taps res1..res5."""

    name = "resnet101"
    block = Bottleneck
    depths = (3, 4, 23, 3)


class ResNet50W2Config(ResNetConfig):
    """ResNet-50 options with the width multiplier defaulting to 2."""

    width: int = Field(2, ge=1, le=4, description="Channel multiplier for every layer (default 2: ResNet-50 x2).")


class ResNet50W2(ResNet50):
    """ResNet-50 x2 trunk: ResNet-50 with every layer twice as wide (same as resnet50 with width: 2)."""

    name = "resnet50w2"
    Config = ResNet50W2Config
