"""VOC07 linear-SVM benchmark: per class a cost chosen by k-fold CV on trainval, AP on test, mAP per layer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field

from sslreg import Backbone, EvalContext, EvalResult, Evaluator, LayerScore, UserError
from sslreg_svm import metrics, solver
from sslreg_svm.common import (
    SVMEvalConfig,
    cross_validate_and_refit,
    degenerate_classes,
    device_of,
    excluded_message,
    load_splits,
    normalize,
    training_labels,
    warn,
)


@dataclass
class SVMOutcome:
    """One layer's result: mAP, AP per class, the cost each class chose and the CV AP per (class, cost).

    Classes in ``excluded`` (index -> reason: no positive or negative in train, no positive in test) have NaN AP
    and are left out of the mean; those that could not be trained also have NaN cost and CV AP.
    """

    mean_ap: float
    per_class_ap: np.ndarray
    chosen_costs: np.ndarray
    cv_ap: np.ndarray
    excluded: dict[int, str] = field(default_factory=dict)


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
    train. Test: images difficult for a class are left out of that class's AP. Classes that cannot be scored
    are left out (``SVMOutcome.excluded``); a UserError when none is left.
    """
    costs, device = [float(cost) for cost in costs], torch.device(device)
    n_classes = np.asarray(train_labels).shape[1]
    excluded = degenerate_classes(train_labels, test_labels)
    if len(excluded) == n_classes:
        raise UserError("no class can be scored: " + "; ".join(f"class {j}: {r}" for j, r in excluded.items()))
    trainable = np.array([j for j in range(n_classes) if not excluded.get(j, "").endswith("train")])
    X = normalize(train_features)
    del train_features  # a caller that hands its array over (the CLI) frees it for the protocol's run
    Y = training_labels(np.asarray(train_labels)[:, trainable])
    # fits are independent per (class, cost): refit each class at its chosen cost only
    cv_part, solution = cross_validate_and_refit(X, Y, costs, solver_kind, folds, pos_weight, device)
    del X
    best = np.asarray(solver.select_costs(cv_part, costs))
    scores = np.full((len(test_features), n_classes), np.nan)
    scores[:, trainable] = solution.decision(normalize(test_features))[:, :, 0].double().cpu().numpy()
    cv_ap = np.full((n_classes, len(costs)), np.nan)
    cv_ap[trainable] = cv_part
    chosen = np.full(n_classes, np.nan)
    chosen[trainable] = np.asarray(costs)[best]
    scored = [j for j in range(n_classes) if j not in excluded]
    per_class = np.full(n_classes, np.nan)
    mean_ap, per_class[scored] = metrics.mean_ap(scores[:, scored], np.asarray(test_labels)[:, scored])
    return SVMOutcome(float(mean_ap), per_class, chosen, cv_ap, excluded)


def finite_or_none(values: np.ndarray) -> list[float | None]:
    """Values as floats, None where NaN (JSON has no NaN)."""
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, dtype=np.float64)]


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
        per_class: dict[str, dict[str, float | None]] = {}
        chosen: dict[str, dict[str, float | None]] = {}
        excluded: dict[str, str] = {}
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
            per_class[layer] = dict(zip(train_split.class_names, finite_or_none(100.0 * outcome.per_class_ap)))
            chosen[layer] = dict(zip(train_split.class_names, finite_or_none(outcome.chosen_costs)))
            excluded = {train_split.class_names[j]: reason for j, reason in outcome.excluded.items()}
        if excluded:  # the same classes on every layer: one warning
            warn(f"voc07_svm: {excluded_message(excluded, 'the mAP')}")
        details = {
            "per_class_ap": per_class,
            "chosen_costs": chosen,
            "train_images": len(train_split.labels),
            "test_images": len(test_split.labels),
            "skipped_images": train_split.features.skipped + test_split.features.skipped,
            "solver": config.solver,
            "excluded_classes": excluded,
        }
        return [EvalResult(evaluator=self.name, metric="VOC07 SVM mAP", layers=layers, details=details)]
