"""The pretext model as an mmengine BaseModel: ``forward(inputs, targets, mode='loss') -> {'loss': ..., ...}``."""

from __future__ import annotations

import inspect
from collections import OrderedDict
from numbers import Number
from typing import Any

import torch
from mmengine.model import BaseModel

from sslreg.calls import plugin_call
from sslreg.errors import PluginError
from sslreg.pretext import PretextModel, PretextTask, StepContext

#: The module state a PretextRunnerModel shares with its PretextModel (so both are views of the same state).
_SHARED = ("_parameters", "_buffers", "_non_persistent_buffers_set", "_modules")


class PretextRunnerModel(BaseModel):
    """The task's PretextModel, seen by mmengine: the same modules, parameters and buffers under the same names.

    Both objects share their module dictionaries, so whatever the task sets on its model (a head, a momentum
    encoder, a queue buffer, even after construction) is moved to the device, trained, checkpointed and restored
    under the same key (``trunk.``, ``head.``, ``queue``, ...). The task's ``loss`` may return extra named scalars;
    they are logged beside the loss (see :meth:`parse_losses`).
    """

    def __init__(self, task: PretextTask, model: PretextModel) -> None:
        super().__init__()
        preprocessor = self._modules.pop("data_preprocessor")
        for name in _SHARED:
            object.__setattr__(self, name, getattr(model, name))
        object.__setattr__(self, "data_preprocessor", preprocessor)  # kept out of the shared modules
        object.__setattr__(self, "task", task)  # not a module: keep it out of state_dict and .to()
        object.__setattr__(self, "pretext", model)  # the view task.loss expects
        object.__setattr__(self, "context", StepContext())
        object.__setattr__(self, "metric_names", set())
        wants = inspect.signature(task.loss).parameters
        object.__setattr__(self, "_loss_takes_context", "context" in wants)

    def _set_device(self, device: torch.device) -> None:
        super()._set_device(device)
        self.data_preprocessor._device = device

    def train(self, mode: bool = True) -> PretextRunnerModel:
        """Train/eval mode for every module, the task's model object included."""
        super().train(mode)
        self.pretext.training = mode
        return self

    def forward(self, data: Any, bad: int = 0, seen: int = 0, mode: str = "loss") -> dict[str, Any] | torch.Tensor:
        """'loss': the task's loss (and extra scalars) on a batch (``data`` = (inputs, targets) of an
        :class:`sslreg.data.Batch`); 'tensor'/'predict': the trunk's deepest features of ``data`` (an input tensor)."""
        if mode == "loss":
            if data is None:  # every image of this batch was unreadable: a zero loss keeps DDP in step
                return {"loss": sum(p.sum() * 0.0 for p in self.parameters() if p.requires_grad)}
            inputs, targets = data
            with plugin_call(self.task, "loss"):
                if self._loss_takes_context:
                    out = self.task.loss(self.pretext, inputs, targets, context=self.context)
                else:
                    out = self.task.loss(self.pretext, inputs, targets)
            return self._checked(out)
        if mode in ("tensor", "predict"):
            return self.trunk(data)
        raise ValueError(f"PretextRunnerModel: unknown mode {mode!r} (expected 'loss', 'tensor' or 'predict')")

    def _checked(self, out: Any) -> dict[str, Any]:
        """``{"loss": tensor, name: scalar, ...}`` from what ``loss`` returned; a PluginError says what is wrong."""
        where = f"pretext {self.task.name!r}: loss()"
        losses = out if isinstance(out, dict) else {"loss": out}
        loss = losses.get("loss")
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise PluginError(f"{where} must return a scalar tensor or a dict with a scalar tensor under 'loss'")
        for name, value in losses.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise PluginError(f"{where}: extra scalar names must be identifiers, not {name!r}")
            if not (isinstance(value, Number) or (isinstance(value, torch.Tensor) and value.numel() == 1)):
                raise PluginError(f"{where}: {name!r} must be a number or a one-element tensor")
        self.metric_names.update(losses)
        return losses

    def parse_losses(self, losses: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss to optimise is ``losses['loss']`` alone (mmengine would sum every key containing 'loss');
        every entry is logged."""
        loss = losses["loss"].reshape(())
        log_vars: OrderedDict[str, torch.Tensor] = OrderedDict(loss=loss.detach())
        for name, value in losses.items():
            if name != "loss":
                log_vars[name] = torch.as_tensor(value, dtype=torch.float32).detach().reshape(())
        return loss, log_vars
