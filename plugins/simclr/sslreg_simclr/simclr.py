"""The ``simclr`` pretext task: each view's embedding must find its twin among every other view of the global
batch (NT-Xent with temperature; negatives gathered from all DDP processes)."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from sslreg import (
    Augment,
    AugmentSteps,
    Backbone,
    PretextConfig,
    PretextModel,
    PretextTask,
    gather_with_grad,
    rank_offset,
)

#: SimCLR's augmentation (strong colour distortion, blur), at a CPU-friendly size.
DEFAULT_AUGMENT = [
    {"name": "RandomResizedCrop", "size": 64, "scale": [0.08, 1.0]},
    {"name": "RandomHorizontalFlip"},
    {
        "name": "RandomApply",
        "p": 0.8,
        "transforms": [{"name": "ColorJitter", "brightness": 0.8, "contrast": 0.8, "saturation": 0.8, "hue": 0.2}],
    },
    {"name": "RandomGrayscale", "p": 0.2},
    {"name": "RandomApply", "p": 0.5, "transforms": [{"name": "GaussianBlur", "kernel_size": 7, "sigma": [0.1, 2.0]}]},
]


class SimCLRConfig(PretextConfig):
    """Options of SimCLR."""

    name: str = "simclr"
    augment: AugmentSteps = Field(
        default_factory=lambda: copy.deepcopy(DEFAULT_AUGMENT),
        description="torchvision.transforms.v2 steps by name giving each of the two views (square, fixed size).",
    )
    dim: int = Field(128, ge=2, le=4096, description="Dimension of the projected embedding (SimCLR: 128).")
    hidden_dim: int = Field(0, ge=0, le=16384, description="Hidden width of the MLP projection (0: trunk channels).")
    temperature: float = Field(0.5, gt=0, le=10, description="NT-Xent temperature τ (SimCLR: 0.1 to 1.0).")
    layer: str | None = Field(None, description="Trunk layer that is pooled and projected (None: the deepest).")


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, accuracy %) of NT-Xent for this process's pairs (``z1[i]``, ``z2[i]``) against every view of every
    process (gathered with gradient): each of the 2n local views must pick its twin among the 2N - 1 others.

    With DDP averaging the gradients over processes this trains exactly as one process on the global batch.
    """
    z1, z2 = F.normalize(z1.float(), dim=1), F.normalize(z2.float(), dim=1)
    all1, all2 = gather_with_grad(z1), gather_with_grad(z2)
    total, local = len(all1), len(z1)
    offset = rank_offset(local, z1.device)
    anchors = torch.cat([z1, z2])
    logits = anchors @ torch.cat([all1, all2]).T / temperature
    rows = torch.arange(2 * local, device=z1.device)
    own = offset + rows % local + (rows >= local) * total  # each anchor's own column
    twin = offset + rows % local + (rows < local) * total  # its positive's column
    logits = logits.masked_fill(F.one_hot(own, 2 * total).bool(), float("-inf"))
    loss = F.cross_entropy(logits, twin)
    accuracy = (logits.argmax(dim=1) == twin).float().mean() * 100
    return loss, accuracy


class SimCLRModel(PretextModel):
    """Trunk + MLP projection head (Linear, BatchNorm, ReLU, Linear) on one pooled trunk layer."""

    def __init__(self, trunk: Backbone, head: nn.Module, layer: str) -> None:
        super().__init__(trunk, head)
        self.layer = layer

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, S, S) -> (N, dim) projections (not normalised)."""
        return self.head(self.trunk(images, [self.layer])[self.layer].mean(dim=(2, 3)))


class SimCLR(PretextTask):
    """SimCLR: two augmented views per image; NT-Xent over the global batch (both views of every image of every
    process as candidates); accuracy of finding the twin logged."""

    name: ClassVar[str] = "simclr"
    Config: ClassVar[type[SimCLRConfig]] = SimCLRConfig
    consumes: ClassVar[str] = "unlabeled RGB images (H, W, 3) uint8"
    produces: ClassVar[str] = "two views (2, C, S, S), no target; trunk + MLP projection; NT-Xent"

    def __init__(self, config: SimCLRConfig) -> None:
        super().__init__(config)
        self.config: SimCLRConfig = config
        self.augment = Augment(tuple(config.augment))
        self.contract = self.input_contract()

    def make_sample(self, image: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, None]:
        """Two independently augmented views of ``image``, normalised by the input contract."""
        return torch.stack([torch.from_numpy(self.contract(self.augment(image, rng))) for _ in range(2)]), None

    def build_model(self, trunk: Backbone) -> SimCLRModel:
        """Trunk plus the projection head on ``layer`` (default: the deepest)."""
        layer = trunk.resolve_layers(self.config.layer)[-1]
        channels = trunk.layer_channels[layer]
        hidden = self.config.hidden_dim or channels
        head = nn.Sequential(
            nn.Linear(channels, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, self.config.dim),
        )
        return SimCLRModel(trunk, head, layer)

    def loss(self, model: SimCLRModel, inputs: torch.Tensor, targets: Any) -> dict[str, torch.Tensor]:
        """NT-Xent of the two views' projections (both views through the trunk as one batch)."""
        n = len(inputs)
        z = model(inputs.transpose(0, 1).flatten(0, 1))  # first views, then second views
        loss, accuracy = nt_xent(z[:n], z[n:], self.config.temperature)
        return {"loss": loss, "accuracy": accuracy}
