"""Where the detector reads a trunk: the C4 layout of a torchvision-layout ResNet (RPN and RoIAlign on res4, res5 as
the box head) or the fallback tap, and how deep the trunk stays frozen. No torchvision import: the plugin's
registration and config checks stay cheap; sslreg_detection.model builds the detector itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from sslreg import Backbone, UserError

#: Trunk layer -> the torchvision-layout stage module that computes it from the layer before.
STAGES = {"res2": "layer1", "res3": "layer2", "res4": "layer3", "res5": "layer4"}
C4_TAP, C4_HEAD = "res4", "res5"


@dataclass(frozen=True)
class Layout:
    """Where the detector reads the trunk: ``tap`` (RPN + RoIAlign), ``c4`` (res5 as box head), ``frozen`` (the
    deepest layer computed by the shared, frozen trunk; stages after it are trained copies)."""

    tap: str
    c4: bool
    frozen: str

    @property
    def name(self) -> str:
        return "C4" if self.c4 else "fallback"


def has_c4_stages(trunk: Backbone) -> bool:
    """Whether ``trunk`` has the torchvision ResNet layout: res4/res5 taps at strides 16/32 and stage modules
    ``layer1``..``layer4``, checked on a small input (``layer4(res4) == res5``)."""
    names, strides = trunk.layer_names, trunk.layer_strides
    if not {C4_TAP, C4_HEAD} <= set(names) or strides.get(C4_TAP) != 16 or strides.get(C4_HEAD) != 32:
        return False
    if not all(isinstance(getattr(trunk, stage, None), nn.Module) for stage in STAGES.values()):
        return False
    parameter = next(trunk.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn(1, trunk.config.in_channels, 64, 64, generator=generator).to(device)
    was_training = trunk.training
    trunk.eval()
    try:
        with torch.no_grad():
            maps = trunk(probe, [C4_TAP, C4_HEAD])
            again = getattr(trunk, STAGES[C4_HEAD])(maps[C4_TAP])
    except Exception:  # noqa: BLE001 - any failure means: not the layout we can split
        return False
    finally:
        trunk.train(was_training)
    return again.shape == maps[C4_HEAD].shape and torch.allclose(again, maps[C4_HEAD], rtol=1e-4, atol=1e-5)


def default_tap(trunk: Backbone) -> str:
    """The fallback tap: the deepest stride-16 layer, else the layer whose stride is nearest 16 (deeper on ties)."""
    strides = trunk.layer_strides
    distance = {layer: abs(math.log2(strides[layer] / 16)) for layer in trunk.layer_names}
    best = min(distance.values())
    return [layer for layer in trunk.layer_names if distance[layer] == best][-1]


def choose_layout(trunk: Backbone, layers: str | list[str], freeze_at: str) -> Layout:
    """The detector's layout for ``trunk``: C4 on res4 when the trunk allows it, else the fallback tap."""
    splittable = has_c4_stages(trunk)
    if layers == "auto":
        tap = C4_TAP if splittable else default_tap(trunk)
    else:
        if len(layers) != 1:
            raise UserError(f"voc07_detection: layers: name one tap (or 'auto'), got {layers}")
        [tap] = trunk.resolve_layers(layers)
    c4 = tap == C4_TAP and splittable
    if c4:
        allowed = list(STAGES)
        if freeze_at not in allowed:
            raise UserError(
                f"voc07_detection: freeze_at {freeze_at!r}: the C4 layout of {trunk.name!r} freezes through one of"
                f" {allowed} (the stem always stays frozen)"
            )
        return Layout(tap, True, freeze_at)
    names = list(trunk.layer_names)
    if freeze_at in names and names.index(freeze_at) < names.index(tap):
        raise UserError(
            f"voc07_detection: freeze_at {freeze_at!r}: {trunk.name!r} is read at {tap!r} in the fallback layout,"
            f" which freezes the whole trunk up to it; training trunk layers needs the C4 layout (a ResNet)"
        )
    return Layout(tap, False, tap)
