"""The engine behind ``sslreg run``: pretrain (mmengine Runner), evaluate layer by layer, write the results."""

from __future__ import annotations

import contextlib
import datetime
import json
from pathlib import Path
from typing import Any

import torch

from sslreg.config import Plan
from sslreg.distributed import ensure_process_group
from sslreg.experiment import ExperimentConfig
from sslreg.files import atomic_write_text, attach_log
from sslreg.plots import layers_plot, logged_losses, loss_plot
from sslreg.reference import applicable
from sslreg.registry import Registry
from sslreg.report import RunReport, print_results, run_label, write_run_results, write_sweep_report
from sslreg.runner.checkpoints import clean_leftovers
from sslreg.runner.evaluation import random_trunk_identity
from sslreg.runner.folder import LOG_FILE, FolderLock, claim, fingerprint_of, trunk_identity
from sslreg.runner.header import header
from sslreg.runner.provenance import provenance
from sslreg.runner.stages import StageResults, evaluate_stages, read_record, stage_dir
from sslreg.runner.training import pretrain, world

#: The fingerprint of the pretraining data, computed once per trained trunk (training builds the source itself).
PRETRAIN_DATA_RECORD = "pretrain-data.json"


def run_folder(experiment: ExperimentConfig) -> Path:
    """``work_dir``, else ``runs/<name>``."""
    return Path(experiment.work_dir) if experiment.work_dir else Path("runs") / experiment.name


def run_experiment(experiment: ExperimentConfig, registry: Registry, run_dir: Path) -> RunReport | None:
    """Pretrain (or resume) and evaluate one experiment in ``run_dir``, stage by stage; finished stages are read.

    Holds the folder's lock throughout (rank 0). Returns the run's report on rank 0, None on other DDP ranks.
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


def _pretrain_data(experiment: ExperimentConfig, registry: Registry, run_dir: Path, fingerprint: str) -> dict:
    """The pretraining data's fingerprint, recorded once per trained trunk in ``stages/pretrain-data.json``."""
    from sslreg.runner.evaluation import fingerprint_source

    path = stage_dir(run_dir) / PRETRAIN_DATA_RECORD
    record = read_record(path)
    if record is not None and record.get("fingerprint") == fingerprint and isinstance(record.get("data"), dict):
        return record["data"]
    try:
        data = fingerprint_source(registry.build("dataset", experiment.pretrain.data))
    except Exception as error:  # noqa: BLE001 - provenance never fails a finished pretraining
        data = {"dataset": experiment.pretrain.data.name, "error": str(error).splitlines()[0] if str(error) else ""}
    atomic_write_text(json.dumps({"fingerprint": fingerprint, "data": data}, indent=1) + "\n", path)
    return data


