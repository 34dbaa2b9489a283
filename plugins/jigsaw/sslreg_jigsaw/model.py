"""The N-way Siamese Jigsaw network: one shared trunk over all tiles, per-tile features concatenated in
tile order, fully connected layers to |P| classes (Noroozi & Favaro 2016, Fig. 3)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from sslreg import Backbone, PretextModel


def _averaging_matrix(size_in: int, size_out: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(size_out, size_in) weights of 1-D adaptive average pooling (bins as torch's: floor start, ceil end)."""
    matrix = torch.zeros(size_out, size_in, device=device, dtype=dtype)
    for index in range(size_out):
        start, end = (index * size_in) // size_out, -((-(index + 1) * size_in) // size_out)
        matrix[index, start:end] = 1.0 / (end - start)
    return matrix


class AdaptiveAvgPool(nn.Module):
    """Adaptive average pooling to ``size`` x ``size`` as two matrix products: equal to nn.AdaptiveAvgPool2d, but
    with a deterministic backward on CUDA (AdaptiveAvgPool2d's raises under torch.use_deterministic_algorithms)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.size == 1:
            return x.mean(dim=(-2, -1), keepdim=True)
        rows = _averaging_matrix(x.shape[-2], self.size, x.device, x.dtype)
        cols = _averaging_matrix(x.shape[-1], self.size, x.device, x.dtype)
        return torch.einsum("ih,nchw,jw->ncij", rows, x, cols)


class JigsawHead(nn.Module):
    """Per tile: pool + flatten + fc (``tile_dim``, the paper's fc6) [+ BatchNorm] + ReLU; the tiles' features
    concatenated in tile order; fc (``hidden_dim``, fc7; 0 skips it as VISSL's ResNet head); fc (|P|).

    ``pool="avg"``: average pool to ``pool_size`` x ``pool_size``. ``pool="max"``: AlexNet's pool5 (max 3/2, Caffe's
    ceil mode), whose output side at the tile size the caller gives as ``pool_size`` (3 for conv5 of a 64 px tile).
    """

    def __init__(
        self,
        in_channels: int,
        num_tiles: int,
        num_classes: int,
        tile_dim: int = 1024,
        hidden_dim: int = 4096,
        dropout: float = 0.5,
        pool_size: int = 1,
        *,
        pool: Literal["avg", "max"] = "avg",
        tile_bn: bool = False,
    ) -> None:
        super().__init__()
        self.num_tiles = num_tiles
        self.pool = (
            AdaptiveAvgPool(pool_size) if pool == "avg" else nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)
        )
        fc6: list[nn.Module] = [nn.Linear(in_channels * pool_size * pool_size, tile_dim)]
        if tile_bn:
            fc6.append(nn.BatchNorm1d(tile_dim))
        self.tile_fc = nn.Sequential(*fc6, nn.ReLU(inplace=True))
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        width = num_tiles * tile_dim
        if hidden_dim > 0:
            layers += [
                nn.Linear(width, hidden_dim),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
            ]
            width = hidden_dim
        self.classifier = nn.Sequential(*layers, nn.Linear(width, num_classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B*num_tiles, C, h, w) trunk features, tiles of one puzzle consecutive -> (B, |P|) logits."""
        per_tile = self.tile_fc(self.pool(features).flatten(1))
        return self.classifier(per_tile.reshape(-1, self.num_tiles * per_tile.shape[1]))


class JigsawModel(PretextModel):
    """Trunk + JigsawHead. ``forward(tiles)`` takes (B, num_tiles, C, T, T) and returns (B, |P|) logits."""

    def __init__(self, trunk: Backbone, head: JigsawHead) -> None:
        super().__init__(trunk, head)
        self.layer = trunk.layer_names[-1]

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        """Run the trunk once on all B*num_tiles tiles as one batch, then the head."""
        if tiles.ndim != 5:
            raise ValueError(f"jigsaw: expected tiles of shape (B, tiles, C, T, T), got {tuple(tiles.shape)}")
        if tiles.shape[1] != self.head.num_tiles:
            raise ValueError(f"jigsaw: expected {self.head.num_tiles} tiles per puzzle, got {tiles.shape[1]}")
        batch = tiles.flatten(0, 1)
        features = self.trunk(batch, [self.layer])[self.layer]
        return self.head(features)
