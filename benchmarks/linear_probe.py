"""linear_probe: one shared trunk pass for all layers' heads vs one probe per layer (the naive baseline).

Prints the time of each and the ratio naive / shared, measured in the same run on the same data:
    OMP_NUM_THREADS=1 python benchmarks/linear_probe.py [--backbone resnet18] [--images 96] [--size 64]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from sslreg_linear import LinearProbe, LinearProbeConfig

from sslreg import DatasetConfig, DatasetSource, EvalContext, Sample
from sslreg.plugins import load_plugins


class ColourSquaresConfig(DatasetConfig):
    split: str = "train"
    count: int = 96


class ColourSquares(DatasetSource):
    """Four classes of coloured squares on noise, generated in memory."""

    name: ClassVar[str] = "colour_squares"
    Config = ColourSquaresConfig
    target_kind: ClassVar[str] = "class"
    colours = [(220, 30, 30), (30, 200, 40), (40, 60, 230), (230, 220, 40)]

    def __init__(self, config: ColourSquaresConfig) -> None:
        super().__init__(config)
        rng = np.random.default_rng(0 if config.split == "train" else 1)
        self.samples = []
        for i in range(config.count):
            image = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
            top, left = rng.integers(0, 24, 2)
            image[top : top + 40, left : left + 40] = self.colours[i % 4]
            self.samples.append(Sample(image, i % 4, str(i)))

    @property
    def class_names(self) -> list[str]:
        return ["red", "green", "blue", "yellow"]

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> Sample:
        return self.samples[index]


def build_dataset(spec) -> DatasetSource:
    return ColourSquares(ColourSquaresConfig.model_validate(spec.model_dump()))


def timed(backbone, layers, args, context) -> float:
    config = LinearProbeConfig(
        name="linear_probe",
        layers=layers,
        train={"name": "colour_squares", "count": args.images},
        test={"name": "colour_squares", "split": "test", "count": args.images // 2},
        image_size=args.size,
        epochs=args.epochs,
        lr_steps=[],
        batch_size=32,
    )
    start = time.perf_counter()
    LinearProbe(config).evaluate(backbone, context)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    registry = load_plugins([ep for ep in metadata.entry_points(group="sslreg") if ep.name == "backbones"]).registry
    backbone = registry.build("backbone", {"name": args.backbone})
    context = EvalContext(torch.device("cpu"), Path(tempfile.mkdtemp()), 0, build_dataset)
    timed(backbone, [backbone.layer_names[0]], args, context)  # warm-up (lazy imports, allocator)
    shared = timed(backbone, "all", args, context)
    naive = sum(timed(backbone, [layer], args, context) for layer in backbone.layer_names)
    print(
        f"{args.backbone}, {len(backbone.layer_names)} layers, {args.images} train images at {args.size}px,"
        f" {args.epochs} epochs"
    )
    print(f"one probe per layer (baseline): {naive:.2f} s")
    print(f"all heads from one trunk pass:  {shared:.2f} s")
    print(f"speed-up (baseline / shared):   {naive / shared:.2f}x")


if __name__ == "__main__":
    main()
