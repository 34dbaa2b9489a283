"""Stages of a run and their completion records: pretraining, then each evaluator on its own.

``stages/pretrain.json`` records the trunk a pretraining produced (fingerprint, sha256 of trunk.pth, iterations,
bad/seen images, training time); ``stages/evaluate-<name>-<key>.json`` records one evaluator's results, keyed by
its resolved options, the trunk's identity, the seed and the versions involved, with the fingerprints of the
data it read and its wall time; ``stages/random-<name>-<key>.json`` the same for the random-init baseline
(``baseline: random``), keyed by the baseline trunk's own identity. A stage whose record is present and matches
is not run again; fixing, adding or reordering evaluators reruns only those whose key changed, and the results
files are assembled from the records of the CURRENT config only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ValidationError

import sslreg
from sslreg.evaluator import EvalResult
from sslreg.experiment import ExperimentConfig
from sslreg.files import atomic_write_text
from sslreg.registry import Registry
from sslreg.runner.folder import fingerprint_of

STAGES_DIR = "stages"
PRETRAIN_RECORD = "pretrain.json"
FEATURES_DIR = "features"

Warn = Callable[[str], None]


def stage_dir(run_dir: Path) -> Path:
    """Where a run's stage records live."""
    return run_dir / STAGES_DIR


def read_record(path: Path, warn: Warn = print) -> dict[str, Any] | None:
    """A stage record, or None when absent; a corrupt one is named in a warning (the stage then runs again)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        warn(f"warning: {path}: corrupt stage record ({type(error).__name__}); that stage runs again")
        return None
    if not isinstance(record, dict):
        warn(f"warning: {path}: corrupt stage record (not a mapping); that stage runs again")
        return None
    return record


def write_record(path: Path, record: dict[str, Any]) -> Path:
    """Write a stage record atomically (its presence marks the stage complete)."""
    stamped = {**record, "sslreg_version": sslreg.__version__, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    return atomic_write_text(json.dumps(stamped, indent=1) + "\n", path)


def _components(spec: BaseModel) -> list[tuple[str, str]]:
    """(kind, name) of the evaluator ``spec`` and the datasets named in its options."""
    used = [("evaluator", spec.name)]
    for _, value in spec:
        if isinstance(value, BaseModel) and hasattr(value, "name"):
            used.append(("dataset", value.name))
    return used


def evaluator_key(spec: BaseModel, trunk_id: str, seed: int, registry: Registry) -> str:
    """The identity of one evaluator stage: its resolved options, the trunk, the seed and the versions."""
    versions = {"sslreg": sslreg.__version__}
    for kind, name in _components(spec):
        try:
            entry = registry.get(kind, name)
            versions[f"{kind} {name}"] = f"{entry.distribution or entry.plugin} {entry.version}".strip()
        except LookupError:
            versions[f"{kind} {name}"] = "?"
    return fingerprint_of({"spec": spec.model_dump(mode="json"), "trunk": trunk_id, "seed": seed, "versions": versions})


def evaluator_record(run_dir: Path, spec: BaseModel, key: str, prefix: str = "evaluate") -> Path:
    """``stages/<prefix>-<name>-<key>.json`` (prefix 'evaluate', or 'random' for the random-init baseline)."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in spec.name)[:60]
    return stage_dir(run_dir) / f"{prefix}-{safe}-{key}.json"


def stored_results(record: dict[str, Any] | None, key: str, path: Path, warn: Warn) -> list[EvalResult] | None:
    """The results held by an evaluator record for ``key``, or None (absent, another key, or corrupt)."""
    if record is None or record.get("key") != key:
        return None
    try:
        return [EvalResult.model_validate(item) for item in record["results"]]
    except (KeyError, TypeError, ValidationError) as error:
        warn(f"warning: {path}: corrupt stage record ({type(error).__name__}); that stage runs again")
        return None


