"""mmengine's Runner with atomic, checksummed, weights-only-safe checkpoints (see :mod:`sslreg.runner.compat`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmengine.dist import master_only
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint_to_model

from sslreg import files
from sslreg.runner import checkpoints, compat


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
        """Write ``filename`` as ``.filename.part``, sync it, record its sha256 beside it, then rename it.

        A killed run leaves the previous checkpoints and at most a ``.part`` file, never a torn checkpoint; a
        failed write (full disk) removes the ``.part`` file and raises an OSError naming the checkpoint.
        """
        final = Path(out_dir) / filename
        partial = final.with_name(f".{filename}.part")
        try:
            super().save_checkpoint(out_dir, partial.name, *args, **kwargs)
            with open(partial, "rb+") as stream:
                os.fsync(stream.fileno())
            checkpoints.write_sidecar(final, files.sha256_file(partial))
            files.publish(partial, final)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise files.with_filename(error, final) from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

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
