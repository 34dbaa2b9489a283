"""mmengine hooks of the pretraining run: safe checkpoints and their retention, the progress bar, the bad-image
count (carried in checkpoints, so a resumed run counts from where it stopped)."""

from __future__ import annotations

import random
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook, Hook

from sslreg.calls import plugin_call
from sslreg.data import Batch
from sslreg.errors import UserError
from sslreg.pretext import StepContext
from sslreg.runner import checkpoints
from sslreg.runner.compat import plain_message_hub

#: The key of sslreg's own state in a checkpoint (fingerprint, bad-image counts, training time).
STATE_KEY = "sslreg"


class TooManyBadImages(UserError):
    """More than ``max_bad_fraction`` of the training images could not be read."""


class SafeCheckpointHook(Hook):
    """Keep checkpoints free of code-executing objects, carry the RNG states so a resume is exact, and stamp
    each checkpoint with the run's fingerprint (a checkpoint of another config is refused) and training time.

    ``fingerprint`` is set by the runner before training starts.
    """

    priority = "VERY_LOW"

    def __init__(self, fingerprint: str | None = None) -> None:
        self.fingerprint = fingerprint
        self.seconds_before = 0.0
        self.started = time.perf_counter()

    def before_train(self, runner: Any) -> None:
        self.started = time.perf_counter()

    @property
    def train_seconds(self) -> float:
        """Training time of this run, resumed sessions included."""
        return self.seconds_before + time.perf_counter() - self.started

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        checkpoint["message_hub"] = plain_message_hub(checkpoint["message_hub"])
        checkpoint["meta"].pop("dataset_meta", None)
        state = checkpoint.setdefault(STATE_KEY, {})
        state.update(fingerprint=self.fingerprint, train_seconds=float(self.train_seconds))
        kind, keys, position, gauss_next, cached = np.random.get_state(legacy=True)
        checkpoint["rng"] = {
            "torch": torch.get_rng_state(),
            "python": [list(random.getstate()[1]), random.getstate()[0], random.getstate()[2]],
            "numpy": [kind, keys, int(position), int(gauss_next), float(cached)],
        }

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        own = checkpoint.get(STATE_KEY) or {}
        if self.fingerprint is not None and own.get("fingerprint") != self.fingerprint:
            raise UserError(
                f"{runner.work_dir}: a checkpoint there was made by another config (fingerprint"
                f" {own.get('fingerprint')}, this config {self.fingerprint}); use --set work_dir=... or delete it"
            )
        self.seconds_before = float(own.get("train_seconds", 0.0))
        state = checkpoint.get("rng")
        if not state:
            return
        torch.set_rng_state(state["torch"])
        internal, version, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        kind, keys, position, gauss_next, cached = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, gauss_next, cached))


class TaskStepHook(Hook):
    """The task's side of every step: its :class:`StepContext`, ``before_step`` before the forward pass and
    ``after_step`` after the optimiser step (both under ``torch.no_grad``); the names of the scalars its loss
    logs travel in checkpoints, so the results of a resumed run report them too."""

    priority = "NORMAL"

    def __init__(self) -> None:
        self.metric_names: set[str] = set()

    @staticmethod
    def _model(runner: Any) -> Any:
        return runner.model.module if hasattr(runner.model, "module") else runner.model

    def _context(self, runner: Any) -> StepContext:
        return StepContext(
            iteration=runner.iter,
            epoch=runner.epoch,
            max_iters=runner.max_iters,
            max_epochs=runner.max_epochs,
            rank=runner.rank,
            world_size=runner.world_size,
        )

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        model = self._model(runner)
        object.__setattr__(model, "context", self._context(runner))
        with torch.no_grad(), plugin_call(model.task, "before_step"):
            model.task.before_step(model.pretext, model.context)

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: dict | None = None
    ) -> None:
        model = self._model(runner)
        with torch.no_grad(), plugin_call(model.task, "after_step"):
            model.task.after_step(model.pretext, model.context)
        self.metric_names.update(model.metric_names)

    def metrics(self, runner: Any, window: int) -> dict[str, float]:
        """Each logged scalar of the task's loss, averaged over the last ``window`` iterations."""
        scalars = runner.message_hub.log_scalars
        found = {name: scalars.get(f"train/{name}") for name in sorted(self.metric_names)}
        return {name: float(buffer.mean(window)) for name, buffer in found.items() if buffer is not None}

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        checkpoint.setdefault(STATE_KEY, {})["metrics"] = sorted(self.metric_names)

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        self.metric_names = set((checkpoint.get(STATE_KEY) or {}).get("metrics", []))


