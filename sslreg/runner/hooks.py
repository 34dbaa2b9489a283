"""mmengine hooks of the pretraining run: safe checkpoints, the progress bar, the bad-image count."""

from __future__ import annotations

import random
import sys
import time
from datetime import timedelta
from typing import Any

import numpy as np
import torch
from mmengine.hooks import Hook

from sslreg.data import Batch
from sslreg.runner.compat import plain_message_hub


class TooManyBadImages(ValueError):
    """More than ``max_bad_fraction`` of the training images could not be read."""


class SafeCheckpointHook(Hook):
    """Keep checkpoints free of code-executing objects, and carry the RNG states so a resume is exact."""

    priority = "VERY_LOW"

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        checkpoint["message_hub"] = plain_message_hub(checkpoint["message_hub"])
        checkpoint["meta"].pop("dataset_meta", None)
        kind, keys, position, gauss_next, cached = np.random.get_state(legacy=True)
        checkpoint["rng"] = {
            "torch": torch.get_rng_state(),
            "python": [list(random.getstate()[1]), random.getstate()[0], random.getstate()[2]],
            "numpy": [kind, keys, int(position), int(gauss_next), float(cached)],
        }

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        state = checkpoint.get("rng")
        if not state:
            return
        torch.set_rng_state(state["torch"])
        internal, version, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        kind, keys, position, gauss_next, cached = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, gauss_next, cached))


class BadImageHook(Hook):
    """Count unreadable images per batch; stop with a clear error once over ``max_bad_fraction``."""

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
