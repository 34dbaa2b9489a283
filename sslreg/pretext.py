"""PretextTask: turns unlabeled images into (input, target) pairs and trains a trunk on them."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from sslreg.backbone import Backbone
from sslreg.component import Component, ComponentConfig
from sslreg.inputs import InputContract


class PretextConfig(ComponentConfig):
    """Options every pretext task accepts (tasks add their own, e.g. ``num_permutations``)."""


class PretextModel(nn.Module):
    """Trunk plus pretext head. Checkpoints keep the trunk under ``trunk.`` so evaluators can load it alone."""

    def __init__(self, trunk: Backbone, head: nn.Module) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = head


class PretextTask(Component):
    """Abstract pretext task. Instances are picklable: ``make_sample`` runs in DataLoader workers."""

    kind: ClassVar[str] = "pretext"
    Config: ClassVar[type[ComponentConfig]] = PretextConfig
    consumes: ClassVar[str] = "unlabeled RGB images (H, W, 3) uint8"
    produces: ClassVar[str] = "(input tensor, target tensor) pairs; a trunk + head model; a scalar loss"

    #: Input channels the trunk must accept (1 for colorization's L channel).
    input_channels: ClassVar[int] = 3
    #: Name of the config field that sets the problem complexity (the paper's third axis).
    complexity_field: ClassVar[str] = ""

    def __init__(self, config: PretextConfig) -> None:
        self.config = config

    @property
    def complexity(self) -> tuple[str, Any]:
        """(field, value) of the problem complexity, e.g. ("num_permutations", 2000)."""
        return self.complexity_field, getattr(self.config, self.complexity_field, None)

    def input_contract(self) -> InputContract:
        """How this task feeds its trunk (colour space, normalisation); stored with the weights so that evaluators
        feed the trained trunk the same way. Default: ImageNet-normalised RGB (L of Lab, (L - 50) / 50, for 1 channel).
        """
        if self.input_channels == 1:
            return InputContract(space="lab_l", mean=(50.0,), std=(50.0,))
        return InputContract()

    @property
    def prepare_limit(self) -> int:
        """How many training images :meth:`prepare` is offered (a deterministic random sample); default 1000."""
        return 1000

    def prepare(self, images: Any, cache_dir: Path) -> None:
        """Fit data-dependent state before training (e.g. colour priors); default: nothing.

        ``images`` is an iterable of RGB uint8 arrays drawn from the training set.
        """

    @abstractmethod
    def make_sample(self, image: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """One training pair from one RGB uint8 image; all randomness from ``rng`` (deterministic)."""

    @abstractmethod
    def build_model(self, trunk: Backbone) -> PretextModel:
        """Trunk plus this task's head."""

    @abstractmethod
    def loss(self, model: PretextModel, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Scalar training loss of ``model`` on a collated batch."""
