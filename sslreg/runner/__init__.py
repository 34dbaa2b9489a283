"""The engine behind ``sslreg run``: pretrain (mmengine Runner), evaluate layer by layer, write the results."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from sslreg.config import Plan
from sslreg.evaluator import EvalResult
from sslreg.experiment import ConfigError, ExperimentConfig
from sslreg.files import atomic_write_text
from sslreg.registry import Registry
from sslreg.report import print_results, read_run_results, run_label, write_run_results, write_sweep_report
from sslreg.runner.evaluation import evaluate
from sslreg.runner.header import header
from sslreg.runner.training import pretrain, world

CONFIG_FILE = "config.yaml"
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError, ConfigError)


def run_folder(experiment: ExperimentConfig) -> Path:
    """``work_dir``, else ``runs/<name>``."""
    return Path(experiment.work_dir) if experiment.work_dir else Path("runs") / experiment.name


def _differences(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            d
            for key in dict.fromkeys([*old, *new])
            for d in _differences(old.get(key), new.get(key), f"{path}.{key}".lstrip("."))
        ]
    return [] if old == new else [path or "(top)"]


def _claim_folder(run_dir: Path, experiment: ExperimentConfig) -> None:
    """Write the resolved config; refuse a folder whose checkpoints come from another config (they would mix)."""
    resolved = experiment.model_dump(mode="json")
    resolved.pop("work_dir", None)
    path = run_dir / CONFIG_FILE
    if path.is_file():
        old = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        old.pop("work_dir", None)
        changed = _differences(old, resolved)
        started = any(run_dir.glob("epoch_*.pth")) or (run_dir / "trunk.pth").exists()
        if changed and started:
            raise ValueError(
                f"{run_dir}: this folder holds a run of another config (differs at {', '.join(changed[:4])});"
                " give another work_dir/name, or delete the folder to start over"
            )
        if not changed:
            return
    run_dir.mkdir(parents=True, exist_ok=True)  # new, or a run that failed before its first checkpoint
    atomic_write_text(yaml.safe_dump(resolved, sort_keys=False), path)


def run_experiment(
    experiment: ExperimentConfig, registry: Registry, run_dir: Path
) -> tuple[str, list[EvalResult]] | None:
    """Pretrain (or resume) and evaluate one experiment in ``run_dir``; a finished run is only read back.

    Returns (row label, results) on rank 0, None on the other DDP ranks.
    """
    finished = read_run_results(run_dir)
    if finished is not None:
        label, results, _ = finished
        print(f"{run_dir}: already finished; showing its stored results", flush=True)
        return label, results
    rank, _ = world()
    if rank == 0:
        _claim_folder(run_dir, experiment)
        text = header(experiment, registry)
        print(text, flush=True)
        with open(run_dir / "sslreg.log", "a", encoding="utf-8") as log:
            log.write(text + "\n")
    info: dict[str, Any] = {"config": experiment.model_dump(mode="json")}
    weights = None
    if experiment.pretrain is not None:
        outcome = pretrain(experiment, registry, run_dir)
        weights = outcome.trunk_path
        info["pretrain"] = {
            "iterations": outcome.iterations,
            "epochs": outcome.epochs,
            "trunk": outcome.trunk_path.name,
            "bad_images": outcome.bad_images,
            "seen_images": outcome.seen_images,
        }
        if rank == 0 and outcome.bad_images:
            print(f"pretrain: skipped {outcome.bad_images} unreadable of {outcome.seen_images} images", flush=True)
    if rank != 0:
        return None
    results = evaluate(experiment, registry, run_dir, weights)
    label = run_label(experiment)
    write_run_results(run_dir, label, results, info)
    return label, results


def _one_line(error: BaseException) -> str:
    """The last meaningful line (DataLoader workers wrap the original error in a traceback)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    name = type(error).__name__
    for line in reversed(lines):
        if line.startswith(f"{name}: "):
            return line[len(name) + 2 :]
    return lines[-1] if lines else name


def run_plan(plan: Plan, registry: Registry) -> int:
    """Run every experiment of ``plan`` (one, or each sweep point), print and write the results; 0 on success."""
    try:
        if not plan.is_sweep:
            _, _, experiment = plan.points[0]
            row = run_experiment(experiment, registry, run_folder(experiment))
            if row is not None:
                print_results([row], title=experiment.name)
                print(f"results: {run_folder(experiment) / 'results.md'}", flush=True)
            return 0
        root = run_folder(plan.points[0][2])
        points = []
        for label, point, experiment in plan.points:
            print(f"sweep point {label}", flush=True)
            row = run_experiment(experiment, registry, root / label)
            if row is not None:
                points.append((label, point, row[1]))
        if world()[0] == 0:
            written = write_sweep_report(root, points)
            print_results([(label, results) for label, _, results in points], title="sweep", first_column="point")
            print(f"sweep results: {', '.join(str(p) for p in written[:2])} (+{len(written) - 2} plots)", flush=True)
        return 0
    except USER_ERRORS as error:
        print(f"sslreg: error: {_one_line(error)}", file=sys.stderr, flush=True)
        return 2


__all__ = ["run_experiment", "run_folder", "run_plan"]
