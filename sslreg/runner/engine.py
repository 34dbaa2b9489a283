"""mmengine's Runner with atomic, weights-only-safe checkpoints (see :mod:`sslreg.runner.compat`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from mmengine.dist import master_only
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint_to_model

from sslreg.runner import compat


class SafeRunner(Runner):
    """Runner whose checkpoints are written to a temporary name then ``os.replace``-d, and loaded weights-only."""

    def build_logger(self, *args: Any, **kwargs: Any) -> Any:
        """mmengine's logger, writing everything to the run's log file but only errors to the terminal."""
        logger = super().build_logger(*args, **kwargs)
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                handler.setLevel(logging.ERROR)
        return logger

    def dump_config(self) -> None:
        """Nothing: the run folder already holds the resolved experiment as config.yaml."""

    @master_only
    def save_checkpoint(self, out_dir: str, filename: str, *args: Any, **kwargs: Any) -> None:
        """Write ``filename`` atomically: a killed run leaves the previous checkpoint, never a torn one."""
        partial = f".{filename}.part"
        super().save_checkpoint(out_dir, partial, *args, **kwargs)
        os.replace(os.path.join(out_dir, partial), os.path.join(out_dir, filename))

    def load_checkpoint(
        self,
        filename: str,
        map_location: str | Callable = "cpu",
        strict: bool = False,
        revise_keys: list = [(r"^module.", "")],  # noqa: B006 - mmengine's signature
    ) -> dict:
        """Load with ``torch.load(weights_only=True)``; the message hub comes back as HistoryBuffers."""
        checkpoint = compat.load_checkpoint(filename, map_location=map_location)
        self.call_hook("after_load_checkpoint", checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        checkpoint = _load_checkpoint_to_model(model, checkpoint, strict, revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f"Load checkpoint from {filename}")
        return checkpoint
