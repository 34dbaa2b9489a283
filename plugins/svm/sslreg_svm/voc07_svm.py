"""VOC07 linear-SVM benchmark: per class a cost chosen by k-fold CV on trainval, AP on test, mAP per layer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field

from sslreg import Backbone, EvalContext, EvalResult, Evaluator, LayerScore
from sslreg_svm import metrics, solver
from sslreg_svm.common import SVMEvalConfig, cross_validate, device_of, load_splits, normalize, train, training_labels


@dataclass
class SVMOutcome:
    """One layer's result: mAP, AP per class, the cost each class chose and the CV AP per (class, cost)."""

    mean_ap: float
    per_class_ap: np.ndarray
    chosen_costs: np.ndarray
    cv_ap: np.ndarray


def run_voc07_svm(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    *,
    costs: Sequence[float] = solver.COSTS,
    folds: int = 3,
    pos_weight: float = 2.0,
    solver_kind: str = "fast",
    device: torch.device | str = "cpu",
) -> SVMOutcome:
    """The reference protocol on ready features; labels in the devkit convention (1, -1, 0 = difficult).

    Training: difficult counts as negative; per class the cost with the best mean CV AP is refit on all of
    train. Test: images difficult for a class are left out of that class's AP.
    """
    costs, device = [float(cost) for cost in costs], torch.device(device)
    X, Y = normalize(train_features), training_labels(train_labels)
    cv_ap = cross_validate(X, Y, costs, solver_kind, folds, pos_weight, device)
    best = np.asarray(solver.select_costs(cv_ap, costs))
    refit = sorted(set(best.tolist()))  # fits are independent per (class, cost): fit only the chosen costs
    solution = train(X, Y, [costs[index] for index in refit], solver_kind, pos_weight, device)
    scores = solution.decision(normalize(test_features))
    column = np.searchsorted(refit, best)
    chosen = scores[:, np.arange(len(best)), torch.as_tensor(column)].double().cpu().numpy()
    mean_ap, per_class = metrics.mean_ap(chosen, np.asarray(test_labels))
    return SVMOutcome(float(mean_ap), np.asarray(per_class), np.asarray(costs)[best], np.asarray(cv_ap))


class VOC07SVMConfig(SVMEvalConfig):
    """Options of voc07_svm."""

    folds: int = Field(3, ge=2, le=10, description="Folds of the cross-validation that picks each class's cost.")


class VOC07SVM(Evaluator):
    """VOC07 linear-SVM mAP per layer: the reference's 26 costs, 3-fold CV, difficult as negative."""

    name: ClassVar[str] = "voc07_svm"
    Config: ClassVar[type[VOC07SVMConfig]] = VOC07SVMConfig

    def evaluate(self, backbone: Backbone, context: EvalContext) -> list[EvalResult]:
        """Features of all requested layers from one pass per split, then the SVM protocol per layer."""
        config = self.config
        train_split, test_split = load_splits(backbone, context, config)
        layers: dict[str, LayerScore] = {}
        per_class: dict[str, dict[str, float]] = {}
        chosen: dict[str, dict[str, float]] = {}
        for layer in train_split.features.features:
            outcome = run_voc07_svm(
                train_split.features.features[layer],
                train_split.labels,
                test_split.features.features[layer],
                test_split.labels,
                costs=config.costs,
                folds=config.folds,
                pos_weight=config.pos_weight,
                solver_kind=config.solver,
                device=device_of(config, context),
            )
            layers[layer] = LayerScore(mean=100.0 * outcome.mean_ap)
            per_class[layer] = dict(zip(train_split.class_names, (100.0 * outcome.per_class_ap).tolist()))
            chosen[layer] = dict(zip(train_split.class_names, outcome.chosen_costs.tolist()))
        details = {
            "per_class_ap": per_class,
            "chosen_costs": chosen,
            "train_images": len(train_split.labels),
            "test_images": len(test_split.labels),
            "skipped_images": train_split.features.skipped + test_split.features.skipped,
            "solver": config.solver,
        }
        return [EvalResult(evaluator=self.name, metric="VOC07 SVM mAP", layers=layers, details=details)]
