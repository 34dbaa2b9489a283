"""The ``rotation`` pretext task: classify which of 0, 90, 180, 270 degrees an augmented crop was rotated by."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from sslreg import Augment, AugmentSteps, Backbone, PretextConfig, PretextModel, PretextTask, UserError

#: RotNet's augmentation (random crop and flip), at a CPU-friendly size.
DEFAULT_AUGMENT = [{"name": "RandomResizedCrop", "size": 64, "scale": [0.3, 1.0]}, {"name": "RandomHorizontalFlip"}]


class RotationConfig(PretextConfig):
    """Options of the rotation task (Gidaris, Singh and Komodakis 2018)."""

    name: str = "rotation"

    augment: AugmentSteps = Field(
        default_factory=lambda: [dict(step) for step in DEFAULT_AUGMENT],
        description="torchvision.transforms.v2 steps by name, before the rotation; must end in square images.",
    )
    all_rotations: bool = Field(
        False, description="Each image in all four rotations in the same batch (RotNet's best setting)."
    )
    layer: str | None = Field(None, description="Trunk layer the classifier reads (None: the deepest).")
    hidden_dim: int = Field(0, ge=0, le=8192, description="Width of a hidden layer of the classifier (0: linear).")


class RotationHead(nn.Module):
    """Global average pool of one trunk layer, then (optionally a hidden layer and) a 4-way linear classifier."""

    def __init__(self, in_channels: int, hidden_dim: int = 0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_channels
        if hidden_dim:
            layers += [nn.Linear(width, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True)]
            width = hidden_dim
        self.classifier = nn.Sequential(*layers, nn.Linear(width, 4))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) features -> (N, 4) logits."""
        return self.classifier(features.mean(dim=(2, 3)))


class RotationModel(PretextModel):
    """Trunk + rotation classifier on one layer."""

    def __init__(self, trunk: Backbone, head: RotationHead, layer: str) -> None:
        super().__init__(trunk, head)
        self.layer = layer

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, S, S) -> (N, 4) logits."""
        return self.head(self.trunk(images, [self.layer])[self.layer])


class Rotation(PretextTask):
    """RotNet: predict the rotation (0, 90, 180, 270 degrees) of an augmented image; loss and accuracy logged.

    ``make_sample`` returns one rotated crop (C, S, S) and its rotation index, or, with ``all_rotations``, the
    four rotations (4, C, S, S) and targets [0, 1, 2, 3].
    """

    name: ClassVar[str] = "rotation"
    Config: ClassVar[type[RotationConfig]] = RotationConfig
    consumes: ClassVar[str] = "unlabeled RGB images (H, W, 3) uint8"
    produces: ClassVar[str] = "rotated crop (C, S, S) + rotation index (or all four); trunk + linear head; CE"

    def __init__(self, config: RotationConfig) -> None:
        super().__init__(config)
        self.config: RotationConfig = config
        self.augment = Augment(tuple(config.augment))
        self.contract = self.input_contract()

    def make_sample(self, image: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A rotated augmented crop, normalised by the input contract, and its rotation index."""
        crop = self.augment(image, rng)
        if crop.shape[0] != crop.shape[1]:
            raise UserError(
                f"rotation: the augment pipeline gives {crop.shape[0]}x{crop.shape[1]} images; end it with a"
                " square crop (e.g. RandomResizedCrop) so that rotations keep the shape"
            )
        turns = range(4) if self.config.all_rotations else [int(rng.integers(4))]
        views = [torch.from_numpy(self.contract(np.ascontiguousarray(np.rot90(crop, k)))) for k in turns]
        if self.config.all_rotations:
            return torch.stack(views), torch.arange(4)
        return views[0], torch.tensor(turns[0])

    def build_model(self, trunk: Backbone) -> RotationModel:
        """Trunk plus a rotation classifier on ``layer`` (default: the deepest)."""
        layer = trunk.resolve_layers(self.config.layer)[-1]
        return RotationModel(trunk, RotationHead(trunk.layer_channels[layer], self.config.hidden_dim), layer)

    def loss(self, model: RotationModel, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, Any]:
        """Cross-entropy over the four rotations, and the batch's accuracy (%)."""
        if inputs.ndim == 5:  # all rotations: (N, 4, C, S, S)
            inputs, targets = inputs.flatten(0, 1), targets.flatten()
        logits = model(inputs)
        accuracy = (logits.argmax(1) == targets).float().mean() * 100
        return {"loss": F.cross_entropy(logits, targets), "accuracy": accuracy}
