"""What the VOC07 SVM and low-shot evaluators share: options, label conventions, solver choice, features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from pydantic import Field, PositiveFloat

from sslreg import Backbone, DataSpec, EvalContext, FeatureSet, LabeledDataConfig, extract_features, resolve_device
from sslreg_svm import reference, solver
from sslreg_svm.solver import COSTS, SVMSolution


class SVMEvalConfig(LabeledDataConfig):
    """Options of the linear-SVM benchmarks (docs/protocol.md#voc07-linear-svm); train/test are multi-label."""

    costs: list[PositiveFloat] = Field(
        default_factory=lambda: list(COSTS), min_length=1, description="SVM costs C to try (default: the 26)."
    )
    pos_weight: float = Field(2.0, gt=0, description="Class weight of positives (the reference's {1: 2, -1: 1}).")
    solver: Literal["fast", "sklearn"] = Field(
        "fast", description="'fast': batched torch solver; 'sklearn': the reference's LinearSVC, one fit at a time."
    )
    batch_size: int = Field(64, ge=1, le=4096, description="Images per forward pass when extracting features.")
    num_workers: int = Field(0, ge=0, le=64, description="Processes decoding and resizing images (0: in-process).")


@dataclass
class Split:
    """Pooled features per layer and devkit labels (N, C) of one data split."""

    features: FeatureSet
    labels: np.ndarray
    class_names: list[str]


def training_labels(labels: np.ndarray) -> np.ndarray:
    """Devkit labels {1, -1, 0=difficult} to training labels: difficult counts as negative, as in the reference."""
    return np.where(np.asarray(labels) == 1, 1, -1).astype(np.int8)


def check_labels(labels: np.ndarray, where: str) -> np.ndarray:
    """``labels`` as an int8 (N, C) matrix of 1/-1/0, or a ValueError naming ``where``."""
    array = np.asarray(labels)
    if array.ndim != 2 or array.shape[1] < 1:
        raise ValueError(f"{where}: labels must be an (N, C) matrix, got shape {array.shape}")
    if not np.isin(array, (-1, 0, 1)).all():
        raise ValueError(f"{where}: labels must be 1 (present), -1 (absent) or 0 (difficult)")
    return array.astype(np.int8)


def normalize(features: np.ndarray) -> torch.Tensor:
    """float64 rows divided by (their L2 norm + 1e-5), as the reference feeds LinearSVC."""
    return solver.l2_normalize(torch.as_tensor(np.asarray(features, dtype=np.float64)))


def train(
    X: torch.Tensor, Y: np.ndarray, costs: list[float], kind: str, pos_weight: float, device: torch.device
) -> SVMSolution:
    """Fit every (class, cost) SVM with the chosen solver; Y in {1, -1, 0=ignore}."""
    if kind == "sklearn":
        return reference.train_svms_sklearn(X, Y, costs, pos_weight=pos_weight)
    return solver.train_svms(X, Y, costs, pos_weight=pos_weight, device=device)


def cross_validate(
    X: torch.Tensor, Y: np.ndarray, costs: list[float], kind: str, folds: int, pos_weight: float, device: torch.device
) -> np.ndarray:
    """Mean k-fold CV AP per (class, cost) with the chosen solver."""
    if kind == "sklearn":
        return reference.cross_validate_sklearn(X, Y, costs, folds=folds, pos_weight=pos_weight)
    return solver.cross_validate(X, Y, costs, folds=folds, pos_weight=pos_weight, device=device)


def device_of(config: SVMEvalConfig, context: EvalContext) -> torch.device:
    """The configured device, else the runner's."""
    return resolve_device(config.device, context.device)


def load_split(backbone: Backbone, context: EvalContext, spec: DataSpec, config: SVMEvalConfig, what: str) -> Split:
    """Build the dataset ``spec`` and extract (or reuse from the cache) pooled features of the requested layers."""
    dataset = context.build_dataset(spec)
    if dataset.target_kind != "multilabel":
        raise ValueError(f"{what} data {dataset.name!r} has {dataset.target_kind!r} targets; the SVM needs multilabel")
    features = extract_features(
        backbone,
        dataset,
        config.layers,
        device=device_of(config, context),
        batch_size=config.batch_size,
        image_size=config.image_size,
        num_workers=config.num_workers,
        cache_dir=context.cache_dir,
    )
    if features.targets is None:
        raise ValueError(f"{what} data {dataset.name!r} yielded no targets")
    labels = check_labels(features.targets, f"{what} data {dataset.name!r}")
    names = features.class_names or [f"class{index}" for index in range(labels.shape[1])]
    if len(names) != labels.shape[1]:
        raise ValueError(f"{what} data {dataset.name!r}: {len(names)} class names but {labels.shape[1]} label columns")
    return Split(features, labels, names)


def load_splits(backbone: Backbone, context: EvalContext, config: SVMEvalConfig) -> tuple[Split, Split]:
    """Train and test splits with the same classes."""
    train_split = load_split(backbone, context, config.train, config, "train")
    test_split = load_split(backbone, context, config.test, config, "test")
    if train_split.class_names != test_split.class_names:
        raise ValueError(f"train classes {train_split.class_names} differ from test classes {test_split.class_names}")
    return train_split, test_split
