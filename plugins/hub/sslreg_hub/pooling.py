"""The pooling rule for taps of any architecture: average pooling to about 9k dims, from channels and map size.

grid = round(sqrt(9216 / channels)), at least 1 and at most the map side; then stride = side // grid and
kernel = side - (grid - 1) * stride (no padding) tile the map exactly into grid x grid cells. The grid reproduces
the protocol's table wherever it has one: ResNet-50 64 -> 12, 256 -> 6, 512 -> 4, 1024 -> 3, 2048 -> 2 and AlexNet
96 -> 10, 256 -> 6, 384 -> 5 (docs/protocol.md#feature-taps-and-pooling); kernels and strides differ from the
hand-written ones but cover the whole map.
"""

from __future__ import annotations

import math

from sslreg import PoolSpec

#: Target size of a pooled tap: the protocol's ~9k dims.
POOLED_DIMS = 9216


def pool_spec(channels: int, side: int, dims: int = POOLED_DIMS) -> PoolSpec:
    """Kernel, stride and padding that pool a (channels, side, side) map to a grid of about ``dims`` values."""
    grid = max(1, min(side, round(math.sqrt(dims / channels))))
    stride = side // grid
    return PoolSpec(kernel=side - (grid - 1) * stride, stride=stride, padding=0, grid=grid)
