"""Low-shot VOC07: SVMs trained on k positives and (C-1)·k negatives per class, every cost, several draws."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field, PositiveInt

from sslreg import Backbone, EvalContext, EvalResult, Evaluator, LayerScore, UserError
from sslreg_svm import metrics, solver
from sslreg_svm.common import (
    SVMEvalConfig,
    degenerate_classes,
    device_of,
    excluded_message,
    load_splits,
    normalize,
    train,
    warn,
)

SHOTS = (1, 2, 4, 8, 16, 32, 64, 96)


def draw_low_shot(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """One draw: per class k random positives and (C-1)·k random absent images; every other image 0 (ignored).

    As the reference's sampler, negatives come from images where the class is absent (never difficult ones);
    where fewer exist, all of them are taken.
    """
    labels = np.asarray(labels)
    negatives = (labels.shape[1] - 1) * k
    draw = np.zeros(labels.shape, dtype=np.int8)
    for column in range(labels.shape[1]):
        for value, count in ((1, k), (-1, negatives)):
            pool = np.flatnonzero(labels[:, column] == value)
            draw[rng.choice(pool, min(count, len(pool)), replace=False), column] = value
    return draw


def shortfalls(labels: np.ndarray, k: int, class_names: Sequence[str]) -> dict[str, dict[str, int]]:
    """Classes with fewer than k positives or (C-1)·k negatives available, with what there is."""
    labels = np.asarray(labels)
    short = {}
    for column, name in enumerate(class_names):
        positives, negatives = int((labels[:, column] == 1).sum()), int((labels[:, column] == -1).sum())
        if positives < k or negatives < (labels.shape[1] - 1) * k:
            short[name] = {"positives": positives, "negatives": negatives}
    return short


@dataclass
class LowShotOutcome:
    """Test mAP per (draw, shot, cost) of one layer; classes in ``excluded`` (index -> why) are not in the mean."""

    shots: list[int]
    costs: list[float]
    map_per_cost: np.ndarray  # (samples, shots, costs)
    excluded: dict[int, str] = field(default_factory=dict)

    def best(self, shot_index: int) -> tuple[int, np.ndarray]:
        """The reference's aggregate: the cost with the best mean over draws, and the draws' mAP at that cost.

        As aggregate_low_shot_svm_stats.py does, the cost is picked on the test mAP itself (there is no
        validation split in the low-shot protocol); min/max/std are taken at that same cost.
        """
        values = self.map_per_cost[:, shot_index, :]
        cost = int(np.argmax(values.mean(axis=0)))
        return cost, values[:, cost]


def run_low_shot(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    *,
    shots: Sequence[int] = SHOTS,
    samples: int = 5,
    seed: int = 0,
    costs: Sequence[float] = solver.COSTS,
    pos_weight: float = 2.0,
    solver_kind: str = "fast",
    device: torch.device | str = "cpu",
) -> LowShotOutcome:
    """Every cost on every (draw, k); draw d of shot k depends only on (seed, d, k), so layers share draws.

    Classes without a positive or an absent image to draw, or without a positive at test, are left out of the
    mean (``LowShotOutcome.excluded``); a UserError when none is left.
    """
    costs, device = [float(cost) for cost in costs], torch.device(device)
    excluded = degenerate_classes(train_labels, test_labels, difficult_is_negative=False)
    keep = np.array([j for j in range(np.asarray(train_labels).shape[1]) if j not in excluded])
    if len(keep) == 0:
        raise UserError("no class can be scored: " + "; ".join(f"class {j}: {r}" for j, r in excluded.items()))
    X, X_test = normalize(train_features), normalize(test_features)
    test_labels = np.asarray(test_labels)[:, keep]
    result = np.zeros((samples, len(shots), len(costs)))
    for sample in range(samples):
        for shot_index, k in enumerate(shots):
            draw = draw_low_shot(train_labels, k, np.random.default_rng((seed, sample, k)))[:, keep]
            solution = train(X, draw, costs, solver_kind, pos_weight, device)
            scores = solution.decision(X_test).double().cpu().numpy()
            for cost_index in range(len(costs)):
                result[sample, shot_index, cost_index] = metrics.mean_ap(scores[:, :, cost_index], test_labels)[0]
    return LowShotOutcome(list(shots), costs, result, excluded)


class LowShotConfig(SVMEvalConfig):
    """Options of low_shot."""

    shots: list[PositiveInt] = Field(
        default_factory=lambda: list(SHOTS), min_length=1, description="Positives per class k (the paper's 1..96)."
    )
    samples: int = Field(5, ge=1, le=100, description="Independent random draws per k (the paper: 5).")


class LowShot(Evaluator):
    """Low-shot VOC07 SVM mAP per layer and k: best cost's mean ± std over independent draws."""

    name: ClassVar[str] = "low_shot"
    Config: ClassVar[type[LowShotConfig]] = LowShotConfig

    def evaluate(self, backbone: Backbone, context: EvalContext) -> list[EvalResult]:
        """One EvalResult per k; each layer's score is the best cost's mean ± std over draws."""
        config = self.config
        train_split, test_split = load_splits(backbone, context, config)
        outcomes = {
            layer: run_low_shot(
                train_split.features.features[layer],
                train_split.labels,
                test_split.features.features[layer],
                test_split.labels,
                shots=config.shots,
                samples=config.samples,
                seed=context.seed,
                costs=config.costs,
                pos_weight=config.pos_weight,
                solver_kind=config.solver,
                device=device_of(config, context),
            )
            for layer in train_split.features.features
        }
        excluded = {train_split.class_names[j]: why for j, why in next(iter(outcomes.values())).excluded.items()}
        if excluded:
            warn(f"low_shot: {excluded_message(excluded, 'the mAP')}")
        results = []
        for shot_index, k in enumerate(config.shots):
            layers, details = {}, {"best_cost": {}, "min": {}, "max": {}, "per_draw": {}, "mean_per_cost": {}}
            for layer, outcome in outcomes.items():
                cost, values = outcome.best(shot_index)
                layers[layer] = LayerScore.of((100.0 * values).tolist())
                details["best_cost"][layer] = outcome.costs[cost]
                details["min"][layer] = 100.0 * float(values.min())
                details["max"][layer] = 100.0 * float(values.max())
                details["per_draw"][layer] = (100.0 * values).tolist()
                details["mean_per_cost"][layer] = (100.0 * outcome.map_per_cost[:, shot_index].mean(0)).tolist()
            details["shortfalls"] = shortfalls(train_split.labels, k, train_split.class_names)
            details["k"], details["samples"] = k, config.samples
            details["excluded_classes"] = excluded
            metric = f"low-shot mAP k={k}"
            results.append(EvalResult(evaluator=self.name, metric=metric, layers=layers, details=details))
        return results
