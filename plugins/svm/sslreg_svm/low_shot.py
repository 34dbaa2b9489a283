"""Low-shot SVMs as the reference benchmark, every cost, several independent draws per k:

* multi-label data (VOC07): per class k positives and (C-1)·k absent images, test mAP;
* class-labelled data (Places205): k images of every class, one-vs-rest SVMs (a class's negatives are the other
  classes' sampled images), test top-1 accuracy of the argmax over the classes' SVM scores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import numpy as np
import torch
from pydantic import Field, PositiveInt

from sslreg import (
    Backbone,
    DatasetSource,
    EvalContext,
    EvalResult,
    Evaluator,
    FeatureSet,
    LayerScore,
    UserError,
)
from sslreg_svm import metrics, solver
from sslreg_svm.common import (
    Split,
    SVMEvalConfig,
    check_features,
    degenerate_classes,
    device_of,
    excluded_message,
    load_splits,
    normalize,
    pooled_features,
    train,
    warn,
)
from sslreg_svm.drawn import DrawnFeatures, extract_drawn

#: The paper's k for VOC07 (multi-label) and for Places205 (class labels).
SHOTS = (1, 2, 4, 8, 16, 32, 64, 96)
CLASS_SHOTS = (1, 2, 4, 8, 16)
#: Test rows scored at a time (keeps the (rows, classes, costs) decision values small).
TEST_CHUNK = 4096


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


def class_pools(labels: np.ndarray, num_classes: int) -> list[np.ndarray]:
    """Indices of each class's images, in index order (one sort, however many classes); label -1 is in no pool."""
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(num_classes + 1))
    return [order[bounds[c] : bounds[c + 1]] for c in range(num_classes)]


def draw_class_shots(pools: Sequence[np.ndarray], k: int, rng: np.random.Generator) -> np.ndarray:
    """One Places-style draw: k random images of every class (all of them where fewer), sorted indices.

    As the reference's create_places_low_shot_samples.py: per class a sample without replacement; the draw is the
    union, and each class's SVM sees its k images as positives and every other drawn image as a negative.
    """
    picks = [rng.choice(pool, min(k, len(pool)), replace=False) for pool in pools]
    return np.sort(np.concatenate(picks).astype(np.int64))


def class_draws(
    labels: np.ndarray, num_classes: int, shots: Sequence[int], samples: int, seed: int
) -> Iterator[tuple[int, int, np.ndarray]]:
    """(draw, shot index, rows) of every Places-style draw; draw d of shot k depends only on (seed, d, k)."""
    pools = class_pools(labels, num_classes)
    for sample in range(samples):
        for shot_index, k in enumerate(shots):
            yield sample, shot_index, draw_class_shots(pools, k, np.random.default_rng((seed, sample, k)))


def one_vs_rest(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(N, C) SVM targets of class labels: 1 in the image's class column, -1 in every other."""
    labels = np.asarray(labels)
    return np.where(labels[:, None] == np.arange(num_classes)[None, :], 1, -1).astype(np.int8)


def class_shortfalls(labels: np.ndarray, k: int, class_names: Sequence[str]) -> dict[str, dict[str, int]]:
    """Classes with fewer than k training images (label -1, an unreadable image, counts for none), with how many."""
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels[labels >= 0], minlength=len(class_names))
    return {name: {"positives": int(count)} for name, count in zip(class_names, counts) if count < k}


def top1_per_cost(solution: solver.SVMSolution, test_features: np.ndarray, test_labels: np.ndarray) -> np.ndarray:
    """Top-1 accuracy (fraction) of the argmax over classes of the SVM scores, for every cost; test in chunks."""
    labels = torch.from_numpy(np.array(test_labels, dtype=np.int64))
    correct = torch.zeros(solution.weights.shape[1], dtype=torch.int64)
    for start in range(0, len(labels), TEST_CHUNK):
        scores = solution.decision(normalize(test_features[start : start + TEST_CHUNK]))  # (rows, C, costs)
        predicted = scores.argmax(dim=1).cpu()
        correct += (predicted == labels[start : start + TEST_CHUNK, None]).sum(dim=0)
    return (correct.double() / len(labels)).numpy()