def check_feature_cache(folder: Path, warn: Warn = print) -> list[Path]:
    """Remove unreadable files of the feature cache (``sslreg.extract_features`` then recomputes them).

    Each cache entry is ``<key>/meta.json``, ``<key>/targets.npy`` and one ``<layer>.npy`` per layer. A layer
    file that does not load as ``count`` rows is removed alone; a bad meta.json or targets.npy removes the
    entry's meta.json, so the whole entry is extracted again. Each removal is named in one warning line.
    Only the files' structure is checked (headers, sizes, row counts), not every value.
    """
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in sorted(p for p in folder.iterdir() if p.is_dir()):
        meta_path = entry / "meta.json"
        if not meta_path.exists():
            continue
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            count = int(meta["count"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            warn(f"warning: feature cache {meta_path} is corrupt ({type(error).__name__}); extracting again")
            meta_path.unlink(missing_ok=True)
            removed.append(meta_path)
            continue
        for path in sorted(entry.glob("*.npy")):
            why = _npy_problem(path, count)
            if why is None:
                continue
            warn(f"warning: feature cache {path} is corrupt ({why}); extracting again")
            path.unlink(missing_ok=True)
            removed.append(path)
            if path.name == "targets.npy":
                meta_path.unlink(missing_ok=True)
                removed.append(meta_path)
    return removed


def _npy_problem(path: Path, count: int) -> str | None:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        return f"{type(error).__name__}: {str(error).splitlines()[0][:80] if str(error) else 'unreadable'}"
    if array.ndim < 1 or len(array) != count:
        return f"{len(array) if array.ndim else 0} rows, meta.json says {count}"
    return None


@dataclass
class StageResults:
    """What the evaluator stages of one trunk gave: results per evaluator (by its index in the config), how many
    ran now, and per stage its wall time, finish time and the fingerprints of the data it read (from its record)."""

    by_spec: dict[int, list[EvalResult]] = field(default_factory=dict)
    ran: int = 0
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def results(self) -> list[EvalResult]:
        """Every result, in config order."""
        return [result for index in sorted(self.by_spec) for result in self.by_spec[index]]

    def merge(self, other: StageResults) -> StageResults:
        """Both sets of stages (run in two phases: distributed evaluators first, then rank 0's)."""
        return StageResults({**self.by_spec, **other.by_spec}, self.ran + other.ran, {**self.stages, **other.stages})


#: Which evaluators one call of :func:`evaluate_stages` runs: all (one process), only those that run on every
#: torchrun rank (``Evaluator.distributed``), or only the others (rank 0 alone).
Phase = Literal["all", "distributed", "rank0"]


def is_distributed(registry: Registry, name: str) -> bool:
    """Whether evaluator ``name`` runs on every rank (``Evaluator.distributed``)."""
    try:
        return bool(getattr(registry.get("evaluator", name).cls, "distributed", False))
    except LookupError:
        return False


def evaluate_stages(
    experiment: ExperimentConfig,
    registry: Registry,
    run_dir: Path,
    weights: Path | None,
    trunk_id: str,
    warn: Warn = print,
    *,
    random_init: bool = False,
    phase: Phase = "all",
    rank: int = 0,
    world_size: int = 1,
) -> StageResults:
    """Every evaluator of ``experiment`` (of ``phase``) as its own stage: stored results where the record
    matches, else run.

    Each evaluator runs on its own, with the trunk rebuilt and the seed reset (as in
    :func:`sslreg.runner.evaluation.evaluate`), so its result does not depend on which other evaluators ran in
    the same process. ``random_init`` scores the random-init baseline instead (``trunk_id`` is then its identity).
    In the ``distributed`` phase every rank calls this: rank 0 decides from the records which stages run and
    tells the others, all ranks evaluate, rank 0 writes the records (other ranks return no results).
    """
    from sslreg.runner.evaluation import evaluate
    from sslreg.runner.provenance import git_commit

    outcome = StageResults()
    cache_checked = False
    prefix = "random" if random_init else "evaluate"
    for index, spec in enumerate(experiment.evaluate):
        if phase != "all" and is_distributed(registry, spec.name) != (phase == "distributed"):
            continue
        key = path = stored = record = None
        if rank == 0:
            key = evaluator_key(spec, trunk_id, experiment.seed, registry)
            path = evaluator_record(run_dir, spec, key, prefix)
            record = read_record(path, warn)
            stored = stored_results(record, key, path, warn)
        if world_size > 1:
            decision = [stored is not None]
            torch.distributed.broadcast_object_list(decision, src=0)
            if decision[0] and rank != 0:
                continue
        if stored is None:
            if rank == 0 and not cache_checked:
                check_feature_cache(run_dir / FEATURES_DIR, warn)
                cache_checked = True
            started = time.perf_counter()
            data: list[dict[str, Any]] = []
            single = experiment.model_copy(update={"evaluate": [spec]})
            stored = evaluate(
                single, registry, run_dir, weights, random_init=random_init, data=data, rank=rank, world_size=world_size
            )
            if rank != 0:
                continue
            record = {
                "stage": "random init" if random_init else "evaluate",
                "key": key,
                "trunk": trunk_id,
                "spec": spec.model_dump(mode="json"),
                "seconds": round(time.perf_counter() - started, 3),
                "git": git_commit(),
                "ranks": world_size,
                "data": data,
                "results": [result.model_dump(mode="json") for result in stored],
            }
            write_record(path, record)
            record = read_record(path, warn) or record
            outcome.ran += 1
        name = f"{'random init: ' if random_init else ''}evaluate {spec.name}"
        outcome.stages[name] = {
            "seconds": record.get("seconds"),
            "finished": record.get("finished"),
            "git": record.get("git"),
            "data": record.get("data"),
        }
        outcome.by_spec[index] = stored
    return outcome
