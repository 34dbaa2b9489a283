"""The engine behind ``sslreg run``: pretrain (mmengine Runner), evaluate layer by layer, write the results."""

from __future__ import annotations

import contextlib
from pathlib import Path

from sslreg.config import Plan
from sslreg.evaluator import EvalResult
from sslreg.experiment import ExperimentConfig
from sslreg.files import attach_log
from sslreg.registry import Registry
from sslreg.report import print_results, run_label, write_run_results, write_sweep_report
from sslreg.runner.checkpoints import clean_leftovers
from sslreg.runner.folder import LOG_FILE, FolderLock, claim
from sslreg.runner.header import header
from sslreg.runner.stages import evaluate_stages
from sslreg.runner.training import pretrain, world


def run_folder(experiment: ExperimentConfig) -> Path:
    """``work_dir``, else ``runs/<name>``."""
    return Path(experiment.work_dir) if experiment.work_dir else Path("runs") / experiment.name


def run_experiment(
    experiment: ExperimentConfig, registry: Registry, run_dir: Path
) -> tuple[str, list[EvalResult]] | None:
    """Pretrain (or resume) and evaluate one experiment in ``run_dir``, stage by stage; finished stages are read.

    Holds the folder's lock throughout (rank 0). Returns (row label, results) on rank 0, None on other DDP ranks.
    An error leaving here names the run's log (``sslreg.log``) for the CLI, which writes the traceback there.
    """
    rank, _ = world()
    try:
        with FolderLock(run_dir) if rank == 0 else contextlib.nullcontext():
            return _run_stages(experiment, registry, run_dir, rank)
    except BaseException as error:
        if (run_dir / LOG_FILE).is_file():
            attach_log(error, run_dir / LOG_FILE)
        raise


def _run_stages(
    experiment: ExperimentConfig, registry: Registry, run_dir: Path, rank: int
) -> tuple[str, list[EvalResult]] | None:
    if rank == 0:
        claim(run_dir, experiment, registry)
        removed = clean_leftovers(run_dir)
        text = header(experiment, registry)
        if removed:
            text += f"\nremoved {len(removed)} partial file(s) left by an interrupted run"
        print(text, flush=True)
        with open(run_dir / LOG_FILE, "a", encoding="utf-8") as log:
            log.write(text + "\n")
    info: dict = {"config": experiment.model_dump(mode="json")}
    weights, trunk_id, trained = None, None, False
    if experiment.pretrain is not None:
        outcome = pretrain(experiment, registry, run_dir)
        weights, trunk_id, trained = outcome.trunk_path, outcome.trunk_sha256, outcome.trained
        info["pretrain"] = outcome.summary()
        if rank == 0 and outcome.bad_images:
            print(f"pretrain: skipped {outcome.bad_images} unreadable of {outcome.seen_images} images", flush=True)
    if rank != 0:
        return None
    if trunk_id is None:
        from sslreg.runner.folder import fingerprint_of, trunk_identity

        trunk_id = fingerprint_of(trunk_identity(experiment, registry))
    results, evaluated = evaluate_stages(experiment, registry, run_dir, weights, trunk_id)
    if not trained and not evaluated:
        print(f"{run_dir}: already finished; showing its stored results", flush=True)
    label = run_label(experiment)
    write_run_results(run_dir, label, results, info)
    return label, results


def run_plan(plan: Plan, registry: Registry) -> int:
    """Run every experiment of ``plan`` (one, or each sweep point), print and write the results; 0 on success.

    Errors propagate (the CLI turns them into one line and an exit code, see :func:`sslreg.cli.run_guarded`).
    """
    if not plan.is_sweep:
        _, _, experiment = plan.points[0]
        row = run_experiment(experiment, registry, run_folder(experiment))
        if row is not None:
            print_results([row], title=experiment.name)
            print(f"results: {run_folder(experiment) / 'results.md'}", flush=True)
        return 0
    root = run_folder(plan.points[0][2])
    with FolderLock(root) if world()[0] == 0 else contextlib.nullcontext():
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


__all__ = ["run_experiment", "run_folder", "run_plan"]
