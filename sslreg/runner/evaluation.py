"""Evaluation: the trunk (pretrained or as configured), frozen, handed to every evaluator of the experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

from sslreg.backbone import Backbone
from sslreg.calls import plugin_call
from sslreg.evaluator import EvalContext, EvalResult
from sslreg.experiment import ExperimentConfig
from sslreg.registry import Registry
from sslreg.trunk import build_trunk


def evaluated_trunk(experiment: ExperimentConfig, registry: Registry, weights: Path | None) -> Backbone:
    """The trunk to evaluate: the pretrained one (``weights``, with the contract they record), else the
    ``backbone`` section as configured (random init, or its own ``weights`` file)."""
    spec = experiment.pretrain.backbone if experiment.pretrain is not None else experiment.backbone
    return build_trunk(registry, spec, seed=experiment.seed, weights=weights)


def dataset_builder(registry: Registry) -> Any:
    """``EvalContext.build_dataset``: a DataSpec (or dict) to a DatasetSource."""

    def build(spec: Any) -> Any:
        options = spec.model_dump() if isinstance(spec, BaseModel) else dict(spec)
        return registry.build("dataset", options)

    return build


def evaluate(
    experiment: ExperimentConfig, registry: Registry, run_dir: Path, weights: Path | None, cache_dir: Path | None = None
) -> list[EvalResult]:
    """Run every evaluator of ``experiment`` on the frozen trunk; one list of results, in config order."""
    if not experiment.evaluate:
        return []
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    trunk = evaluated_trunk(experiment, registry, weights).to(device).freeze()
    context = EvalContext(
        device=device,
        cache_dir=cache_dir or run_dir / "features",
        seed=experiment.seed,
        build_dataset=dataset_builder(registry),
    )
    results: list[EvalResult] = []
    for spec in experiment.evaluate:
        evaluator = registry.build("evaluator", spec)
        print(f"evaluate: {spec.name} ...", flush=True)
        with plugin_call(evaluator, "evaluate"):
            results.extend(evaluator.evaluate(trunk, context))
    return results
