"""Pretraining: build task, trunk and data from the registry and train them with mmengine's Runner."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from mmengine.hooks import Hook

import sslreg
from sslreg.backbone import Backbone
from sslreg.calls import describe, plugin_call
from sslreg.data import make_loader, world
from sslreg.errors import PluginError, UserError
from sslreg.experiment import ExperimentConfig
from sslreg.files import sha256_file
from sslreg.inputs import InputContract
from sslreg.registry import Registry
from sslreg.runner import checkpoints, compat
from sslreg.runner.data import PretextTransform, prepare_images
from sslreg.runner.folder import fingerprint_of, trunk_identity
from sslreg.runner.hooks import (
    BadImageHook,
    ProgressHook,
    RetainingCheckpointHook,
    SafeCheckpointHook,
    TaskStepHook,
)
from sslreg.runner.model import PretextRunnerModel
from sslreg.runner.provenance import git_commit
from sslreg.runner.stages import PRETRAIN_RECORD, read_record, stage_dir, write_record
from sslreg.trunk import CONTRACT_KEY, build_trunk

TRUNK_FILE = "trunk.pth"


@dataclass
class PretrainOutcome:
    """What pretraining left behind (``trained``: False when a finished pretraining was only read back)."""

    trunk_path: Path
    iterations: int
    epochs: int
    bad_images: int
    seen_images: int
    resumed_from: Path | None = None
    trunk_sha256: str = ""
    train_seconds: float = 0.0
    trained: bool = True
    metrics: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The ``pretrain`` entry of results.json."""
        return {
            "iterations": self.iterations,
            "epochs": self.epochs,
            "trunk": self.trunk_path.name,
            "trunk_sha256": self.trunk_sha256,
            "bad_images": self.bad_images,
            "seen_images": self.seen_images,
            "train_seconds": round(self.train_seconds, 3),
            "metrics": {name: round(value, 6) for name, value in self.metrics.items()},
        }


def latest_checkpoint(run_dir: Path, warn: Callable[[str], None] = print) -> Path | None:
    """The newest ``epoch_N.pth`` in ``run_dir`` whose sha256 sidecar verifies; skipped ones are named in ``warn``."""
    return checkpoints.latest_valid(run_dir, warn)


#: Images read before training to catch an empty or unreadable source at once.
FIRST_IMAGES = 16


def check_first_images(source: Any, name: str, count: int = FIRST_IMAGES) -> None:
    """Raise a UserError at once when ``source`` yields no image, or its first ``count`` are all unreadable."""
    if source.is_stream:
        samples = list(enumerate(islice(source.stream(0, 1, 0), count)))
    else:
        samples = [(index, source.load(index)) for index in range(min(len(source), count))]
    if any(sample is not None for _, sample in samples):
        return
    examples = getattr(getattr(source, "bad_images", None), "examples", None) or []
    if not samples:
        why = f"; {examples[0][0]}: {examples[0][1]}" if examples else ""
        raise UserError(f"dataset {name!r}: no images (the source is empty){why}")
    if examples:
        first = f"{examples[0][0]}: {examples[0][1]}"
    else:
        key = getattr(source, "key", None)
        first = f"{key(samples[0][0]) if callable(key) else f'image {samples[0][0]}'}: unreadable"
    raise UserError(f"dataset {name!r}: the first {len(samples)} images are all unreadable (first: {first})")


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is present, else 'cpu'; anything else as given (checked)."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"pretrain.schedule.device: {device!r} asked for, but no GPU is available")
    return device


