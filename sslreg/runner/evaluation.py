"""Evaluation: the trunk (pretrained or as configured), frozen, handed to every evaluator of the experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

from sslreg.backbone import Backbone
from sslreg.evaluator import EvalContext, EvalResult
from sslreg.experiment import ExperimentConfig
from sslreg.registry import Registry
from sslreg.runner import compat


def load_trunk_weights(trunk: Backbone, path: Path) -> None:
    """Load the ``trunk.`` entries of an sslreg weights file (weights-only) into ``trunk``; strict."""
    state = compat.load_checkpoint(path)
    state = state.get("state_dict", state)
    trunk_state = {key[len("trunk.") :]: value for key, value in state.items() if key.startswith("trunk.")}
    if not trunk_state:
        raise ValueError(f"{path}: no 'trunk.' weights in this file")
    trunk.load_state_dict(trunk_state, strict=True)


def build_trunk(experiment: ExperimentConfig, registry: Registry, weights: Path | None) -> Backbone:
    """The trunk to evaluate: the pretrained one (same config, ``weights``), else ``experiment.backbone``."""
    if experiment.pretrain is not None:
        task_cls = registry.get("pretext", experiment.pretrain.pretext.name).cls
        config = registry.config("backbone", experiment.pretrain.backbone).model_copy(
            update={"in_channels": task_cls.input_channels}
        )
    else:
        config = registry.config("backbone", experiment.backbone)
    seed = config.seed if getattr(config, "seed", None) is not None else experiment.seed
    torch.manual_seed(seed)  # random-init baselines are reproducible too
    trunk = registry.build("backbone", config)
    if weights is not None:
        load_trunk_weights(trunk, weights)
    return trunk


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
    trunk = build_trunk(experiment, registry, weights).to(device).freeze()
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
        results.extend(evaluator.evaluate(trunk, context))
    return results
