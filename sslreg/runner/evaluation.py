"""Evaluation: the trunk (pretrained or as configured), frozen, handed to every evaluator of the experiment; and
its random-init baseline (the same architecture and input contract, randomly initialised from the same seed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

import sslreg
from sslreg.backbone import Backbone
from sslreg.calls import plugin_call
from sslreg.evaluator import EvalContext, EvalResult
from sslreg.experiment import ExperimentConfig
from sslreg.inputs import InputContract
from sslreg.registry import Registry
from sslreg.trunk import build_trunk, contract_of_file


def evaluated_trunk(experiment: ExperimentConfig, registry: Registry, weights: Path | None) -> Backbone:
    """The trunk to evaluate: the pretrained one (``weights``, with the contract they record), else the
    ``backbone`` section as configured (random init, or its own ``weights`` file)."""
    spec = experiment.pretrain.backbone if experiment.pretrain is not None else experiment.backbone
    return build_trunk(registry, spec, seed=experiment.seed, weights=weights)


def _contract(experiment: ExperimentConfig, weights: Path | None) -> InputContract | None:
    """The input contract the evaluated trunk gets: its ``input`` option, else the one its weights file records."""
    spec = experiment.trunk_spec
    path = weights if weights is not None else spec.weights
    return spec.input or (contract_of_file(path) if path else None)


def random_trunk(experiment: ExperimentConfig, registry: Registry, weights: Path | None) -> Backbone:
    """The baseline trunk: the evaluated trunk's architecture, options and input contract, without its weights,
    initialised from the experiment seed (its own ``seed`` option wins) as pretraining initialises it; for a
    pretrained trunk these are exactly the weights its pretraining started from."""
    spec = experiment.trunk_spec.model_copy(update={"weights": None})
    return build_trunk(registry, spec, seed=experiment.seed, contract=_contract(experiment, weights))


def random_trunk_identity(experiment: ExperimentConfig, registry: Registry, weights: Path | None) -> dict[str, Any]:
    """What decides the baseline trunk's weights (its stages are keyed by a hash of it)."""
    spec = experiment.trunk_spec.model_copy(update={"weights": None})
    contract = _contract(experiment, weights)
    try:
        entry = registry.get("backbone", spec.name)
        provider = f"{entry.distribution or entry.plugin} {entry.version}".strip()
    except LookupError:
        provider = "?"
    return {
        "random_init": spec.model_dump(mode="json"),
        "seed": experiment.seed,
        "contract": contract.model_dump(mode="json") if contract is not None else None,
        "versions": {"sslreg": sslreg.__version__, "backbone": provider},
    }


def fingerprint_source(source: Any, warn: Any = print) -> dict[str, Any]:
    """``source.fingerprint()``; a failure is named in a warning and recorded, never fatal (it is provenance)."""
    try:
        with plugin_call(source, "fingerprint"):
            return dict(source.fingerprint())
    except Exception as error:  # noqa: BLE001 - provenance must not fail a finished computation
        name = getattr(source, "name", "?")
        warn(f"warning: dataset {name!r}: no data fingerprint ({error})")
        return {"dataset": name, "error": str(error).splitlines()[0] if str(error) else type(error).__name__}


def dataset_builder(registry: Registry, seen: list[dict[str, Any]] | None = None) -> Any:
    """``EvalContext.build_dataset``: a DataSpec (or dict) to a DatasetSource; each source's fingerprint is
    appended to ``seen`` (what the evaluator read, for the stage record)."""

    def build(spec: Any) -> Any:
        options = spec.model_dump() if isinstance(spec, BaseModel) else dict(spec)
        source = registry.build("dataset", options)
        if seen is not None:
            fingerprint = fingerprint_source(source)
            if fingerprint not in seen:
                seen.append(fingerprint)
        return source

    return build


def evaluate(
    experiment: ExperimentConfig,
    registry: Registry,
    run_dir: Path,
    weights: Path | None,
    cache_dir: Path | None = None,
    *,
    random_init: bool = False,
    data: list[dict[str, Any]] | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> list[EvalResult]:
    """Run every evaluator of ``experiment`` on the frozen trunk (``random_init``: on its random-init baseline);
    one list of results, in config order. Fingerprints of the datasets the evaluators build go to ``data``.
    ``rank``/``world_size``: this process's place among the ranks evaluating together (distributed evaluators)."""
    if not experiment.evaluate:
        return []
    device = torch.device(f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu")
    build = random_trunk if random_init else evaluated_trunk
    trunk = build(experiment, registry, weights).to(device).freeze()
    context = EvalContext(
        device=device,
        cache_dir=cache_dir or run_dir / "features",
        seed=experiment.seed,
        build_dataset=dataset_builder(registry, data),
        rank=rank,
        world_size=world_size,
    )
    results: list[EvalResult] = []
    for spec in experiment.evaluate:
        evaluator = registry.build("evaluator", spec)
        if rank == 0:
            print(f"evaluate{' (random init)' if random_init else ''}: {spec.name} ...", flush=True)
        with plugin_call(evaluator, "evaluate"):
            results.extend(evaluator.evaluate(trunk, context))
    return results