class BadImageHook(Hook):
    """Count unreadable images per batch; stop with a clear error once over ``max_bad_fraction``.

    The counts travel in every checkpoint, so a resumed run goes on counting (and a run that stopped for too
    many bad images stops again on a rerun, rather than passing with nothing counted).
    """

    priority = "HIGH"

    def __init__(self, source: str, max_bad_fraction: float, min_seen: int = 100) -> None:
        self.source, self.max_bad_fraction, self.min_seen = source, max_bad_fraction, min_seen
        self.bad = 0
        self.seen = 0

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        if isinstance(data_batch, Batch):
            self.bad += data_batch.bad
            self.seen += data_batch.seen
        self.check(final=False)

    def check(self, final: bool) -> None:
        """Raise TooManyBadImages past the limit (after ``min_seen`` images, or at the end of the run)."""
        if not self.seen or (self.seen < self.min_seen and not final):
            return
        if self.bad / self.seen > self.max_bad_fraction:
            raise TooManyBadImages(
                f"dataset {self.source!r}: {self.bad} of {self.seen} training images unreadable"
                f" ({self.bad / self.seen:.1%}), more than max_bad_fraction={self.max_bad_fraction:g}"
            )

    def after_train(self, runner: Any) -> None:
        self.check(final=True)

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        checkpoint.setdefault(STATE_KEY, {}).update(bad_images=self.bad, seen_images=self.seen)

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        state = checkpoint.get(STATE_KEY) or {}
        self.bad, self.seen = int(state.get("bad_images", 0)), int(state.get("seen_images", 0))


class RetainingCheckpointHook(CheckpointHook):
    """mmengine's CheckpointHook, but old checkpoints are deleted only AFTER the new one is complete.

    (mmengine deletes the oldest before writing the next one: a kill during that write leaves one fewer.)
    ``max_keep_ckpts`` keeps that many of the newest checkpoints; mmengine's ``last_checkpoint`` file is not
    written (a resume picks the newest checkpoint that verifies, see :mod:`sslreg.runner.checkpoints`).
    """

    def __init__(self, *args: Any, max_keep_ckpts: int = -1, **kwargs: Any) -> None:
        super().__init__(*args, max_keep_ckpts=-1, **kwargs)
        self.keep = max_keep_ckpts

    def _save_checkpoint_with_step(self, runner: Any, step: int, meta: dict) -> None:
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info("last_ckpt", self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args,
        )
        if is_main_process() and self.keep > 0 and checkpoints.CHECKPOINT.match(filename):
            checkpoints.prune(Path(self.out_dir), self.keep, step)


class ProgressHook(Hook):
    """A rich progress bar with throughput and ETA on a terminal; else a plain line every ``interval`` iterations."""

    priority = "LOW"

    def __init__(self, batch_size: int, interval: int, tty: bool | None = None) -> None:
        self.batch_size, self.interval = batch_size, interval
        self.tty = sys.stdout.isatty() if tty is None else tty
        self.progress: Any = None
        self.task: Any = None
        self.start = 0.0
        self.start_iter = 0

    def before_train(self, runner: Any) -> None:
        if runner.rank != 0:
            return
        self.start, self.start_iter = time.perf_counter(), runner.iter
        if self.tty:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("pretraining"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
            )
            self.progress.start()
            self.task = self.progress.add_task("train", total=runner.max_iters, completed=runner.iter, info="")

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: dict | None = None
    ) -> None:
        if runner.rank != 0:
            return
        done = runner.iter + 1
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = (done - self.start_iter) * self.batch_size / elapsed
        loss = float(outputs["loss"].detach()) if outputs and "loss" in outputs else float("nan")
        info = f"loss {loss:.4f}  {rate:.1f} img/s"
        if self.progress is not None:
            self.progress.update(self.task, completed=done, info=info)
        elif done % self.interval == 0 or done == runner.max_iters:
            remaining = (runner.max_iters - done) * elapsed / max(done - self.start_iter, 1)
            print(
                f"pretrain: epoch {runner.epoch + 1}/{runner.max_epochs} iter {done}/{runner.max_iters}"
                f"  {info}  ETA {timedelta(seconds=round(remaining))}",
                flush=True,
            )

    def after_train(self, runner: Any) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
