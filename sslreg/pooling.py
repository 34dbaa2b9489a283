"""The protocol's per-layer average pooling to about 9k dims, shared by every evaluator."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from sslreg.backbone import PoolSpec


def pool_layer(feature: torch.Tensor, spec: PoolSpec, at_protocol_size: bool) -> torch.Tensor:
    """Pool one (N, C, H, W) map to (N, C * grid * grid).

    At the protocol's input size the exact kernel/stride/padding are used; at any other size
    (small CPU demos) adaptive pooling gives the same grid, so dimensions stay comparable.
    """
    if at_protocol_size:
        pooled = F.avg_pool2d(feature, spec.kernel, spec.stride, spec.padding)
        if pooled.shape[-1] != spec.grid or pooled.shape[-2] != spec.grid:
            pooled = F.adaptive_avg_pool2d(feature, spec.grid)
    else:
        pooled = F.adaptive_avg_pool2d(feature, spec.grid)
    return pooled.flatten(1)


def pool_features(
    features: Mapping[str, torch.Tensor], specs: Mapping[str, PoolSpec], at_protocol_size: bool
) -> dict[str, torch.Tensor]:
    """Pool every layer of a backbone's output dict with its spec."""
    return {layer: pool_layer(feature, specs[layer], at_protocol_size) for layer, feature in features.items()}
