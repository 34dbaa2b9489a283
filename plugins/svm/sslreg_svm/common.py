"""What the VOC07 SVM and low-shot evaluators share: options, label conventions, solver choice, features."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from pydantic import Field, PositiveFloat

from sslreg import (
    Backbone,
    DatasetSource,
    DataSpec,
    EvalContext,
    FeatureSet,
    LabeledDataConfig,
    UserError,
    extract_features,
    resolve_device,
)
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
    """``labels`` as an int8 (N, C) matrix of 1/-1/0, or a UserError naming ``where``."""
    array = np.asarray(labels)
    if array.ndim != 2 or array.shape[1] < 1:
        raise UserError(f"{where}: labels must be an (N, C) matrix, got shape {array.shape}")
    if not np.isin(array, (-1, 0, 1)).all():
        raise UserError(f"{where}: labels must be 1 (present), -1 (absent) or 0 (difficult)")
    return array.astype(np.int8)


def check_features(features: np.ndarray, where: str) -> np.ndarray:
    """``features`` if a finite numeric (N, D) matrix with N, D >= 1, else a one-line UserError naming ``where``.

    Non-finite values are counted (NaN and inf apart) and the first one located: a NaN would stop the solver deep
    inside LAPACK, an inf would silently change the scores.
    """
    array = np.asarray(features)
    if array.ndim != 2 or not (np.issubdtype(array.dtype, np.number) and not np.iscomplexobj(array)):
        raise UserError(f"{where} must be a real (N, D) matrix, got shape {array.shape} of {array.dtype}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise UserError(f"{where} is empty: shape {array.shape} (it needs at least one row and one dimension)")
    if np.issubdtype(array.dtype, np.integer):
        return array
    nan = inf = 0
    first = None
    for start in range(0, len(array), 4096):  # row blocks: no full-size mask for COCO-sized features
        block = array[start : start + 4096]
        bad = ~np.isfinite(block)
        if bad.any():
            nan += int(np.isnan(block).sum())
            inf += int(bad.sum()) - int(np.isnan(block).sum())
            if first is None:
                row, column = np.argwhere(bad)[0]
                first = (start + int(row), int(column))
    if first is not None:
        raise UserError(
            f"{where} has {nan + inf} non-finite values ({nan} NaN, {inf} inf), the first at row {first[0]}, "
            f"column {first[1]}"
        )
    return array


def degenerate_classes(
    train_labels: np.ndarray, test_labels: np.ndarray, difficult_is_negative: bool = True
) -> dict[int, str]:
    """Classes that cannot be scored, with why: no positive or no negative to train on, no positive to test on.

    Devkit labels: at test difficult (0) is left out; in training it counts as negative (VOC07 SVM), or is not
    drawn at all (low-shot: difficult_is_negative=False).
    """
    train, test = np.asarray(train_labels), np.asarray(test_labels)
    reasons = {}
    for column in range(train.shape[1]):
        positives = int((train[:, column] == 1).sum())
        negatives = int((train[:, column] != 1).sum() if difficult_is_negative else (train[:, column] == -1).sum())
        if positives == 0:
            reasons[column] = "no positive in train"
        elif negatives == 0:
            reasons[column] = "no negative in train"
        elif not (test[:, column] == 1).any():
            reasons[column] = "no positive in test"
    return reasons


def warn(message: str) -> None:
    """One warning line on stderr, as sslreg prints its own."""
    print(f"sslreg: warning: {message}", file=sys.stderr)


def excluded_message(excluded: dict[str, str], what: str) -> str:
    """'2 classes left out of <what>: cat (no positive in test), dog (no negative in train)'."""
    listed = ", ".join(f"{name} ({reason})" for name, reason in excluded.items())
    return f"{len(excluded)} class{'es' if len(excluded) != 1 else ''} left out of {what}: {listed}"


def l2_normalize(x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Divide each row by (its L2 norm + 1e-5), in float64, as the reference's ``normalize_features``."""
    if isinstance(x, torch.Tensor):
        return _divide_by_norms(x.to(torch.float64, copy=True))
    x = np.asarray(x, dtype=np.float64)
    return x / (np.linalg.norm(x, axis=1) + 1e-5)[:, None]


