"""What every trunk of this plugin shares: He init and pooling facts for ``sslreg info``.

Weights files are loaded by the core's trunk builder (``sslreg.build_trunk``), for this plugin's trunks as for any.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from torch import nn

from sslreg import Backbone, PoolSpec


class Trunk(Backbone):
    """A Backbone whose convs start He-initialised, with the protocol's pooling table."""

    #: Pooling per layer at ``input_size`` (docs/protocol.md#feature-taps-and-pooling); independent of e.g. width.
    protocol_pooling: ClassVar[Mapping[str, PoolSpec]] = {}
    #: Total stride of each layer.
    strides: ClassVar[Mapping[str, int]] = {}

    @property
    def layer_strides(self) -> dict[str, int]:
        return dict(self.strides)

    @property
    def pool_specs(self) -> dict[str, PoolSpec]:
        return dict(self.protocol_pooling)

    def reset_parameters(self) -> None:
        """He (fan-out) init for convs, BatchNorm at identity (as torchvision's ResNet)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    @classmethod
    def describe(cls) -> dict[str, object]:
        """The core's facts plus each layer's protocol pooling (kernel, stride, padding -> grid)."""
        facts = super().describe()
        for layer, spec in cls.protocol_pooling.items():
            facts["layers"][layer]["pooling"] = (
                f"k{spec.kernel} s{spec.stride} p{spec.padding} -> {spec.grid}x{spec.grid}"
            )
        return facts