def _plan_epochs(schedule: Any, size: int, world_size: int) -> tuple[int, int | None, int]:
    """(epochs, samples per epoch or None for all, iterations per epoch) honouring ``max_iters``."""
    if schedule.batch_size % world_size:
        raise UserError(
            f"pretrain.schedule.batch_size: {schedule.batch_size} is not divisible by {world_size} processes"
        )
    if size == 0:
        raise UserError("pretrain.data: the dataset is empty")
    full = max(1, size // schedule.batch_size) if size >= schedule.batch_size else 1
    if schedule.max_iters is None:
        return schedule.epochs, None, full
    epochs = math.ceil(schedule.max_iters / full)
    per_epoch = math.ceil(schedule.max_iters / epochs)
    return epochs, min(size, per_epoch * schedule.batch_size), per_epoch


#: mmengine's parameter-wise options that exempt normalisation layers and biases from weight decay.
NO_DECAY_NORM_BIAS = {"norm_decay_mult": 0.0, "bias_decay_mult": 0.0}


def optimizer_config(schedule: Any) -> dict[str, Any]:
    """The mmengine optimizer config of ``schedule.optimizer``: torch's SGD or AdamW, or timm's LARS."""
    if schedule.optimizer == "sgd":
        return dict(type="SGD", lr=schedule.lr, momentum=schedule.momentum, weight_decay=schedule.weight_decay)
    if schedule.optimizer == "adamw":
        return dict(type="AdamW", lr=schedule.lr, betas=tuple(schedule.betas), weight_decay=schedule.weight_decay)
    try:
        from timm.optim import Lars
    except ImportError:
        raise UserError(
            "pretrain.schedule.optimizer: 'lars' needs the timm package (pip install 'sslreg[lars]')"
        ) from None
    # timm's LARS adapts the lr of groups with weight decay only: with decay_norm_and_bias false, norms and
    # biases get plain SGD steps, as in SimCLR and BYOL.
    return dict(type=Lars, lr=schedule.lr, momentum=schedule.momentum, weight_decay=schedule.weight_decay)


def lr_schedulers(schedule: Any, total_iters: int) -> list[dict[str, Any]] | None:
    """mmengine parameter schedulers: linear warm-up over ``warmup_iters``, then steps (by epoch) or a cosine
    down to ``min_lr`` at iteration ``total_iters``."""
    schedulers: list[dict[str, Any]] = []
    if schedule.warmup_iters:
        schedulers.append(dict(type="LinearLR", start_factor=1e-3, by_epoch=False, begin=0, end=schedule.warmup_iters))
    if schedule.lr_schedule == "step" and schedule.lr_steps:
        schedulers.append(
            dict(type="MultiStepLR", by_epoch=True, milestones=list(schedule.lr_steps), gamma=schedule.lr_gamma)
        )
    if schedule.lr_schedule == "cosine":
        if schedule.warmup_iters >= total_iters:
            raise UserError(
                f"pretrain.schedule.warmup_iters: {schedule.warmup_iters} leaves none of the {total_iters}"
                " iterations to the cosine schedule"
            )
        schedulers.append(
            dict(
                type="CosineAnnealingLR",
                by_epoch=False,
                begin=schedule.warmup_iters,
                end=total_iters,
                T_max=total_iters - schedule.warmup_iters,
                eta_min=schedule.min_lr,
            )
        )
    return schedulers or None


def build_runner(experiment: ExperimentConfig, registry: Registry, run_dir: Path, resume_from: Path | None) -> Any:
    """A SafeRunner for ``experiment.pretrain``: optimiser and lr schedule, the task's step hooks, checkpoints,
    TensorBoard, DDP when launched."""
    from sslreg.runner.engine import SafeRunner

    pretrain, seed = experiment.pretrain, experiment.seed
    schedule = pretrain.schedule
    rank, world_size = world()
    device = resolve_device(schedule.device)
    task = registry.build("pretext", pretrain.pretext)
    source = registry.build("dataset", pretrain.data)
    check_first_images(source, pretrain.data.name)
    with plugin_call(task, "input_contract"):
        contract = task.input_contract()
    trunk = build_trunk(registry, pretrain.backbone, seed=seed, contract=contract)
    with torch.random.fork_rng(devices=[]), plugin_call(task, "build_model"):
        torch.manual_seed(seed)  # the head's init, like the trunk's, is a function of the seed alone
        model = PretextRunnerModel(task, task.build_model(trunk))
    with plugin_call(task, "prepare"):
        task.prepare(prepare_images(source, task.prepare_limit, seed), run_dir / "prepare")

    try:
        size = len(source)
    except TypeError:
        raise UserError(
            f"pretrain.data: the length of stream {pretrain.data.name!r} is unknown; give its image count"
            " (e.g. num_images) or a subset"
        ) from None
    epochs, samples_per_epoch, _ = _plan_epochs(schedule, size, world_size)
    total = samples_per_epoch or size
    loader = make_loader(
        source,
        PretextTransform(task),
        batch_size=schedule.batch_size // world_size,
        seed=seed,
        shuffle=True,
        num_workers=schedule.num_workers,
        rank=rank,
        world_size=world_size,
        samples_per_epoch=samples_per_epoch,
        pad=True,
        drop_last=total >= schedule.batch_size,
        pin_memory=device.startswith("cuda"),
        persistent_workers=schedule.num_workers > 0,
    )
    use_amp = schedule.amp and device.startswith("cuda")
    schedulers = lr_schedulers(schedule, epochs * len(loader))
    distributed = world_size > 1
    if distributed and not device.startswith("cuda") and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="gloo")  # mmengine's launcher assumes CUDA devices
    # on CPU, DDP needs device_ids=None (mmengine passes the local rank, a CUDA index)
    wrapper = (
        dict(type="MMDistributedDataParallel", device_ids=None, broadcast_buffers=False)
        if (distributed and not device.startswith("cuda"))
        else None
    )
    sync_bn = schedule.sync_bn and distributed
    if sync_bn and not device.startswith("cuda"):
        raise UserError("pretrain.schedule.sync_bn: SyncBatchNorm needs GPUs; set it false for CPU processes")
    custom_hooks = [
        SafeCheckpointHook(),
        TaskStepHook(),
        BadImageHook(pretrain.data.name, pretrain.data.max_bad_fraction),
        ProgressHook(schedule.batch_size, schedule.log_interval),
    ]
    custom_hooks.append(_InputContractHook(trunk.input_contract))
    if source.is_stream:
        custom_hooks.append(_StreamEpochHook())
    runner = SafeRunner(
        model=model,
        work_dir=str(run_dir),
        experiment_name=f"{experiment.name}_{uuid.uuid4().hex[:8]}",
        train_dataloader=loader,
        train_cfg=dict(by_epoch=True, max_epochs=epochs, val_interval=epochs + 1),
        optim_wrapper=dict(
            type="AmpOptimWrapper" if use_amp else "OptimWrapper",
            optimizer=optimizer_config(schedule),
            **({} if schedule.decay_norm_and_bias else {"paramwise_cfg": NO_DECAY_NORM_BIAS}),
        ),
        param_scheduler=schedulers or None,
        default_hooks=dict(
            runtime_info=dict(type="RuntimeInfoHook"),
            timer=dict(type="IterTimerHook"),
            sampler_seed=dict(type="DistSamplerSeedHook"),
            logger=dict(type="LoggerHook", interval=schedule.log_interval),
            param_scheduler=dict(type="ParamSchedulerHook"),
            checkpoint=dict(
                type=RetainingCheckpointHook,
                interval=schedule.checkpoint_interval,
                by_epoch=True,
                max_keep_ckpts=schedule.keep_checkpoints,
                save_last=True,
            ),
        ),
        custom_hooks=custom_hooks,
        launcher="pytorch" if distributed else "none",
        env_cfg=dict(
            cudnn_benchmark=False,
            mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
            dist_cfg=dict(backend="nccl" if device.startswith("cuda") else "gloo"),
        ),
        cfg={**({"model_wrapper_cfg": wrapper} if wrapper else {}), **({"sync_bn": "torch"} if sync_bn else {})},
        randomness=dict(seed=seed, deterministic=schedule.deterministic, diff_rank_seed=False),
        visualizer=dict(
            type="Visualizer", vis_backends=[dict(type="LocalVisBackend"), dict(type="TensorboardVisBackend")]
        ),
        log_processor=dict(by_epoch=True, window_size=schedule.log_interval),
        log_level="INFO",
        resume=resume_from is not None,
        load_from=str(resume_from) if resume_from else None,
    )
    return runner


