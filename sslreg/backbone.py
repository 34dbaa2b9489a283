"""Backbone: a trunk that returns the features of any subset of its named layers in one pass."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from pydantic import Field
from torch import nn

from sslreg.component import Component, ComponentConfig
from sslreg.errors import UserError
from sslreg.inputs import InputContract


class BackboneConfig(ComponentConfig):
    """Options every trunk accepts."""

    in_channels: int = Field(
        3, ge=1, le=4, description="Input channels; set from the input contract when the trunk is built (1: L only)."
    )
    weights: str | None = Field(
        None,
        description="Local file to load (sslreg trunk.pth/checkpoint, torchvision or other self-supervised state"
        " dicts; prefixes such as module.encoder_q. are mapped). Never downloaded.",
    )
    seed: int | None = Field(
        None,
        ge=0,
        le=2**32 - 1,
        description="Seed of the random initialisation, 0..2**32-1 (None: the experiment seed).",
    )
    input: InputContract | None = Field(
        None,
        description="How images enter the trunk (None: from the weights file, else the pretext task, else ImageNet"
        " RGB); set it for external weights trained on other inputs.",
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
    #: Key prefixes of a classifier head a weights file may carry (dropped quietly when loading, e.g. "fc.").
    head_prefixes: ClassVar[tuple[str, ...]] = ()
    #: Marker key of a known foreign weights layout -> why it cannot be mapped onto this trunk.
    foreign_layouts: ClassVar[Mapping[str, str]] = {}

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
        """The protocol's per-layer pooling (docs/protocol.md#feature-taps-and-pooling)."""

    @abstractmethod
    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Features of ``layers`` (default: the deepest) from ONE pass; stops after the deepest requested."""

    @property
    def input_contract(self) -> InputContract:
        """How images enter this trunk: set by :func:`sslreg.build_trunk` (from the weights or the pretext task);
        for a trunk built by hand, the default contract of its ``in_channels`` (ImageNet RGB, or L of Lab)."""
        contract = self.__dict__.get("_input_contract")
        if contract is not None:
            return contract
        if self.config.in_channels == 1:
            return InputContract(space="lab_l", mean=(50.0,), std=(50.0,))
        if self.config.in_channels == 3:
            return InputContract()
        raise UserError(
            f"{self.name}: no input contract for in_channels={self.config.in_channels} (1: L of Lab, 3: RGB);"
            " set the trunk's 'input' option"
        )

    @input_contract.setter
    def input_contract(self, contract: InputContract) -> None:
        if contract.channels != self.config.in_channels:
            raise UserError(f"{self.name}: a {contract.space} input contract needs {contract.channels} input channels")
        self.__dict__["_input_contract"] = contract

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
            raise UserError(f"{self.name}: unknown layer(s) {unknown}; known: {list(self.layer_names)}")
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
