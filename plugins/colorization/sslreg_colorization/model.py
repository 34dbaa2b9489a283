"""The colorization head: per-pixel Q-way bin logits from one trunk layer, at the target resolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sslreg import Backbone, PretextModel


def _interpolation_matrix(size_in: int, size_out: int, device: torch.device) -> torch.Tensor:
    """(size_out, size_in) weights of 1-D linear interpolation (align_corners=False), as F.interpolate computes."""
    basis = torch.eye(size_in, device=device).unsqueeze(0)  # channel c holds the c-th unit vector
    return F.interpolate(basis, size=size_out, mode="linear", align_corners=False)[0].T


def resize_bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (N, C, H, W) as two matrix products: equal to F.interpolate(mode="bilinear"),
    but with a deterministic backward on CUDA (interpolate's raises under torch.use_deterministic_algorithms)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    with torch.no_grad():
        rows = _interpolation_matrix(x.shape[-2], size[0], x.device).to(x.dtype)
        cols = _interpolation_matrix(x.shape[-1], size[1], x.device).to(x.dtype)
    return torch.einsum("ih,nchw,jw->ncij", rows, x, cols)


class ColorizationHead(nn.Module):
    """1×1 convolutions from a trunk feature map to Q bin logits; keeps the ab bin centres as a buffer.

    The bins travel with the checkpoint (``head.ab_bins``) so decoding never depends on a cache file.
    """

    def __init__(self, in_channels: int, bins: torch.Tensor, hidden_channels: int = 256) -> None:
        super().__init__()
        num_bins = bins.shape[0]
        if hidden_channels > 0:
            self.classifier: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, hidden_channels, 1, bias=False),
                nn.BatchNorm2d(hidden_channels),
                nn.ReLU(inplace=True),
                nn.Conv2d(hidden_channels, num_bins, 1),
            )
        else:
            self.classifier = nn.Conv2d(in_channels, num_bins, 1)
        self.register_buffer("ab_bins", bins.detach().clone().float())

    def forward(self, features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Logits (N, Q, *size): classify, then resize bilinearly to the target grid."""
        return resize_bilinear(self.classifier(features), size)


class ColorizationModel(PretextModel):
    """Trunk (L input) plus colorization head, reading one trunk layer."""

    def __init__(self, trunk: Backbone, head: ColorizationHead, layer: str) -> None:
        super().__init__(trunk, head)
        self.layer = layer

    def forward(self, inputs: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Bin logits (N, Q, *size) for a batch of L inputs (N, 1, H, W)."""
        features = self.trunk(inputs, [self.layer])[self.layer]
        return self.head(features, size)
