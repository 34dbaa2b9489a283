"""Tiny test-only components for the runner tests (no plugin needed): a BN-free trunk, rotation prediction,
an in-memory image source, a nearest-centroid evaluator, a distributed feature-mean evaluator; plus a script
entry point for subprocess runs.

    python tests/runner_helpers.py CONFIG.yaml     # run_plan on the test registry, exit with its code
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from sslreg import (
    Backbone,
    BackboneConfig,
    DatasetConfig,
    DatasetSource,
    DataSpec,
    EvalContext,
    EvalResult,
    Evaluator,
    EvaluatorConfig,
    LayerScore,
    PoolSpec,
    Preprocess,
    PretextConfig,
    PretextModel,
    PretextTask,
    Sample,
    make_loader,
)
from sslreg.registry import Registry


class TinyNetConfig(BackboneConfig):
    width: int = Field(4, ge=1, le=64, description="Channels of the first layer.")


class TinyNet(Backbone):
    """Two strided convolutions, no BatchNorm (so DDP and one process agree exactly)."""

    name = "tinynet"
    Config = TinyNetConfig
    layer_names = ("c1", "c2")
    input_size = 16

    def __init__(self, config: TinyNetConfig) -> None:
        super().__init__(config)
        self.c1 = nn.Conv2d(config.in_channels, config.width, 3, stride=2, padding=1)
        self.c2 = nn.Conv2d(config.width, 2 * config.width, 3, stride=2, padding=1)

    @property
    def layer_channels(self) -> dict[str, int]:
        return {"c1": self.config.width, "c2": 2 * self.config.width}

    @property
    def layer_strides(self) -> dict[str, int]:
        return {"c1": 2, "c2": 4}

    @property
    def pool_specs(self) -> dict[str, PoolSpec]:
        return {"c1": PoolSpec(4, 4, 0, 2), "c2": PoolSpec(2, 2, 0, 2)}

    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = self.resolve_layers(layers)
        out = {}
        x = F.relu(self.c1(x))
        out["c1"] = x
        if "c2" in wanted:
            out["c2"] = F.relu(self.c2(x))
        return {name: out[name] for name in wanted}


class RotationConfig(PretextConfig):
    size: int = Field(16, ge=8, le=64, description="Side of the square input.")


class Rotation(PretextTask):
    """Predict which of 4 rotations was applied (a tiny real pretext task)."""

    name = "rotation"
    Config = RotationConfig
    complexity_field = ""

    def __init__(self, config: RotationConfig) -> None:
        super().__init__(config)
        self.prepared = 0

    def prepare(self, images: Any, cache_dir: Path) -> None:
        self.prepared = sum(1 for _ in images)

    def make_sample(self, image: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.config.size
        top = int(rng.integers(0, image.shape[0] - size + 1))
        left = int(rng.integers(0, image.shape[1] - size + 1))
        crop = image[top : top + size, left : left + size]
        k = int(rng.integers(0, 4))
        crop = np.ascontiguousarray(np.rot90(crop, k))
        tensor = torch.from_numpy(crop).permute(2, 0, 1).float() / 127.5 - 1.0
        return tensor, torch.tensor(k)

    def build_model(self, trunk: Backbone) -> PretextModel:
        return PretextModel(trunk, nn.Linear(trunk.layer_channels["c2"], 4))

    def loss(self, model: PretextModel, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        features = model.trunk(inputs, ["c2"])["c2"].mean(dim=(2, 3))
        return F.cross_entropy(model.head(features), targets)


class MemoryConfig(DatasetConfig):
    size: int = Field(32, ge=1, description="Number of images.")
    image_size: int = Field(20, ge=8, description="Side of each image.")
    bad_every: int = Field(0, ge=0, description="Every Nth image is unreadable (0: none).")
    seed: int = Field(0, description="Pixel seed.")
    delay: float = Field(0.0, ge=0, description="Seconds to sleep per image (to make a run slow enough to kill).")


class MemorySource(DatasetSource):
    """Procedural images: a bright square at a class-dependent corner on noise; label = corner (4 classes)."""

    name = "memory"
    Config = MemoryConfig
    target_kind = "class"

    def __init__(self, config: MemoryConfig) -> None:
        super().__init__(config)
        indices = np.arange(config.size)
        if config.subset is not None and config.subset < config.size:
            indices = np.sort(
                np.random.default_rng(config.subset_seed).choice(config.size, config.subset, replace=False)
            )
        self.indices = indices

    @property
    def class_names(self) -> list[str]:
        return ["tl", "tr", "bl", "br"]

    def __len__(self) -> int:
        return len(self.indices)

    def load(self, index: int) -> Sample | None:
        item = int(self.indices[index])
        if self.config.delay:
            time.sleep(self.config.delay)
        if self.config.bad_every and item % self.config.bad_every == 0:
            return None
        rng = np.random.default_rng([self.config.seed, item])
        s = self.config.image_size
        image = rng.integers(0, 80, size=(s, s, 3), dtype=np.uint8)
        label = item % 4
        half = s // 2
        r, c = (label // 2) * half, (label % 2) * half
        image[r : r + half, c : c + half] = 230
        return Sample(image, label, f"mem/{item}")


class MemoryStream(MemorySource):
    """The same images as a stream without random access (like webdataset shards)."""

    name = "memory_stream"
    is_stream = True

    def stream(self, rank: int = 0, world_size: int = 1, epoch: int = 0):
        for index in range(rank, len(self), world_size):
            yield MemorySource.load(self, index)

    def load(self, index: int) -> Sample | None:
        raise NotImplementedError("memory_stream is a stream")


class CentroidConfig(EvaluatorConfig):
    data: DataSpec = Field(default_factory=lambda: DataSpec(name="memory", size=16), description="Labeled data.")
    draws: int = Field(1, ge=1, le=10, description="Random half-splits averaged.")


class Centroid(Evaluator):
    """Nearest-centroid accuracy per layer on random half splits (mean ± std over draws)."""

    name = "centroid"
    Config = CentroidConfig

    def evaluate(self, backbone: Backbone, context: EvalContext) -> list[EvalResult]:
        source = context.build_dataset(self.config.data)
        samples = [source.load(i) for i in range(len(source))]
        samples = [s for s in samples if s is not None]
        prepare = Preprocess(16, backbone.input_contract)  # the trunk's input contract, as real evaluators do
        x = torch.stack([torch.from_numpy(prepare(s.image)) for s in samples]).to(context.device)
        y = np.array([s.target for s in samples])
        layers = backbone.resolve_layers(self.config.layers)
        with torch.no_grad():
            features = {k: v.flatten(1).cpu().numpy() for k, v in backbone(x, layers).items()}
        scores = {}
        for layer in layers:
            values = []
            for draw in range(self.config.draws):
                order = np.random.default_rng([context.seed, draw]).permutation(len(y))
                train, test = order[: len(y) // 2], order[len(y) // 2 :]
                classes = sorted(set(y[train]))
                centres = np.stack([features[layer][train][y[train] == c].mean(0) for c in classes])
                distance = ((features[layer][test][:, None] - centres[None]) ** 2).sum(-1)
                values.append(100.0 * float((np.array(classes)[distance.argmin(1)] == y[test]).mean()))
            scores[layer] = LayerScore.of(values)
        return [EvalResult(evaluator=self.name, metric="accuracy", layers=scores)]


class FeatureMean(Evaluator):
    """Mean activation per layer over a dataset, each rank reading its share (a distributed evaluator)."""

    name = "feature_mean"
    Config = CentroidConfig
    distributed = True

    def evaluate(self, backbone: Backbone, context: EvalContext) -> list[EvalResult]:
        source = context.build_dataset(self.config.data)
        prepare = Preprocess(16, backbone.input_contract)
        loader = make_loader(
            source, _Prepared(prepare), batch_size=3, seed=context.seed, rank=context.rank,
            world_size=context.world_size,
        )  # fmt: skip
        layers = backbone.resolve_layers(self.config.layers)
        sums = torch.zeros(len(layers) + 1, dtype=torch.float64)
        with torch.no_grad():
            for batch in loader:
                outputs = backbone(batch.data.to(context.device), layers)
                for i, layer in enumerate(layers):
                    sums[i] += outputs[layer].double().flatten(1).mean(1).sum().cpu()
                sums[-1] += len(batch.data)
        if context.world_size > 1:
            torch.distributed.all_reduce(sums)
        count = int(sums[-1])
        scores = {layer: LayerScore.of([float(sums[i]) / count]) for i, layer in enumerate(layers)}
        details = {"count": count, "world_size": context.world_size}
        return [EvalResult(evaluator=self.name, metric="mean activation", layers=scores, details=details)]


class _Prepared:
    """make_loader's transform: the image through ``prepare`` as a tensor."""

    def __init__(self, prepare: Preprocess) -> None:
        self.prepare = prepare

    def __call__(self, sample: Sample, rng: np.random.Generator) -> torch.Tensor:
        return torch.from_numpy(self.prepare(sample.image))


def make_registry() -> Registry:
    """A registry holding only the test components."""
    registry = Registry()
    for cls in (TinyNet, Rotation, MemorySource, MemoryStream, Centroid, FeatureMean):
        registry.add(cls, plugin="test", distribution="tests", version="0")
    return registry


def experiment_dict(tmp: Path, **schedule: Any) -> dict[str, Any]:
    """A tiny complete experiment (pretrain + evaluate) writing to ``tmp``."""
    return {
        "name": "tiny",
        "seed": 3,
        "work_dir": str(tmp),
        "pretrain": {
            "pretext": {"name": "rotation"},
            "backbone": {"name": "tinynet"},
            "data": {"name": "memory", "size": 32},
            "schedule": {"epochs": 2, "batch_size": 8, "lr": 0.05, "log_interval": 2, **schedule},
        },
        "evaluate": [{"name": "centroid", "layers": "all", "data": {"name": "memory", "size": 16, "seed": 1}}],
    }


def main(argv: list[str]) -> int:
    from sslreg.cli import run_guarded
    from sslreg.config import load_plan
    from sslreg.runner import run_plan

    registry = make_registry()
    return run_guarded(lambda: run_plan(load_plan(argv[0], registry, argv[1:]), registry))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
