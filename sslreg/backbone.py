"""Backbone: a trunk that returns the features of any subset of its named layers in one pass."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from pydantic import Field
from torch import nn

from sslreg.component import Component, ComponentConfig


class BackboneConfig(ComponentConfig):
    """Options every trunk accepts."""

    in_channels: int = Field(3, ge=1, le=4, description="Input channels (1 for an L-only colorization trunk).")
    weights: str | None = Field(
        None, description="Local file to load: an sslreg checkpoint or a torchvision state dict. Never downloaded."
    )
    seed: int | None = Field(
        None,
        ge=0,
        le=2**32 - 1,
        description="Seed of the random initialisation, 0..2**32-1 (None: the experiment seed).",
    )


@dataclass(frozen=True)
class PoolSpec:
    """Average pooling of one layer to about 9k dims: kernel, stride, padding at ``input_size``, and its grid."""

    kernel: int
    stride: int
    padding: int
    grid: int


class Backbone(nn.Module, Component):
    """Abstract trunk. Subclasses set ``layer_names`` (shallow to deep) and fill the per-layer tables."""

    kind: ClassVar[str] = "backbone"
    Config: ClassVar[type[ComponentConfig]] = BackboneConfig
    consumes: ClassVar[str] = "image batch (N, in_channels, H, W), float, normalised"
    produces: ClassVar[str] = "dict layer -> feature map (N, C, H/stride, W/stride)"

    #: Named feature taps, shallow to deep.
    layer_names: tuple[str, ...] = ()
    #: Input size the protocol's pooling table is written for (224 for ResNet, 227 for AlexNet).
    input_size: int = 224

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        self.config = config

    @property
    @abstractmethod
    def layer_channels(self) -> dict[str, int]:
        """Channels of each tapped layer."""

    @property
    @abstractmethod
    def layer_strides(self) -> dict[str, int]:
        """Total stride of each tapped layer relative to the input."""

    @property
    @abstractmethod
    def pool_specs(self) -> dict[str, PoolSpec]:
        """The protocol's per-layer pooling (PROTOCOL.md, 'Feature taps and pooling')."""

    @abstractmethod
    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Features of ``layers`` (default: the deepest) from ONE pass; stops after the deepest requested."""

    def resolve_layers(self, layers: Sequence[str] | str | None) -> list[str]:
        """Turn ``None``/``"all"``/a list into checked layer names in trunk order."""
        if layers is None:
            return [self.layer_names[-1]]
        if layers == "all":
            return list(self.layer_names)
        if isinstance(layers, str):
            layers = [layers]
        unknown = [name for name in layers if name not in self.layer_names]
        if unknown:
            raise ValueError(f"{self.name}: unknown layer(s) {unknown}; known: {list(self.layer_names)}")
        return [name for name in self.layer_names if name in layers]

    def freeze(self) -> Backbone:
        """Stop gradients and switch to eval mode (BatchNorm statistics stay fixed)."""
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        self.eval()
        self._frozen = True
        return self

    def train(self, mode: bool = True) -> Backbone:
        """A frozen trunk stays in eval mode whatever its parent asks."""
        return super().train(mode and not getattr(self, "_frozen", False))

    def num_parameters(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())

    @classmethod
    def describe(cls) -> dict[str, object]:
        """Layers with channels and strides, and the parameter count of a default instance."""
        model = cls(cls.Config(name=cls.name))
        return {
            "layers": {
                layer: {
                    "channels": model.layer_channels[layer],
                    "stride": model.layer_strides[layer],
                    "pooled_dims": model.layer_channels[layer] * model.pool_specs[layer].grid ** 2,
                }
                for layer in model.layer_names
            },
            "input_size": model.input_size,
            "parameters": model.num_parameters(),
        }