class _StreamEpochHook(Hook):
    """Tell a streamed dataset which epoch it is in (its workers are re-created every epoch)."""

    def before_train_epoch(self, runner: Any) -> None:
        runner.train_dataloader.dataset.set_epoch(runner.epoch)


class _InputContractHook(Hook):
    """Record the trunk's input contract in every checkpoint's meta, as in trunk.pth (``weights:`` reads it)."""

    def __init__(self, contract: InputContract) -> None:
        self.contract = contract

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        checkpoint.setdefault("meta", {})[CONTRACT_KEY] = self.contract.model_dump(mode="json")


def evaluated_trunk_of(model: PretextRunnerModel) -> tuple[str, Backbone]:
    """(attribute path, module) of the trunk the task evaluates (``task.evaluated_trunk``), checked to be a
    Backbone of the trained trunk's kind held by the model."""
    task = model.task
    with plugin_call(task, "evaluated_trunk"):
        chosen = task.evaluated_trunk(model.pretext)
    path = next((name for name, module in model.named_modules() if module is chosen), None)
    same_kind = isinstance(chosen, Backbone) and chosen.state_dict().keys() == model.trunk.state_dict().keys()
    if path is None or not same_kind:
        raise PluginError(
            f"{describe(task)}, evaluated_trunk() must return a Backbone of the model like model.trunk,"
            f" got {type(chosen).__name__}"
        )
    return path, chosen