def normalize(features: np.ndarray) -> torch.Tensor:
    """float64 rows divided by (their L2 norm + 1e-5), as the reference feeds LinearSVC.

    Divides one float64 copy in place: a COCO-size set (118k x 2,048) would otherwise hold two (2 GB each).
    """
    return _divide_by_norms(torch.from_numpy(np.array(features, dtype=np.float64)))


def _divide_by_norms(x: torch.Tensor) -> torch.Tensor:
    """x divided in place, row by row, by (its L2 norm + 1e-5): the reference's normalize_features."""
    return x.div_(torch.linalg.vector_norm(x, dim=1, keepdim=True) + 1e-5)


def train(
    X: torch.Tensor, Y: np.ndarray, costs: list[float], kind: str, pos_weight: float, device: torch.device
) -> SVMSolution:
    """Fit every (class, cost) SVM with the chosen solver; Y in {1, -1, 0=ignore}."""
    if kind == "sklearn":
        return reference.train_svms_sklearn(X, Y, costs, pos_weight=pos_weight)
    return solver.train_svms(X, Y, costs, pos_weight=pos_weight, device=device)


def cross_validate_and_refit(
    X: torch.Tensor, Y: np.ndarray, costs: list[float], kind: str, folds: int, pos_weight: float, device: torch.device
) -> tuple[np.ndarray, SVMSolution]:
    """Mean k-fold CV AP per (class, cost), and each class refit on all rows at its best cost (one column per class)."""
    if kind == "sklearn":
        cv_ap = reference.cross_validate_sklearn(X, Y, costs, folds=folds, pos_weight=pos_weight)
        best = solver.select_costs(cv_ap, costs)
        distinct = sorted(set(best.tolist()))
        fits = reference.train_svms_sklearn(X, Y, [costs[index] for index in distinct], pos_weight=pos_weight)
        columns = torch.as_tensor(np.searchsorted(distinct, best))
        rows = torch.arange(len(best))
        return cv_ap, SVMSolution(fits.weights[rows, columns][:, None], fits.bias[rows, columns][:, None])
    return solver.cross_validate_and_train(
        X, Y, costs, folds=folds, pos_weight=pos_weight, device=device, refit="chosen"
    )


def device_of(config: SVMEvalConfig, context: EvalContext) -> torch.device:
    """The configured device, else the runner's."""
    return resolve_device(config.device, context.device)


def pooled_features(
    backbone: Backbone, context: EvalContext, dataset: DatasetSource, config: SVMEvalConfig
) -> FeatureSet:
    """The pooled features of ``config.layers`` over ``dataset`` (from the feature cache when there)."""
    return extract_features(
        backbone,
        dataset,
        config.layers,
        device=device_of(config, context),
        batch_size=config.batch_size,
        image_size=config.image_size,
        num_workers=config.num_workers,
        cache_dir=context.cache_dir,
    )


def load_split(backbone: Backbone, context: EvalContext, spec: DataSpec, config: SVMEvalConfig, what: str) -> Split:
    """Build the dataset ``spec`` and extract (or reuse from the cache) pooled features of the requested layers."""
    dataset = context.build_dataset(spec)
    if dataset.target_kind != "multilabel":
        raise UserError(f"{what} data {dataset.name!r} has {dataset.target_kind!r} targets; the SVM needs multilabel")
    features = pooled_features(backbone, context, dataset, config)
    if features.targets is None:
        raise UserError(f"{what} data {dataset.name!r} yielded no targets")
    for layer, array in features.features.items():
        check_features(array, f"{what} data {dataset.name!r}, layer {layer}: features")
    labels = check_labels(features.targets, f"{what} data {dataset.name!r}")
    names = features.class_names or [f"class{index}" for index in range(labels.shape[1])]
    if len(names) != labels.shape[1]:
        raise UserError(f"{what} data {dataset.name!r}: {len(names)} class names but {labels.shape[1]} label columns")
    return Split(features, labels, names)


def load_splits(backbone: Backbone, context: EvalContext, config: SVMEvalConfig) -> tuple[Split, Split]:
    """Train and test splits with the same classes."""
    train_split = load_split(backbone, context, config.train, config, "train")
    test_split = load_split(backbone, context, config.test, config, "test")
    if train_split.class_names != test_split.class_names:
        raise UserError(f"train classes {train_split.class_names} differ from test classes {test_split.class_names}")
    return train_split, test_split
