"""``hub``: any torchvision or timm architecture as a trunk, tapped once per stage, weights only from local files.

The trunk adopts the external model's modules under the library's own names, so the core's trunk builder loads
that library's state dicts, and the common self-supervised layouts around them (``module.encoder_q.``,
``backbone.``, nested ``state_dict``/``model``, ...; see ``sslreg.load_trunk_weights``), with the mapping used and
any missing or unexpected keys in the load report. The classification head is not part of the trunk: its keys
(``fc.``, ``head.``) are ignored when a file carries them. Nothing is ever downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from pydantic import Field, field_validator

from sslreg import Backbone, BackboneConfig, PoolSpec, UserError
from sslreg_hub import timm_net, torchvision_net
from sslreg_hub.taps import Adapter, Tap

#: Library prefix of ``arch`` -> (cheap name check, adapter builder).
LIBRARIES = {
    "torchvision": (torchvision_net.check_arch, torchvision_net.torchvision_net),
    "timm": (timm_net.check_arch, timm_net.timm_net),
}


class HubConfig(BackboneConfig):
    """Options of ``hub`` (``weights``, ``seed`` and ``input`` come with every trunk)."""

    arch: str = Field(
        "torchvision/resnet18",
        description="LIBRARY/NAME: a torchvision classification model ('torchvision/resnet50') or, with timm"
        " installed, a timm model ('timm/convnext_tiny'); built with random weights, then 'weights' is loaded.",
    )
    taps: list[str] | None = Field(
        None,
        min_length=1,
        description="Nodes to tap, each named as given: torchvision graph nodes or modules ('layer3',"
        " 'layer4.1.relu_1'), timm feature modules ('stages.2'). None: one per stage, named stage1..stageN.",
    )
    input_size: int | None = Field(
        None,
        ge=16,
        le=2048,
        description="Input size the ~9k-dim pooling is computed for (None: the arch's own: 224, 299 for"
        " inception_v3, timm's pretrained_cfg).",
    )
    pretrained: bool = Field(
        False, description="Must stay false: sslreg never downloads. Save the weights to a file, name it in 'weights'."
    )

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, arch: str) -> str:
        library, _, name = arch.partition("/")
        if library not in LIBRARIES or not name:
            raise ValueError(
                f"write LIBRARY/NAME with LIBRARY one of {', '.join(LIBRARIES)}, e.g. torchvision/resnet50"
            )
        LIBRARIES[library][0](name)
        return arch

    @field_validator("pretrained")
    @classmethod
    def _never_download(cls, pretrained: bool) -> bool:
        if pretrained:
            raise ValueError(
                "sslreg never downloads weights: save them to a local file and set weights: FILE"
                " (layouts such as module.encoder_q. or backbone. are mapped)"
            )
        return pretrained


class Hub(Backbone):
    """Any torchvision or timm architecture as a trunk: one tap per stage, ~9k-dim pooling, local weights only."""

    name: ClassVar[str] = "hub"
    Config: ClassVar[type[HubConfig]] = HubConfig
    consumes: ClassVar[str] = "image batch (N, 3, H, W) as the weights' training expects (default ImageNet RGB)"
    config: HubConfig

    def __init__(self, config: HubConfig) -> None:
        super().__init__(config)
        library, _, arch = config.arch.partition("/")
        adapter: Adapter = LIBRARIES[library][1](arch, config.taps, config.input_size, config.in_channels)
        for name, child in adapter.module.named_children():
            if hasattr(type(self), name) or name in self.__dict__:
                raise UserError(f"hub: {config.arch} has a module named {name!r}, which the trunk itself uses")
            self.add_module(name, child)
        for name, parameter in adapter.module.named_parameters(recurse=False):
            self.register_parameter(name, parameter)
        for name, buffer in adapter.module.named_buffers(recurse=False):
            self.register_buffer(name, buffer)
        self.layer_names = tuple(tap.name for tap in adapter.taps)
        self.input_size = adapter.input_size
        self.head_prefixes = adapter.head_prefixes
        self.__dict__["adapter"] = adapter  # not a submodule: its tensors are the trunk's own
        self.train()  # a new module trains until told otherwise; the adopted ones were built in eval mode

    @property
    def taps(self) -> dict[str, Tap]:
        """Each tap by name: the library node it reads, channels, stride, map side at input_size."""
        return {tap.name: tap for tap in self.adapter.taps}

    @property
    def layer_channels(self) -> dict[str, int]:
        return {name: tap.channels for name, tap in self.taps.items()}

    @property
    def layer_strides(self) -> dict[str, int]:
        return {name: tap.stride for name, tap in self.taps.items()}

    @property
    def pool_specs(self) -> dict[str, PoolSpec]:
        return {name: tap.pooling for name, tap in self.taps.items()}

    def forward(self, x: torch.Tensor, layers: Sequence[str] | str | None = None) -> dict[str, torch.Tensor]:
        """Features of ``layers`` (default: the deepest tap) from one pass that stops after the deepest requested."""
        wanted = self.resolve_layers(layers)
        return self.adapter.run(self, x, [self.taps[name] for name in wanted])

    def _apply(self, fn: Any, recurse: bool = True) -> Hub:
        """``.to()``, ``.double()``, ...: move the tensors, then let the adapter drop references to the old ones."""
        super()._apply(fn, recurse)
        self.adapter.rebind(self)
        return self

    @classmethod
    def describe(cls) -> dict[str, object]:
        """The default arch's taps: node, channels, stride, pooling at its input size; and the head left out."""
        model = cls(cls.Config(name=cls.name))
        layers = {
            tap.name: {
                "node": tap.node,
                "channels": tap.channels,
                "stride": tap.stride,
                "pooling": f"k{tap.pooling.kernel} s{tap.pooling.stride} -> {tap.pooling.grid}x{tap.pooling.grid}",
                "pooled_dims": tap.channels * tap.pooling.grid**2,
            }
            for tap in model.adapter.taps
        }
        return {
            "arch": model.config.arch,
            "layers": layers,
            "input_size": model.input_size,
            "parameters": model.num_parameters(),
            "head (not in the trunk)": ", ".join(model.head_prefixes) or "none",
        }
