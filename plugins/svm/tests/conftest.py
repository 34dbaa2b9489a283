"""Tiny fixtures for the SVM plugin's tests: a counting random trunk, a VOC-layout folder and its reader."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, ClassVar, Sequence

import cv2
import numpy as np
import pytest
import torch
from pydantic import Field

from sslreg import BackboneConfig, DatasetConfig, DatasetSource, EvalContext, Sample
from sslreg.testing import TinyBackbone

#: The VOC devkit's 20 classes, so the fixture folder reads with the real voc07 source as well.
CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
PALETTE = np.random.default_rng(123).integers(60, 256, (len(CLASSES), 3))


class CountingTrunk(TinyBackbone):
    """The conformance kit's tiny trunk, seeded, counting forward passes (a cache hit does none) and keeping the last input."""

    def __init__(self, config: BackboneConfig) -> None:
        torch.manual_seed(config.seed or 0)
        super().__init__(config)
        self.calls = 0

    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        self.calls += 1
        self.last_input = x
        return super().forward(x, layers)


class VOCFolderConfig(DatasetConfig):
    """Options of the test-only VOC reader."""

    root: Path = Field(description="Folder holding VOC2007/.")
    split: str = Field("trainval", description="trainval or test.")


class VOCFolder(DatasetSource):
    """Test-only reader of a VOC devkit layout: JPEGImages + ImageSets/Main/<class>_<split>.txt (1/-1/0)."""

    name: ClassVar[str] = "voc_folder_test"
    Config: ClassVar[type[VOCFolderConfig]] = VOCFolderConfig
    target_kind: ClassVar[str] = "multilabel"

    def __init__(self, config: VOCFolderConfig) -> None:
        super().__init__(config)
        main = config.root / "VOC2007" / "ImageSets" / "Main"
        columns = []
        for cls in CLASSES:
            rows = [line.split() for line in (main / f"{cls}_{config.split}.txt").read_text().splitlines()]
            self.ids = [row[0] for row in rows]
            columns.append([int(row[1]) for row in rows])
        self.labels = np.array(columns, dtype=np.int8).T

    @property
    def class_names(self) -> list[str]:
        return list(CLASSES)

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> Sample | None:
        path = self.config.root / "VOC2007" / "JPEGImages" / f"{self.ids[index]}.jpg"
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            return None
        return Sample(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), self.labels[index], self.ids[index])


def make_voc(root: Path, trainval: int = 12, test: int = 12, seed: int = 0) -> Path:
    """Write a VOC2007 layout: each present class draws its own colour patch in its own grid cell over noise."""
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
            if present:
                y, x = 10 * (column // 5) + 1, 10 * (column % 5) + 1
                image[y : y + 8, x : x + 8] = PALETTE[column]
            lines[cls][split].append(f"{index:06d} {label:2d}")
        cv2.imwrite(str(images / f"{index:06d}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    for cls, splits in lines.items():
        for split, rows in splits.items():
            (main / f"{cls}_{split}.txt").write_text("\n".join(rows) + "\n")
    return root


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
def voc_dataset(voc_root: Path) -> Callable[..., VOCFolder]:
    """Factory of readers of the fixture folder: ``voc_dataset(split="trainval", **DatasetConfig options)``."""
    return lambda split="trainval", **options: VOCFolder(
        VOCFolderConfig(name="voc_folder_test", root=voc_root, split=split, **options)
    )


@pytest.fixture
def context(tmp_path: Path, voc_dataset: Callable[..., VOCFolder]) -> EvalContext:
    """An EvalContext whose datasets are read from the fixture folder; `split: train` maps to trainval."""

    def build(spec: object) -> VOCFolder:
        options = dict(spec if isinstance(spec, dict) else spec.model_dump())
        split = {"train": "trainval"}.get(options.get("split"), options.get("split", "trainval"))
        extra = {key: value for key, value in options.items() if key not in ("name", "split")}
        return voc_dataset(split, **extra)

    return EvalContext(device=torch.device("cpu"), cache_dir=tmp_path / "cache", seed=0, build_dataset=build)
