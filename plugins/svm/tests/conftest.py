"""Tiny fixtures for the SVM plugin's tests: a counting random trunk and a VOC-layout folder read by voc07."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from sslreg import BackboneConfig, DatasetSource, EvalContext
from sslreg.plugins import get_registry
from sslreg.registry import UnknownComponent
from sslreg.testing import TinyBackbone

#: The VOC devkit's 20 classes (voc07 reads a class file for each).
CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
PALETTE = np.random.default_rng(123).integers(60, 256, (len(CLASSES), 3))


class CountingTrunk(TinyBackbone):
    """The conformance kit's tiny trunk, seeded; counts forward passes (a cache hit does none), keeps the last input."""

    def __init__(self, config: BackboneConfig) -> None:
        torch.manual_seed(config.seed or 0)
        super().__init__(config)
        self.calls = 0

    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        self.calls += 1
        self.last_input = x
        return super().forward(x, layers)


def make_voc(
    root: Path, trainval: int = 12, test: int = 12, seed: int = 0, absent_in_test: tuple[str, ...] = ()
) -> Path:
    """Write a VOC2007 layout: each present class draws its own colour patch in its own grid cell over noise.

    Classes in ``absent_in_test`` never appear in the test split.
    """
    rng = np.random.default_rng(seed)
    images, main = root / "VOC2007" / "JPEGImages", root / "VOC2007" / "ImageSets" / "Main"
    images.mkdir(parents=True)
    main.mkdir(parents=True)
    lines: dict[str, dict[str, list[str]]] = {cls: {"trainval": [], "test": []} for cls in CLASSES}
    for index in range(trainval + test):
        split = "trainval" if index < trainval else "test"
        image = rng.integers(0, 50, (50, 50, 3), dtype=np.uint8)
        for column, cls in enumerate(CLASSES):
            present = (index + column) % 2 == 0 or rng.random() < 0.2
            label = 1 if present else (0 if rng.random() < 0.15 else -1)
            if split == "test" and cls in absent_in_test:
                present, label = False, -1
            if present:
                y, x = 10 * (column // 5) + 1, 10 * (column % 5) + 1
                image[y : y + 8, x : x + 8] = PALETTE[column]
            lines[cls][split].append(f"{index:06d} {label:2d}")
        cv2.imwrite(str(images / f"{index:06d}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    for cls, splits in lines.items():
        for split, rows in splits.items():
            (main / f"{cls}_{split}.txt").write_text("\n".join(rows) + "\n")
    return root


class NaNTrunk(CountingTrunk):
    """The tiny trunk with a NaN in the l2 features of every fourth image of a batch (a diverged layer)."""

    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        out = super().forward(x, layers)
        if "l2" in out:
            out["l2"] = out["l2"].clone()
            out["l2"][::4, 0, 0, 0] = float("nan")
        return out


@pytest.fixture
def nan_trunk() -> NaNTrunk:
    return NaNTrunk(BackboneConfig(name="tiny", seed=0)).freeze()


@pytest.fixture
def voc_data_without(tmp_path: Path) -> Callable[..., dict[str, dict[str, str]]]:
    """``voc_data_without(*classes)``: data options of a VOC folder where those classes never appear at test."""

    def data(*classes: str) -> dict[str, dict[str, str]]:
        root = make_voc(tmp_path / ("voc_without_" + "_".join(classes)), absent_in_test=classes)
        return {split: {"name": "voc07", "root": str(root), "split": name}
                for split, name in (("train", "trainval"), ("test", "test"))}  # fmt: skip

    return data


@pytest.fixture
def voc_root(tmp_path: Path) -> Path:
    return make_voc(tmp_path / "voc")


@pytest.fixture
def make_trunk() -> Callable[..., CountingTrunk]:
    """Factory of frozen tiny trunks (options as BackboneConfig's)."""
    return lambda **options: CountingTrunk(BackboneConfig(name="tiny", **{"seed": 0, **options})).freeze()


@pytest.fixture
def trunk(make_trunk: Callable[..., CountingTrunk]) -> CountingTrunk:
    return make_trunk()


@pytest.fixture
def voc_dataset(voc_root: Path) -> Callable[..., DatasetSource]:
    """Factory of sslreg-datasets' voc07 sources on the fixture folder: ``voc_dataset(split="trainval", **options)``."""
    registry = get_registry()
    try:
        registry.get("dataset", "voc07")
    except UnknownComponent:
        pytest.skip("needs the voc07 source of sslreg-datasets")
    return lambda split="trainval", **options: registry.build(
        "dataset", {"name": "voc07", "root": str(voc_root), "split": split, **options}
    )


@pytest.fixture
def voc_data(voc_root: Path, voc_dataset: Callable[..., DatasetSource]) -> dict[str, dict[str, str]]:
    """``train``/``test`` options of an SVM evaluator: voc07 trainval and test on the fixture folder."""
    return {split: {"name": "voc07", "root": str(voc_root), "split": name} for split, name in
            (("train", "trainval"), ("test", "test"))}  # fmt: skip


@pytest.fixture
def context(tmp_path: Path) -> EvalContext:
    """An EvalContext that builds datasets from the registry, as the runner does, on CPU, with seed 0."""

    def build(spec: object) -> DatasetSource:
        return get_registry().build("dataset", spec if isinstance(spec, dict) else spec.model_dump())

    return EvalContext(device=torch.device("cpu"), cache_dir=tmp_path / "cache", seed=0, build_dataset=build)


SCENE_COLOURS = [(230, 30, 30), (30, 210, 40), (40, 60, 230), (230, 220, 40)]


def write_places(root: Path, train_per_class: int = 6, val_per_class: int = 3) -> Path:
    """A Places205 layout: split csv lists, the category index, images256/<letter>/<class>/ of coloured squares."""
    rng = np.random.default_rng(0)
    split_dir = root / "trainvalsplit_places205"
    split_dir.mkdir(parents=True)
    names = [f"scene{c}" for c in range(len(SCENE_COLOURS))]
    (split_dir / "categoryIndex_places205.csv").write_text("".join(f"/s/{n} {c}\n" for c, n in enumerate(names)))
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        lines = []
        for c, name in enumerate(names):
            folder = root / "images256" / "s" / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                image = rng.integers(80, 170, (36, 36, 3), dtype=np.uint8)
                top, left = rng.integers(0, 8, 2)
                image[top : top + 28, left : left + 28] = SCENE_COLOURS[c]
                relative = f"s/{name}/{split}_{index}.jpg"
                cv2.imwrite(str(root / "images256" / relative), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                lines.append(f"{relative} {c}\n")
        (split_dir / f"{split}_places205.csv").write_text("".join(lines))
    return root


@pytest.fixture
def make_places() -> Callable[..., Path]:
    """``make_places(root, train_per_class=6, val_per_class=3)``: a Places205 folder of coloured squares."""
    return write_places
