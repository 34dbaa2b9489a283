"""The trainable dense decoder on frozen trunk taps: lateral 1x1 convs, fusion at stride >= 4, upsampling to the input.

Each tap is first standardised per channel (BatchNorm without scale/shift: batch statistics in training, running
ones at test), so that the probe does not depend on the arbitrary per-channel scale and offset of a frozen trunk's
features (a pretrained trunk's res4 channels can be 10x a random one's and several standard deviations off centre;
the reference's linear heads put BN on frozen features for the same reason). It is then projected to ``width``
channels (1x1 conv + BN + ReLU), resized to the grid of the finest tap (but no
finer than 1/4 of the input, which bounds the cost of res1-like taps), summed, refined by two 3x3 conv + BN + ReLU
blocks, mapped to the outputs (K class logits or 3 normal components) by a 1x1 conv and bilinearly upsampled to
the requested size (the input resolution, or the ground truth's).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: The decoder works on a grid no finer than the input / this.
MIN_STRIDE = 4


def block(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    """conv (no bias) + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def standardise(channels: int) -> nn.BatchNorm2d:
    """Per-channel standardisation of a frozen tap (no learned scale/shift: the 1x1 conv after it has them)."""
    return nn.BatchNorm2d(channels, affine=False)


class DenseDecoder(nn.Module):
    """Fuses the taps named in ``channels`` (name -> channels; ``strides`` name -> stride) into dense outputs."""

    def __init__(self, channels: dict[str, int], strides: dict[str, int], width: int, outputs: int) -> None:
        super().__init__()
        self.taps = list(channels)
        self.stride = max(MIN_STRIDE, min(strides[tap] for tap in self.taps))
        self.lateral = nn.ModuleDict(
            {tap: nn.Sequential(standardise(channels[tap]), *block(channels[tap], width, 1)) for tap in self.taps}
        )
        self.fuse = nn.Sequential(block(width, width, 3), block(width, width, 3))
        self.head = nn.Conv2d(width, outputs, 1)

    def forward(
        self, features: dict[str, torch.Tensor], input_size: tuple[int, int], size: tuple[int, int]
    ) -> torch.Tensor:
        """Outputs (N, outputs, *size) from the taps of an input of ``input_size`` (H, W)."""
        grid = (-(-input_size[0] // self.stride), -(-input_size[1] // self.stride))
        fused = None
        for tap in self.taps:
            x = self.lateral[tap](features[tap].float())
            if tuple(x.shape[-2:]) != grid:
                shrinking = x.shape[-2] > grid[0]
                x = (
                    F.interpolate(x, size=grid, mode="area")
                    if shrinking
                    else F.interpolate(x, size=grid, mode="bilinear", align_corners=False)
                )
            fused = x if fused is None else fused + x
        out = self.head(self.fuse(fused))
        return F.interpolate(out, size=size, mode="bilinear", align_corners=False)