def _data_by_use(stages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """'STAGE: dataset' -> fingerprint, for every dataset a stage read (a baseline stage reading the same data as
    its evaluator's stage is not listed again)."""
    found: dict[str, Any] = {}
    for stage, info in stages.items():
        for fingerprint in info.get("data") or []:
            key = f"{stage}: {fingerprint.get('dataset', '?')}"
            if found.get(key.removeprefix("random init: ")) != fingerprint:
                found[key] = fingerprint
    return found


def _evaluate_all(
    experiment: ExperimentConfig, registry: Registry, run_dir: Path, weights: Path | None, trunk_id: str, rank: int
) -> tuple[StageResults, StageResults | None] | None:
    """The evaluator stages of the trunk and, with ``baseline: random``, of its random init; None on ranks > 0.

    Under torchrun the distributed evaluators (``Evaluator.distributed``) of both trunks run first on every rank;
    then rank 0 alone runs the others, and the other ranks wait for it before going on together.
    """
    trunks = [(trunk_id, False)]
    if experiment.baseline == "random":
        trunks.append((fingerprint_of(random_trunk_identity(experiment, registry, weights)), True))
    _, world_size = world()
    if world_size == 1:
        done = [evaluate_stages(experiment, registry, run_dir, weights, key, random_init=r) for key, r in trunks]
    else:
        ensure_process_group()
        # rank 0's single-process stages may take hours: the other ranks wait for them in a barrier of their own
        # with no practical timeout (leaving early would abort the group, waiting in a collective would time out)
        waiting = torch.distributed.new_group(backend="gloo", timeout=datetime.timedelta(days=30))
        first = [
            evaluate_stages(
                experiment, registry, run_dir, weights, key, random_init=r, phase="distributed", rank=rank,
                world_size=world_size,
            )
            for key, r in trunks
        ]  # fmt: skip
        if rank != 0:
            torch.distributed.barrier(group=waiting)
            return None
        done = [
            stages.merge(evaluate_stages(experiment, registry, run_dir, weights, key, random_init=r, phase="rank0"))
            for stages, (key, r) in zip(first, trunks)
        ]
        torch.distributed.barrier(group=waiting)
    return done[0], (done[1] if len(done) > 1 else None)


def _run_stages(experiment: ExperimentConfig, registry: Registry, run_dir: Path, rank: int) -> RunReport | None:
    if rank == 0:
        claim(run_dir, experiment, registry)
        removed = clean_leftovers(run_dir)
        text = header(experiment, registry)
        if removed:
            text += f"\nremoved {len(removed)} partial file(s) left by an interrupted run"
        print(text, flush=True)
        with open(run_dir / LOG_FILE, "a", encoding="utf-8") as log:
            log.write(text + "\n")
    config = experiment.model_dump(mode="json")
    info: dict[str, Any] = {"config": config}
    weights, trunk_id, trained = None, None, False
    stages: dict[str, dict[str, Any]] = {}
    data: dict[str, Any] = {}
    losses: list[tuple[int, float]] = []
    if experiment.pretrain is not None:
        outcome = pretrain(experiment, registry, run_dir)
        weights, trunk_id, trained = outcome.trunk_path, outcome.trunk_sha256, outcome.trained
        info["pretrain"] = outcome.summary()
        if rank == 0 and outcome.bad_images:
            print(f"pretrain: skipped {outcome.bad_images} unreadable of {outcome.seen_images} images", flush=True)
        if rank == 0:
            record = read_record(stage_dir(run_dir) / "pretrain.json") or {}
            stages["pretrain"] = {
                "seconds": round(outcome.train_seconds, 3),
                "finished": record.get("finished"),
                "git": record.get("git"),  # the checkout that ran the stage (the run's "git" is the one that wrote)
            }
            fingerprint = fingerprint_of(trunk_identity(experiment, registry))
            data[f"pretrain: {experiment.pretrain.data.name}"] = _pretrain_data(
                experiment, registry, run_dir, fingerprint
            )
            losses = logged_losses(run_dir)
            if losses:
                info["pretrain"]["loss"] = {"first": losses[0][1], "last": losses[-1][1], "logged": losses}
    if trunk_id is None:
        trunk_id = fingerprint_of(trunk_identity(experiment, registry))
    evaluated_stages = _evaluate_all(experiment, registry, run_dir, weights, trunk_id, rank)
    if evaluated_stages is None:
        return None
    main, random = evaluated_stages
    stages.update(main.stages)
    evaluated = main.ran
    baseline = None
    if random is not None:
        stages.update(random.stages)
        evaluated += random.ran
        baseline = random.results
    if not trained and not evaluated:
        print(f"{run_dir}: already finished; showing its stored results", flush=True)
    data.update(_data_by_use(stages))
    for info_stage in stages.values():
        info_stage.pop("data", None)
    report = RunReport(
        label=run_label(experiment),
        results=main.results,
        baseline=baseline,
        references=applicable(experiment.reference, config),
        provenance={**provenance(experiment, registry, data=data), "stages": stages},
        folder=str(run_dir),
    )
    for line in report.unmatched_references():
        print(f"warning: reference {line} matches no result of this run", flush=True)
    plots = [
        path.name
        for path in (
            loss_plot(run_dir, losses, f"{report.label}: pretext loss"),
            layers_plot(run_dir, report),
        )
        if path is not None
    ]
    write_run_results(run_dir, report, info, plots)
    return report


def _plots_line(run_dir: Path) -> str:
    found = [run_dir / name for name in ("loss_curve.png", "layers.png") if (run_dir / name).is_file()]
    return f"plots: {', '.join(str(path) for path in found)}" if found else ""


def run_plan(plan: Plan, registry: Registry) -> int:
    """Run every experiment of ``plan`` (one, or each sweep point), print and write the results; 0 on success.

    Errors propagate (the CLI turns them into one line and an exit code, see :func:`sslreg.cli.run_guarded`).
    """
    if not plan.is_sweep:
        _, _, experiment = plan.points[0]
        report = run_experiment(experiment, registry, run_folder(experiment))
        if report is not None:
            print_results([report], title=experiment.name)
            _closing(report, run_folder(experiment))
        return 0
    root = run_folder(plan.points[0][2])
    with FolderLock(root) if world()[0] == 0 else contextlib.nullcontext():
        reports = []
        for label, point, experiment in plan.points:
            print(f"sweep point {label}", flush=True)
            report = run_experiment(experiment, registry, root / label)
            if report is not None:
                report.label, report.point = label, point
                reports.append(report)
        if world()[0] == 0:
            written = write_sweep_report(root, reports)
            print_results(reports, title="sweep", by_point=True)
            print(f"sweep results: {', '.join(str(p) for p in written[:2])} (+{len(written) - 2} plots)", flush=True)
    return 0


def _closing(report: RunReport, run_dir: Path) -> None:
    """The last lines of a run: the pretext loss, where the results and plots are."""
    results = run_dir / "results.json"
    try:
        loss = json.loads(results.read_text(encoding="utf-8")).get("pretrain", {}).get("loss")
    except (OSError, ValueError):
        loss = None
    if loss:
        print(f"pretext loss: {loss['first']:.3f} (first logged) -> {loss['last']:.3f} (last)", flush=True)
    print(f"results: {run_dir / 'results.md'} (and results.json, results.csv)", flush=True)
    line = _plots_line(run_dir)
    if line:
        print(line, flush=True)


__all__ = ["run_experiment", "run_folder", "run_plan"]
