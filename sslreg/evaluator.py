"""Evaluator: scores a frozen trunk layer by layer on labeled data."""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import AfterValidator, BaseModel, Field, field_validator

from sslreg.backbone import Backbone
from sslreg.component import Component, ComponentConfig
from sslreg.dataset import DatasetSource, DataSpec
from sslreg.errors import UserError


def _increasing_steps(steps: list[int]) -> list[int]:
    if any(step < 1 for step in steps) or any(b <= a for a, b in zip(steps, steps[1:])):
        raise ValueError(f"lr_steps must be strictly increasing epochs or iterations ≥ 1, got {steps}")
    return steps


#: An option listing when a learning rate decays (epochs or iterations, as its schedule counts): increasing, ≥ 1.
LrSteps = Annotated[list[int], AfterValidator(_increasing_steps)]


class EvaluatorConfig(ComponentConfig):
    """Options every evaluator accepts."""

    layers: Literal["all"] | list[str] = Field("all", description="Trunk layers to probe ('all' or a list).")


class LabeledDataConfig(EvaluatorConfig):
    """Options of evaluators that fit on one labelled set and score on another (SVMs, linear probes)."""

    train: DataSpec = Field(
        default_factory=lambda: DataSpec(name="embedded_shapes", split="train"),
        description="Labelled training data (protocol scale: VOC07 trainval, Places205 train).",
    )
    test: DataSpec = Field(
        default_factory=lambda: DataSpec(name="embedded_shapes", split="test"),
        description="Labelled test data with the same classes (protocol scale: VOC07 test, Places205 val).",
    )
    image_size: int | None = Field(
        None, ge=16, le=1024, description="Square input size (None: the trunk's protocol size, 224/227)."
    )
    device: str | None = Field(None, description="Torch device, e.g. 'cuda:0' (None: the runner's device).")

    @field_validator("device")
    @classmethod
    def _torch_device(cls, device: str | None) -> str | None:
        if device is not None:
            try:
                torch.device(device)
            except (RuntimeError, ValueError):
                raise ValueError(f"not a torch device: {device!r} (e.g. 'cpu', 'cuda', 'cuda:1')") from None
        return device


def resolve_device(name: str | None, default: torch.device) -> torch.device:
    """The configured device (checked to exist here), else ``default``; a ValueError names a missing GPU."""
    if name is None:
        return default
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"device {name!r} is not a torch device (e.g. 'cpu', 'cuda', 'cuda:1')") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r}: CUDA is not available on this machine")
    return device


class LayerScore(BaseModel):
    """One metric on one layer: the mean over ``n`` runs/draws and their std (None for a single run)."""

    mean: float
    std: float | None = None
    n: int = 1

    @classmethod
    def of(cls, values: Sequence[float]) -> LayerScore:
        """Mean and (population) std of several runs."""
        values = [float(v) for v in values]
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) if len(values) > 1 else None
        return cls(mean=mean, std=std, n=len(values))

    def __str__(self) -> str:
        return f"{self.mean:.1f}" if self.std is None else f"{self.mean:.1f} ± {self.std:.1f}"


class EvalResult(BaseModel):
    """A metric per layer, e.g. VOC07 SVM mAP for conv1..conv5; ``details`` holds per-class values etc."""

    evaluator: str
    metric: str
    higher_is_better: bool = True
    layers: dict[str, LayerScore]
    details: dict[str, Any] = Field(default_factory=dict)


@dataclass
class EvalContext:
    """What the runner hands an evaluator: where to compute, where to cache, how to build datasets."""

    device: torch.device
    cache_dir: Path
    seed: int
    build_dataset: Callable[[DataSpec | dict], DatasetSource]
    extras: dict[str, Any] = field(default_factory=dict)
    #: This process's rank and the number of ranks running ``evaluate`` together (torch.distributed initialised);
    #: (0, 1) unless the evaluator declares ``distributed = True`` and the run is under torchrun.
    rank: int = 0
    world_size: int = 1


class Evaluator(Component):
    """Abstract evaluator. ``evaluate`` receives a frozen trunk and returns one result per metric."""

    kind: ClassVar[str] = "evaluator"
    Config: ClassVar[type[ComponentConfig]] = EvaluatorConfig
    consumes: ClassVar[str] = "a frozen Backbone and labeled datasets"
    produces: ClassVar[str] = "EvalResult: metric per layer"
    #: True: under torchrun the runner calls ``evaluate`` on every rank with ``context.rank``/``world_size`` set
    #: (the evaluator shards its data and reduces its metrics; every rank returns the same results). False: rank 0
    #: alone evaluates and ``context.world_size`` is 1, so the evaluator must not use collectives.
    distributed: ClassVar[bool] = False

    def __init__(self, config: EvaluatorConfig) -> None:
        self.config = config

    @abstractmethod
    def evaluate(self, backbone: Backbone, context: EvalContext) -> list[EvalResult]:
        """Score ``backbone`` (already frozen) on each requested layer."""