@dataclass
class LowShotOutcome:
    """Test score (mAP or top-1, as a fraction) per (draw, shot, cost) of one layer; multi-label classes in
    ``excluded`` (index -> why) are not in the mAP."""

    shots: list[int]
    costs: list[float]
    score_per_cost: np.ndarray  # (samples, shots, costs)
    excluded: dict[int, str] = field(default_factory=dict)

    def best(self, shot_index: int) -> tuple[int, np.ndarray]:
        """The reference's aggregate: the cost with the best mean over draws, and the draws' score at that cost.

        As aggregate_low_shot_svm_stats.py does, the cost is picked on the test score itself (there is no
        validation split in the low-shot protocol); min/max/std are taken at that same cost.
        """
        values = self.score_per_cost[:, shot_index, :]
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
    """Multi-label (VOC07) low-shot: test mAP of every cost on every (draw, k).

    Draw d of shot k depends only on (seed, d, k), so layers share draws. Classes without a positive or an absent
    image to draw, or without a positive at test, are left out of the mean (``LowShotOutcome.excluded``); a
    UserError when none is left.
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


def run_class_low_shot(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    *,
    num_classes: int,
    shots: Sequence[int] = CLASS_SHOTS,
    samples: int = 5,
    seed: int = 0,
    costs: Sequence[float] = solver.COSTS,
    pos_weight: float = 2.0,
    solver_kind: str = "fast",
    device: torch.device | str = "cpu",
) -> LowShotOutcome:
    """Class-label (Places205) low-shot: one-vs-rest SVMs on k images per class, test top-1 of every cost.

    Only the drawn rows of ``train_features`` are read (a memory-mapped cache of millions of images, or the
    drawn images' features alone: sslreg_svm.drawn); an image labelled -1 is never drawn. Draw d of shot k
    depends only on (seed, d, k), so layers share draws.
    """
    costs, device = [float(cost) for cost in costs], torch.device(device)
    train_labels = np.asarray(train_labels, dtype=np.int64)
    result = np.zeros((samples, len(shots), len(costs)))
    for sample, shot_index, rows in class_draws(train_labels, num_classes, shots, samples, seed):
        X = normalize(np.asarray(train_features[rows]))
        solution = train(X, one_vs_rest(train_labels[rows], num_classes), costs, solver_kind, pos_weight, device)
        result[sample, shot_index] = top1_per_cost(solution, test_features, test_labels)
    return LowShotOutcome(list(shots), costs, result)


class LowShotConfig(SVMEvalConfig):
    """Options of low_shot; train/test are multi-label (VOC07) or class-labelled (Places205) data."""

    shots: list[PositiveInt] | None = Field(
        None,
        min_length=1,
        description="Positives per class k (default: the paper's, 1, 2, 4, ..., 96 for multi-label data and"
        " 1, 2, 4, 8, 16 for class-labelled data).",
    )
    samples: int = Field(5, ge=1, le=100, description="Independent random draws per k (the paper: 5).")


class ClassSplit(NamedTuple):
    """Pooled features per layer and class labels (N,) of one data split."""

    features: FeatureSet
    labels: np.ndarray
    class_names: list[str]


def load_class_split(
    backbone: Backbone, context: EvalContext, dataset: DatasetSource, config: LowShotConfig, what: str
) -> ClassSplit:
    """Pooled features of a class-labelled ``dataset`` (from the cache when there) and its checked labels."""
    if dataset.target_kind != "class":
        raise UserError(f"low_shot: {what} data {dataset.name!r} has {dataset.target_kind!r} targets, expected 'class'")
    features = checked_features(backbone, context, dataset, config, f"low_shot: {what} data {dataset.name!r}")
    names = list(features.class_names or dataset.class_names)
    return ClassSplit(features, class_labels(features.targets, names, f"{what} data {dataset.name!r}"), names)


def checked_features(
    backbone: Backbone, context: EvalContext, dataset: DatasetSource, config: LowShotConfig, where: str
) -> FeatureSet:
    """Pooled features of ``dataset`` (from the cache when there), every layer checked finite."""
    features = pooled_features(backbone, context, dataset, config)
    for layer, array in features.features.items():
        check_features(array, f"{where}, layer {layer}: features")
    return features


def class_labels(labels: np.ndarray | None, names: list[str], where: str) -> np.ndarray:
    """``labels`` as integer class indices within ``names``; UserError otherwise."""
    labels = np.asarray(labels if labels is not None else [])
    if labels.ndim != 1 or not len(labels) or not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"low_shot: {where} yielded no integer class labels")
    if not names or labels.min() < 0 or labels.max() >= len(names):
        raise UserError(
            f"low_shot: {where}: labels {labels.min()}..{labels.max()} outside the {len(names)} class names"
        )
    return labels.astype(np.int64)


def load_drawn_split(
    backbone: Backbone, context: EvalContext, dataset: DatasetSource, config: LowShotConfig, shots: list[int]
) -> tuple[ClassSplit, DrawnFeatures] | None:
    """The train split from the drawn images alone (their labels read from the split list first); None when the
    source cannot tell its labels without reading its images."""
    listed = dataset.targets()
    if listed is None:
        return None
    names = list(dataset.class_names)
    labels = class_labels(listed, names, f"train data {dataset.name!r}")

    def drawn_rows(labels: np.ndarray) -> np.ndarray:
        draws = class_draws(labels, len(names), shots, config.samples, context.seed)
        return np.concatenate([rows for _, _, rows in draws])

    where = f"low_shot: train data {dataset.name!r} (drawn images)"
    drawn = extract_drawn(dataset, labels, drawn_rows, lambda s: checked_features(backbone, context, s, config, where))
    features = FeatureSet(drawn.layers, drawn.labels, names, drawn.skipped)  # type: ignore[arg-type]
    return ClassSplit(features, drawn.labels, names), drawn


class LowShot(Evaluator):
    """Low-shot SVMs per layer and k (VOC07 mAP or Places205 top-1): the best cost's mean ± std over draws."""

    name: ClassVar[str] = "low_shot"
    Config: ClassVar[type[LowShotConfig]] = LowShotConfig
    consumes: ClassVar[str] = "a frozen Backbone; multi-label (VOC07) or class-labelled (Places205) train/test data"
    produces: ClassVar[str] = "per k: test mAP (multi-label) or top-1 (class labels) of the best cost, over draws"

    config: LowShotConfig

    def evaluate(self, backbone: Backbone, context: EvalContext) -> list[EvalResult]:
        """One EvalResult per k; the protocol follows the train data's target kind."""
        train_data = context.build_dataset(self.config.train)
        if train_data.target_kind == "class":
            return self._class_labels(backbone, context, train_data)
        return self._multilabel(backbone, context)

    def _per_layer(
        self, protocol: Callable[..., LowShotOutcome], train_split: Split | ClassSplit,
        test_split: Split | ClassSplit, shots: list[int], context: EvalContext, **extra: int,
    ) -> dict[str, LowShotOutcome]:  # fmt: skip
        """``protocol`` (the multi-label or the class-label low-shot run) on every layer's features, with this
        evaluator's draws, seed, costs and solver."""
        config = self.config
        return {
            layer: protocol(
                train_split.features.features[layer],
                train_split.labels,
                test_split.features.features[layer],
                test_split.labels,
                shots=shots,
                samples=config.samples,
                seed=context.seed,
                costs=config.costs,
                pos_weight=config.pos_weight,
                solver_kind=config.solver,
                device=device_of(config, context),
                **extra,
            )
            for layer in train_split.features.features
        }

    def _multilabel(self, backbone: Backbone, context: EvalContext) -> list[EvalResult]:
        config = self.config
        shots = list(config.shots or SHOTS)
        train_split, test_split = load_splits(backbone, context, config)
        outcomes = self._per_layer(run_low_shot, train_split, test_split, shots, context)
        excluded = {train_split.class_names[j]: why for j, why in next(iter(outcomes.values())).excluded.items()}
        if excluded:
            warn(f"low_shot: {excluded_message(excluded, 'the mAP')}")
        short = lambda k: shortfalls(train_split.labels, k, train_split.class_names)
        return self._results(outcomes, "mAP", short, {"excluded_classes": excluded})

    def _class_labels(self, backbone: Backbone, context: EvalContext, train_data: DatasetSource) -> list[EvalResult]:
        config = self.config
        shots = list(config.shots or CLASS_SHOTS)
        drawn = load_drawn_split(backbone, context, train_data, config, shots)
        train_split = drawn[0] if drawn else load_class_split(backbone, context, train_data, config, "train")
        test_data = context.build_dataset(config.test)
        test_split = load_class_split(backbone, context, test_data, config, "test")
        if train_split.class_names != test_split.class_names:
            raise UserError(
                f"low_shot: class names of train ({train_data.name!r}) and test ({test_data.name!r}) differ"
            )
        outcomes = self._per_layer(
            run_class_low_shot, train_split, test_split, shots, context, num_classes=len(train_split.class_names)
        )
        train_skipped = train_split.features.skipped
        extra = {
            "classes": len(train_split.class_names),
            "train_images": int((train_split.labels >= 0).sum()),
            "train_images_read": drawn[1].extracted if drawn else len(train_split.labels) + train_skipped,
            "test_images": len(test_split.labels),
            "skipped_images": train_skipped + test_split.features.skipped,
        }
        return self._results(
            outcomes, "top-1", lambda k: class_shortfalls(train_split.labels, k, train_split.class_names), extra
        )

    def _results(
        self,
        outcomes: dict[str, LowShotOutcome],
        metric: str,
        short: Callable[[int], dict[str, dict[str, int]]],
        extra: dict,
    ) -> list[EvalResult]:
        """One EvalResult per k: per layer the best cost's mean ± std over draws (percent), min/max, every cost."""
        results = []
        for shot_index, k in enumerate(next(iter(outcomes.values())).shots):
            layers, details = {}, {"best_cost": {}, "min": {}, "max": {}, "per_draw": {}, "mean_per_cost": {}}
            for layer, outcome in outcomes.items():
                cost, values = outcome.best(shot_index)
                layers[layer] = LayerScore.of((100.0 * values).tolist())
                details["best_cost"][layer] = outcome.costs[cost]
                details["min"][layer] = 100.0 * float(values.min())
                details["max"][layer] = 100.0 * float(values.max())
                details["per_draw"][layer] = (100.0 * values).tolist()
                details["mean_per_cost"][layer] = (100.0 * outcome.score_per_cost[:, shot_index].mean(0)).tolist()
            details.update(shortfalls=short(k), k=k, samples=self.config.samples, **extra)
            name = f"low-shot {metric} k={k}"
            results.append(EvalResult(evaluator=self.name, metric=name, layers=layers, details=details))
        return results
