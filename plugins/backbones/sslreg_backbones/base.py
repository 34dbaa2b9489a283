"""What every trunk of this plugin shares: He init, loading a weights file, and pooling facts for ``sslreg info``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from torch import nn

from sslreg import Backbone, PoolSpec
from sslreg_backbones.weights import LoadReport, load_weights


class Trunk(Backbone):
    """A Backbone whose convs start He-initialised and whose ``weights`` option loads a local file."""

    #: Pooling per layer at ``input_size`` (docs/protocol.md#feature-taps-and-pooling); independent of e.g. width.
    protocol_pooling: ClassVar[Mapping[str, PoolSpec]] = {}
    #: Total stride of each layer.
    strides: ClassVar[Mapping[str, int]] = {}
    #: Keys of a classifier head a weights file may carry (dropped, reported as ignored head keys).
    head_prefixes: ClassVar[tuple[str, ...]] = ()
    #: Marker key -> why a known foreign layout cannot map onto this trunk.
    foreign_layouts: ClassVar[Mapping[str, str]] = {}

    weights_report: LoadReport | None = None

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

    def load_weights_option(self) -> None:
        """Load ``config.weights`` if set; the report stays on ``self.weights_report``."""
        if self.config.weights:
            self.weights_report = load_weights(
                self,
                self.config.weights,
                name=self.name,
                head_prefixes=self.head_prefixes,
                foreign=self.foreign_layouts,
            )

    @classmethod
    def describe(cls) -> dict[str, object]:
        """The core's facts plus each layer's protocol pooling (kernel, stride, padding -> grid)."""
        facts = super().describe()
        for layer, spec in cls.protocol_pooling.items():
            facts["layers"][layer]["pooling"] = (
                f"k{spec.kernel} s{spec.stride} p{spec.padding} -> {spec.grid}x{spec.grid}"
            )
        return facts
