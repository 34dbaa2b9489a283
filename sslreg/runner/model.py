"""The pretext model as an mmengine BaseModel: ``forward(inputs, targets, mode='loss') -> {'loss': ...}``."""

from __future__ import annotations

from typing import Any

import torch
from mmengine.model import BaseModel

from sslreg.calls import plugin_call
from sslreg.pretext import PretextModel, PretextTask


class PretextRunnerModel(BaseModel):
    """Trunk + head of one pretext task; parameters live under ``trunk.`` and ``head.`` as in PretextModel."""

    def __init__(self, task: PretextTask, model: PretextModel) -> None:
        super().__init__()
        self.trunk = model.trunk
        self.head = model.head
        object.__setattr__(self, "task", task)  # not a module: keep it out of state_dict and .to()
        object.__setattr__(self, "pretext", model)  # same trunk/head objects, the view task.loss expects

    def forward(
        self, data: Any, bad: int = 0, seen: int = 0, mode: str = "loss"
    ) -> dict[str, torch.Tensor] | torch.Tensor:
        """'loss': the task's loss on a batch (``data`` = (inputs, targets) of an :class:`sslreg.data.Batch`);
        'tensor'/'predict': the trunk's deepest features of ``data`` (an input tensor)."""
        if mode == "loss":
            if data is None:  # every image of this batch was unreadable: a zero loss keeps DDP in step
                return {"loss": sum(p.sum() * 0.0 for p in self.parameters())}
            inputs, targets = data
            with plugin_call(self.task, "loss"):
                return {"loss": self.task.loss(self.pretext, inputs, targets)}
        if mode in ("tensor", "predict"):
            return self.trunk(data)
        raise ValueError(f"PretextRunnerModel: unknown mode {mode!r} (expected 'loss', 'tensor' or 'predict')")
