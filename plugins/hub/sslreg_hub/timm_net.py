"""timm models as tappable trunks: the stages timm's ``features_only`` returns, under timm's own parameter names.

The taps are the model's ``feature_info`` entries (what ``timm.create_model(..., features_only=True)`` returns:
one per stage, with channels and reduction), read with ``forward_intermediates(indices, stop_early=True)``.
The full model is kept, pruned after the deepest tap (``prune_intermediate_layers``: head and later stages
removed), rather than features_only's wrapper, because that wrapper renames parameters for some families
(ConvNeXt ``stages.0`` -> ``stages_0``, ViT under ``model.``): kept whole, a timm state dict loads as it is.
"""

from __future__ import annotations

import difflib
import importlib.util
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from sslreg import UserError
from sslreg_hub.taps import Tap, dropped_prefixes

INSTALL = "timm is not installed here: pip install 'sslreg-hub[timm]' (or pip install timm)"


def check_arch(name: str) -> None:
    """A ValueError when timm is missing or ``name`` is not a timm model (with close names)."""
    if importlib.util.find_spec("timm") is None:
        raise ValueError(INSTALL)
    import timm

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        hint = f"; did you mean {' or '.join(repr(f'timm/{c}') for c in close)}?" if close else ""
        raise ValueError(f"unknown timm model {name!r}{hint}")


@dataclass
class TimmNet:
    """A timm model pruned after its deepest tap, and the feature index of each tap."""

    module: nn.Module
    taps: list[Tap]
    input_size: int
    head_prefixes: tuple[str, ...]
    index: dict[str, int] = field(default_factory=dict)

    def run(self, owner: nn.Module, x: torch.Tensor, wanted: list[Tap]) -> dict[str, torch.Tensor]:
        self.module.training = owner.training  # the children are the trunk's own; the root's flag is not
        indices = [self.index[tap.name] for tap in wanted]
        maps = self.module.forward_intermediates(x, indices=indices, intermediates_only=True, stop_early=True)
        return {tap.name: feature for tap, feature in zip(wanted, maps)}

    def rebind(self, owner: nn.Module) -> None:
        """Point the model's root tensors (ViT's cls_token, pos_embed, ...) at the trunk's moved ones."""
        self.module._parameters.update(owner._parameters)
        self.module._buffers.update(owner._buffers)


def timm_net(name: str, taps: list[str] | None, input_size: int | None, in_channels: int) -> TimmNet:
    """Build timm model ``name`` (``pretrained=False``: nothing is downloaded) and keep what its taps need."""
    try:
        check_arch(name)
    except ValueError as error:
        raise UserError(f"hub: arch: {error}") from None
    import timm

    model = timm.create_model(name, pretrained=False, in_chans=in_channels)
    info = list(getattr(model, "feature_info", None) or [])
    if not info or not hasattr(model, "forward_intermediates"):
        raise UserError(f"hub: timm/{name} gives no per-stage features (no feature_info / forward_intermediates)")
    modules = [entry["module"] for entry in info]
    if taps:
        unknown = [tap for tap in taps if tap not in modules]
        if unknown:
            raise UserError(f"hub: taps: timm/{name} has no feature module {unknown[0]!r}; it has {modules}")
        chosen = sorted({modules.index(tap): tap for tap in taps}.items())
    else:
        chosen = [(index, f"stage{index + 1}") for index in range(len(info))]
    size = input_size or int(model.pretrained_cfg.get("input_size", (3, 224, 224))[-1])
    before = set(model.state_dict())
    try:
        model.prune_intermediate_layers(indices=[index for index, _ in chosen], prune_norm=False, prune_head=True)
    except (AttributeError, NotImplementedError, AssertionError):
        model.reset_classifier(0)  # no pruning for this family: drop at least the classifier
    kept = set(model.state_dict())
    head = dropped_prefixes(before - kept, kept)
    tapped = [
        Tap(tap, info[index]["module"], info[index]["num_chs"], info[index]["reduction"],
            math.ceil(size / info[index]["reduction"]))
        for index, tap in chosen
    ]  # fmt: skip
    return TimmNet(model.eval(), tapped, size, head, {tap.name: index for (index, _), tap in zip(chosen, tapped)})
