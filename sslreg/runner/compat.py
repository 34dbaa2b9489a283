"""Keep mmengine 0.10.7 checkpoints loadable with ``torch.load(weights_only=True)`` without allow-listing code.

mmengine stores the message hub's ``HistoryBuffer`` objects in every checkpoint, and those pickle their statistics
methods as bound methods (resolved through ``getattr``). Allow-listing ``getattr`` would let a checkpoint run any
code, so instead the buffers are turned into plain numbers and lists before saving (:func:`plain_message_hub`) and
rebuilt after loading (:func:`restore_message_hub`). The only extra globals a checkpoint may then hold are numpy
arrays, scalars and dtypes (:data:`sslreg.files.NUMPY_SAFE_GLOBALS`), allowed for the duration of one load.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

from sslreg.files import atomic_write_bytes, load_weights_only

#: Marker of a HistoryBuffer turned into plain data.
BUFFER_TAG = "__history_buffer__"


_PLAIN = (bool, int, float, str, type(None), torch.Tensor, np.ndarray, np.generic)


def _plain_value(value: Any) -> Any:
    """``value`` if it is made only of plain data, else ``None`` (not worth a code-executing checkpoint)."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)):
        items = [_plain_value(item) for item in value]
        return None if any(i is None and v is not None for i, v in zip(items, value)) else type(value)(items)
    if isinstance(value, dict):
        items = {key: _plain_value(item) for key, item in value.items()}
        bad = any(not isinstance(k, (str, int)) for k in value) or any(
            items[k] is None and value[k] is not None for k in value
        )
        return None if bad else items
    return None


def plain_message_hub(state: dict[str, Any]) -> dict[str, Any]:
    """A message-hub state dict with every HistoryBuffer as ``{BUFFER_TAG: True, log, count, max_length}``.

    Runtime entries that are not plain data are dropped (they would need arbitrary globals to load).
    """
    scalars = {}
    for key, buffer in state.get("log_scalars", {}).items():
        if isinstance(buffer, HistoryBuffer):
            log, count = buffer.data
            scalars[key] = {
                BUFFER_TAG: True,
                "log": np.asarray(log, dtype=np.float64).tolist(),
                "count": np.asarray(count, dtype=np.float64).tolist(),
                "max_length": int(buffer.max_length),
            }
    info = {}
    for key, value in state.get("runtime_info", {}).items():
        plain = _plain_value(value)
        if plain is not None or value is None:
            info[key] = plain
    resumed = {str(k): bool(v) for k, v in state.get("resumed_keys", {}).items()}
    return {"log_scalars": scalars, "runtime_info": info, "resumed_keys": resumed}


def restore_message_hub(state: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`plain_message_hub`: rebuild the HistoryBuffer objects mmengine expects."""
    scalars = {}
    for key, value in state.get("log_scalars", {}).items():
        if isinstance(value, dict) and value.get(BUFFER_TAG):
            scalars[key] = HistoryBuffer(value["log"], value["count"], value["max_length"])
        else:
            scalars[key] = value
    return {**state, "log_scalars": scalars}


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``, allowing numpy data types and nothing else extra."""
    checkpoint = load_weights_only(path, map_location)
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("message_hub"), dict):
        checkpoint["message_hub"] = restore_message_hub(checkpoint["message_hub"])
    return checkpoint


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace``: never a half-written file.

    Serialised in memory first: torch's writer turns a full disk into an unreadable RuntimeError, a plain
    file write gives an OSError (ENOSPC) naming ``path``.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getbuffer())