def save_trunk(model: PretextRunnerModel, path: Path, experiment: ExperimentConfig, extra: dict[str, Any]) -> Path:
    """``{"state_dict": {"trunk.<k>", "head.<k>", ...}, "meta": {...}}``, the format ``weights:`` options load.

    ``trunk.`` holds the evaluated trunk (``task.evaluated_trunk``); when that is not the model's own trunk (a
    momentum encoder), the own trunk is left out (the checkpoints keep it) and ``meta.evaluated_trunk`` says which
    module it was.
    """
    where, evaluated = evaluated_trunk_of(model)
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    if where != "trunk":
        state = {key: value for key, value in state.items() if not key.startswith("trunk.")}
        state.update({f"trunk.{key}": value.detach().cpu() for key, value in evaluated.state_dict().items()})
    contract = getattr(evaluated, "input_contract", None) or model.trunk.input_contract
    meta = {
        "config": experiment.model_dump(mode="json"),
        "sslreg_version": sslreg.__version__,
        "backbone": experiment.pretrain.backbone.name,
        "pretext": experiment.pretrain.pretext.name,
        "evaluated_trunk": where,
        CONTRACT_KEY: contract.model_dump(mode="json"),
        **extra,
    }
    return compat.atomic_save({"state_dict": state, "meta": meta}, path)


def _stored_outcome(run_dir: Path, fingerprint: str) -> PretrainOutcome | None:
    """The outcome recorded by a finished pretraining of ``fingerprint`` whose trunk.pth still matches, or None."""
    path = stage_dir(run_dir) / PRETRAIN_RECORD
    record = read_record(path)
    trunk_path = run_dir / TRUNK_FILE
    if record is None or record.get("fingerprint") != fingerprint:
        return None
    actual = sha256_file(trunk_path) if trunk_path.is_file() else None
    if actual is None or actual != record.get("trunk_sha256"):
        state = "missing" if actual is None else "not the file recorded (corrupt?)"
        print(f"pretrain: warning: {trunk_path} is {state}; rebuilding it from the checkpoints", flush=True)
        return None
    return PretrainOutcome(
        trunk_path,
        int(record["iterations"]),
        int(record["epochs"]),
        int(record["bad_images"]),
        int(record["seen_images"]),
        trunk_sha256=actual,
        train_seconds=float(record.get("train_seconds", 0.0)),
        trained=False,
        metrics={str(name): float(value) for name, value in (record.get("metrics") or {}).items()},
    )


def pretrain(experiment: ExperimentConfig, registry: Registry, run_dir: Path) -> PretrainOutcome:
    """Train (or resume from the newest valid checkpoint, or read back a finished pretraining) in ``run_dir``.

    A finished pretraining is ``stages/pretrain.json`` plus the trunk.pth it records (by sha256); otherwise
    training resumes from the newest checkpoint that verifies (from scratch if none does), which after a
    finished run rebuilds trunk.pth without training further.
    """
    fingerprint = fingerprint_of(trunk_identity(experiment, registry))
    stored = _stored_outcome(run_dir, fingerprint)
    if stored is not None:
        return stored
    trunk_path = run_dir / TRUNK_FILE
    data = experiment.pretrain.data
    resume_from = latest_checkpoint(run_dir, lambda line: print(line, flush=True))
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        runner = build_runner(experiment, registry, run_dir, resume_from)
        safe_hook = next(hook for hook in runner.hooks if isinstance(hook, SafeCheckpointHook))
        safe_hook.fingerprint = fingerprint
        if resume_from is not None:
            print(f"pretrain: resuming from {resume_from.name}", flush=True)
        runner.train()
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
    if runner.iter == 0:
        raise UserError(
            f"dataset {data.name!r}: pretraining ran 0 iterations (no batch came out of the source); nothing saved"
        )
    bad_hook = next(hook for hook in runner.hooks if isinstance(hook, BadImageHook))
    step_hook = next(hook for hook in runner.hooks if isinstance(hook, TaskStepHook))
    model = runner.model.module if hasattr(runner.model, "module") else runner.model
    outcome = PretrainOutcome(
        trunk_path,
        runner.iter,
        runner.epoch,
        bad_hook.bad,
        bad_hook.seen,
        resume_from,
        train_seconds=safe_hook.train_seconds,
        metrics=step_hook.metrics(runner, experiment.pretrain.schedule.log_interval),
    )
    extra = dict(
        iterations=outcome.iterations,
        epochs=outcome.epochs,
        bad_images=outcome.bad_images,
        seen_images=outcome.seen_images,
        fingerprint=fingerprint,
    )
    rank, world_size = world()
    if rank == 0:
        save_trunk(model, trunk_path, experiment, extra)
        outcome.trunk_sha256 = sha256_file(trunk_path)
        write_record(
            stage_dir(run_dir) / PRETRAIN_RECORD,
            {"stage": "pretrain", "fingerprint": fingerprint, **outcome.summary(), "git": git_commit()},
        )
    if world_size > 1:
        torch.distributed.barrier()
    return outcome
