"""PretextTask: turns unlabeled images into (input, target) pairs and trains a trunk on them.

The training contract, the same for first- and third-party tasks:

* ``make_sample(image, rng) -> (inputs, targets)``; ``targets`` may be None (contrastive tasks), ``inputs`` any
  tensor, tuple or dict of tensors. The core stacks them into a batch.
* ``build_model(trunk) -> PretextModel``: every module, parameter and buffer the task needs (projection heads, a
  momentum encoder, a queue) lives on the returned model, so the runner moves it to the device, checkpoints and
  restores it with the rest. Parameters with ``requires_grad=False`` are not trained (a momentum encoder).
* ``loss(model, inputs, targets[, context])`` returns the loss tensor, or a dict with ``"loss"`` and other named
  scalars (accuracy, ...) that are logged to the console, TensorBoard and the run's results. A task whose
  ``loss`` takes a ``context`` parameter receives the :class:`StepContext` of the step.
* ``before_step(model, context)`` / ``after_step(model, context)``: run (under ``torch.no_grad``) before the
  step's forward pass and after its optimiser step: schedules, momentum updates, queue updates.
* ``evaluated_trunk(model)``: the trunk that is saved to trunk.pth and evaluated (default ``model.trunk``; e.g. a
  momentum or teacher encoder).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from sslreg.backbone import Backbone
from sslreg.component import Component, ComponentConfig
from sslreg.inputs import InputContract

#: What ``loss`` returns: the loss, or ``{"loss": loss, "name": scalar, ...}`` (extra scalars are logged).
LossOutput = torch.Tensor | dict[str, Any]


class PretextConfig(ComponentConfig):
    """Options every pretext task accepts (tasks add their own, e.g. ``num_permutations``)."""


@dataclass(frozen=True)
class StepContext:
    """Where training is: the step being taken (0-based ``iteration`` of ``max_iters``), its epoch, and the
    process group (``rank`` of ``world_size`` DDP processes)."""

    iteration: int = 0
    epoch: int = 0
    max_iters: int = 1
    max_epochs: int = 1
    rank: int = 0
    world_size: int = 1

    @property
    def progress(self) -> float:
        """Fraction of training done before this step, in [0, 1)."""
        return self.iteration / max(self.max_iters, 1)

    def cosine(self, start: float, end: float) -> float:
        """A value going from ``start`` (first step) to ``end`` (last step) along a half cosine (BYOL's schedule)."""
        last = max(self.max_iters - 1, 1)
        return end - (end - start) * (math.cos(math.pi * min(self.iteration, last) / last) + 1) / 2


class PretextModel(nn.Module):
    """Trunk plus pretext head, and whatever else the task owns (set more attributes in a subclass).

    Checkpoints keep the trunk under ``trunk.`` so evaluators can load it alone; every other module, parameter
    and buffer is checkpointed under its attribute name.
    """

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
    def make_sample(self, image: np.ndarray, rng: np.random.Generator) -> tuple[Any, Any]:
        """One training pair (inputs, targets or None) from one RGB uint8 image; all randomness from ``rng``."""

    @abstractmethod
    def build_model(self, trunk: Backbone) -> PretextModel:
        """Trunk plus this task's head and any other modules and buffers it trains or keeps."""

    @abstractmethod
    def loss(self, model: PretextModel, inputs: Any, targets: Any) -> LossOutput:
        """Training loss of ``model`` on a collated batch: a scalar tensor, or a dict of ``"loss"`` and extra
        named scalars to log. Declare a ``context: StepContext | None = None`` parameter to receive the step."""

    def before_step(self, model: PretextModel, context: StepContext) -> None:
        """Before the forward pass of every step (under ``torch.no_grad``): schedules; default nothing."""

    def after_step(self, model: PretextModel, context: StepContext) -> None:
        """After the optimiser step of every step (under ``torch.no_grad``): momentum and queue updates;
        default nothing."""

    def evaluated_trunk(self, model: PretextModel) -> Backbone:
        """The trunk saved to trunk.pth and evaluated: ``model.trunk`` unless the task says otherwise (e.g. a
        momentum or teacher encoder, a Backbone of the same kind as ``model.trunk``)."""
        return model.trunk
