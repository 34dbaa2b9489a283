"""Tiny fixtures for linear_probe: a call-counting two-layer trunk and coloured-square datasets made in memory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from sslreg import BackboneConfig, DatasetConfig, DatasetSource, DataSpec, EvalContext, Sample
from sslreg.testing import TinyBackbone

COLOURS = [(220, 30, 30), (30, 200, 40), (40, 60, 230), (230, 220, 40), (200, 40, 210)]


class CountingTrunk(TinyBackbone):
    """The conformance kit's two-layer trunk (l1 stride 2, l2 stride 4), counting its forward calls."""

    def __init__(self, config: BackboneConfig | None = None) -> None:
        super().__init__(config)
        self.calls = 0

    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        self.calls += 1
        return super().forward(x, layers)


def make_trunk(in_channels: int = 3, seed: int = 0) -> CountingTrunk:
    torch.manual_seed(seed)
    return CountingTrunk(BackboneConfig(name=CountingTrunk.name, in_channels=in_channels))


def square_image(colour: tuple[int, int, int], rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """A grey noisy background with a large square of ``colour`` at a random place."""
    image = rng.integers(90, 150, size=(size, size, 3)).astype(np.uint8)
    side = int(rng.integers(size // 2, size - 4))
    top, left = rng.integers(0, size - side, size=2)
    image[top : top + side, left : left + side] = colour
    return image


class SquaresConfig(DatasetConfig):
    split: str = "train"
    per_class: int = 8
    num_classes: int = 3
    unreadable: list[int] = []


class Squares(DatasetSource):
    """Single-label: class c is a square of COLOURS[c]."""

    name: ClassVar[str] = "squares"
    Config = SquaresConfig
    target_kind: ClassVar[str] = "class"

    def __init__(self, config: SquaresConfig) -> None:
        super().__init__(config)
        rng = np.random.default_rng(0 if config.split == "train" else 1)
        self.samples = [
            Sample(square_image(COLOURS[c], rng), c, f"{config.split}/{c}/{i}")
            for i in range(config.per_class)
            for c in range(config.num_classes)
        ]

    @property
    def class_names(self) -> list[str]:
        return [f"colour{c}" for c in range(self.config.num_classes)]

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> Sample | None:
        return None if index in self.config.unreadable else self.samples[index]


class StreamedSquares(Squares):
    """The same images, stream-only, in a per-epoch shuffled order."""

    name: ClassVar[str] = "streamed_squares"
    is_stream: ClassVar[bool] = True

    def load(self, index: int) -> Sample | None:
        raise NotImplementedError("stream only")

    def stream(self, rank: int = 0, world_size: int = 1, epoch: int = 0):
        order = np.random.default_rng(epoch).permutation(len(self.samples))
        for index in order[rank::world_size]:
            yield self.samples[index]


class MultiSquaresConfig(DatasetConfig):
    split: str = "train"
    count: int = 24


class MultiSquares(DatasetSource):
    """Multi-label: red and/or blue squares; label 1 present, -1 absent, 0 difficult (every 5th blue label)."""

    name: ClassVar[str] = "multi_squares"
    Config = MultiSquaresConfig
    target_kind: ClassVar[str] = "multilabel"

    def __init__(self, config: MultiSquaresConfig) -> None:
        super().__init__(config)
        rng = np.random.default_rng(2 if config.split == "train" else 3)
        self.samples = []
        for i in range(config.count):
            red, blue = i % 2 == 1, (i // 2) % 2 == 1
            image = rng.integers(90, 150, size=(32, 32, 3)).astype(np.uint8)
            if red:
                image[2:14, 2:30] = COLOURS[0]
            if blue:
                image[18:30, 2:30] = COLOURS[2]
            target = np.array([1 if red else -1, 1 if blue else -1])
            if i % 5 == 0:
                target[1] = 0
            self.samples.append(Sample(image, target, str(i)))

    @property
    def class_names(self) -> list[str]:
        return ["red", "blue"]

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> Sample | None:
        return self.samples[index]


SOURCES: dict[str, type[DatasetSource]] = {cls.name: cls for cls in (Squares, StreamedSquares, MultiSquares)}


def build_dataset(spec: DataSpec | dict[str, Any]) -> DatasetSource:
    options = spec.model_dump() if isinstance(spec, DataSpec) else dict(spec)
    cls = SOURCES[options["name"]]
    return cls(cls.Config.model_validate(options))


@pytest.fixture
def context(tmp_path: Path) -> EvalContext:
    return EvalContext(device=torch.device("cpu"), cache_dir=tmp_path, seed=0, build_dataset=build_dataset)


@pytest.fixture
def trunk_factory() -> Callable[..., CountingTrunk]:
    return make_trunk
