"""The training contract end to end: step context and hooks, extra scalars in TensorBoard and results, task-owned
modules and buffers (moved, trained or frozen, checkpointed), the evaluated trunk, target-less samples, and the
same loss at every step whatever num_workers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
import runner_helpers as helpers

from sslreg import (
    Augment,
    Backbone,
    PretextConfig,
    PretextModel,
    PretextTask,
    StepContext,
    build_trunk,
    load_weights_only,
)
from sslreg.cli import run_guarded
from sslreg.config import Plan
from sslreg.experiment import validate_experiment
from sslreg.runner import run_plan


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class ProbeConfig(PretextConfig):
    name: str = "probe"
    targets: bool = Field(True, description="Give targets (False: contrastive-style samples without targets).")
    teacher: bool = Field(False, description="Evaluate a momentum copy of the trunk instead of the trunk.")


class ProbeModel(PretextModel):
    """Trunk + head, and task-owned state: a trained projector, a frozen layer, step buffers, a teacher."""

    def __init__(self, trunk: Backbone, head: nn.Module, teacher: bool) -> None:
        super().__init__(trunk, head)
        self.projector = nn.Linear(8, 8)
        self.frozen = nn.Linear(8, 4)
        nn.init.constant_(self.frozen.weight, 0.5)
        self.frozen.requires_grad_(False)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("seen_iterations", torch.full((16,), -1, dtype=torch.long))
        if teacher:
            import copy

            self.teacher = copy.deepcopy(trunk).requires_grad_(False)


class Probe(PretextTask):
    """Rotation prediction with a v2 augmentation, a draw from torch's global RNG in make_sample, dropout in the
    loss (RNG-sensitive everywhere), an accuracy scalar, and step hooks that record the context."""

    name = "probe"
    Config = ProbeConfig
    contexts: list[tuple[str, StepContext]] = []

    def __init__(self, config: ProbeConfig) -> None:
        super().__init__(config)
        self.augment = Augment(({"name": "RandomResizedCrop", "size": 16, "scale": [0.5, 1.0]}, "ColorJitter"))

    def make_sample(self, image: np.ndarray, rng: np.random.Generator) -> tuple[Any, Any]:
        crop = self.augment(image, rng)
        k = int(torch.randint(4, ()))  # torch's global generator: the data adapter seeds it per sample
        tensor = torch.from_numpy(np.ascontiguousarray(np.rot90(crop, k))).permute(2, 0, 1).float() / 127.5 - 1
        return (tensor, torch.tensor(k)) if self.config.targets else ((tensor, tensor.flip(2)), None)

    def build_model(self, trunk: Backbone) -> ProbeModel:
        return ProbeModel(trunk, nn.Linear(8, 4), self.config.teacher)

    def loss(self, model: ProbeModel, inputs: Any, targets: Any, context: StepContext | None = None) -> Any:
        if targets is None:
            first, second = inputs
            a = model.projector(model.trunk(first, ["c2"])["c2"].mean(dim=(2, 3)))
            b = model.projector(model.trunk(second, ["c2"])["c2"].mean(dim=(2, 3)))
            return F.mse_loss(a, b) - F.normalize(a, dim=1).mul(F.normalize(b, dim=1)).sum(1).mean()
        features = F.dropout(model.trunk(inputs, ["c2"])["c2"].mean(dim=(2, 3)), 0.3)
        logits = model.head(model.projector(features)) + model.frozen(features)
        accuracy = (logits.argmax(1) == targets).float().mean() * 100
        return {"loss": F.cross_entropy(logits, targets), "accuracy": accuracy, "iteration": context.iteration}

    def before_step(self, model: ProbeModel, context: StepContext) -> None:
        Probe.contexts.append(("before", context))
        assert not torch.is_grad_enabled()

    def after_step(self, model: ProbeModel, context: StepContext) -> None:
        Probe.contexts.append(("after", context))
        model.steps += 1
        model.seen_iterations[context.iteration] = context.iteration
        if self.config.teacher:
            for mine, theirs in zip(model.teacher.parameters(), model.trunk.parameters()):
                mine.mul_(0.5).add_(theirs, alpha=0.5)

    def evaluated_trunk(self, model: ProbeModel) -> Backbone:
        return model.teacher if self.config.teacher else model.trunk


def registry():
    registry = helpers.make_registry()
    registry.add(Probe, plugin="test", distribution="tests", version="0")
    return registry


def run(tmp_path: Path, name: str, pretext: dict | None = None, **schedule: Any) -> Path:
    raw = helpers.experiment_dict(tmp_path / name, **{"log_interval": 1, **schedule})
    raw["pretrain"]["pretext"] = {"name": "probe", **(pretext or {})}
    raw["evaluate"] = []
    reg = registry()
    plan = Plan("test", raw, [("", {}, validate_experiment(raw, reg))])
    assert run_guarded(lambda: run_plan(plan, reg)) == 0
    return tmp_path / name


def scalars(run_dir: Path) -> list[dict]:
    (path,) = run_dir.glob("*/vis_data/scalars.json")
    return [json.loads(line) for line in path.read_text().splitlines()]


def tensorboard_scalars(run_dir: Path) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = run_dir.glob("*/vis_data/events.out.tfevents.*")
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    return {tag: [event.value for event in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def test_extra_scalars_reach_tensorboard_and_results_and_hooks_see_each_step(tmp_path):
    Probe.contexts = []
    run_dir = run(tmp_path, "probe")
    board = tensorboard_scalars(run_dir)
    assert len(board["accuracy"]) == 8 and all(0 <= value <= 100 for value in board["accuracy"])
    assert board["iteration"] == [float(i) for i in range(8)]  # the loss saw each step's context
    assert len(board["loss"]) == 8
    metrics = json.loads((run_dir / "results.json").read_text())["pretrain"]["metrics"]
    assert set(metrics) == {"loss", "accuracy", "iteration"}
    assert metrics["iteration"] == pytest.approx(7.0)  # the last log window (log_interval 1)
    assert metrics["loss"] == pytest.approx(board["loss"][-1], rel=1e-5)
    # before and after every step, in order, with the step's context
    assert [(when, c.iteration, c.epoch) for when, c in Probe.contexts] == [
        (when, i, i // 4) for i in range(8) for when in ("before", "after")
    ]
    assert {(c.max_iters, c.max_epochs, c.world_size, c.rank) for _, c in Probe.contexts} == {(8, 2, 1, 0)}


def test_task_owned_modules_and_buffers_are_trained_frozen_and_saved_as_declared(tmp_path):
    run_dir = run(tmp_path, "owned")
    state = torch.load(run_dir / "trunk.pth", weights_only=True)["state_dict"]
    assert int(state["steps"]) == 8 and state["seen_iterations"][:8].tolist() == list(range(8))
    assert torch.equal(state["frozen.weight"], torch.full((4, 8), 0.5))  # frozen: weight decay did not touch it
    checkpoint = load_weights_only(run_dir / "epoch_2.pth")["state_dict"]
    assert int(checkpoint["steps"]) == 8 and "projector.weight" in checkpoint
    trained = build_trunk(registry(), {"name": "tinynet"}, seed=0, weights=run_dir / "trunk.pth")
    assert torch.equal(trained.c1.weight, state["trunk.c1.weight"])


def test_the_evaluated_trunk_can_be_a_teacher(tmp_path):
    run_dir = run(tmp_path, "teacher", {"teacher": True})
    saved = torch.load(run_dir / "trunk.pth", weights_only=True)
    checkpoint = load_weights_only(run_dir / "epoch_2.pth")["state_dict"]
    assert saved["meta"]["evaluated_trunk"] == "teacher"
    assert torch.equal(saved["state_dict"]["trunk.c1.weight"], checkpoint["teacher.c1.weight"])
    assert not torch.equal(checkpoint["teacher.c1.weight"], checkpoint["trunk.c1.weight"])
    trunk = build_trunk(registry(), {"name": "tinynet"}, seed=0, weights=run_dir / "trunk.pth")
    assert torch.equal(trunk.c2.weight, checkpoint["teacher.c2.weight"])


def test_samples_without_targets_collate_and_train(tmp_path):
    run_dir = run(tmp_path, "no_targets", {"targets": False})
    losses = [row["loss"] for row in scalars(run_dir) if "loss" in row]
    assert len(losses) == 8 and all(np.isfinite(losses))


def test_num_workers_does_not_change_any_loss(tmp_path):
    """Samples draw from torch's global RNG (v2 augmentations, torch.randint) and the loss uses dropout: the
    adapter's per-sample seeding keeps every step's loss identical with 0 and 2 workers."""
    losses = {}
    for workers in (0, 2):
        rows = scalars(run(tmp_path, f"w{workers}", num_workers=workers))
        losses[workers] = [(row["step"], row["loss"], row["accuracy"]) for row in rows if "loss" in row]
    assert len(losses[0]) == 8
    assert losses[0] == losses[2]


def test_cosine_schedule_with_warmup_and_adamw(tmp_path):
    rows = scalars(
        run(tmp_path, "cosine", optimizer="adamw", lr_schedule="cosine", warmup_iters=2, min_lr=0.001, lr=0.01)
    )
    lrs = [row["lr"] for row in rows if "lr" in row]
    assert lrs[0] == pytest.approx(0.01 * 1e-3)  # warm-up starts at lr / 1000
    assert lrs[2] == pytest.approx(0.01)  # warm-up over: the cosine starts at the base lr
    assert all(a > b for a, b in zip(lrs[2:], lrs[3:]))
    assert lrs[-1] > 0.001 and lrs[-1] < 0.003  # one step before reaching min_lr


def optimizer_of(**options: Any) -> Any:
    from mmengine.optim import build_optim_wrapper

    from sslreg.experiment import ScheduleConfig
    from sslreg.runner.training import NO_DECAY_NORM_BIAS, optimizer_config

    schedule = ScheduleConfig(**options)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1, bias=False))
    config = {"optimizer": optimizer_config(schedule)}
    if not schedule.decay_norm_and_bias:
        config["paramwise_cfg"] = NO_DECAY_NORM_BIAS
    return build_optim_wrapper(model, config).optimizer, model


@pytest.mark.parametrize("name", ["sgd", "adamw", "lars"])
def test_optimisers_and_no_decay_on_norms_and_biases(name):
    optimizer, model = optimizer_of(optimizer=name, weight_decay=0.01, decay_norm_and_bias=False)
    expected = {"sgd": "SGD", "adamw": "AdamW", "lars": "Lars"}[name]
    assert type(optimizer).__name__ == expected
    decay = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    conv, norm, last = model
    assert decay[id(conv.weight)] == decay[id(last.weight)] == 0.01
    assert decay[id(conv.bias)] == decay[id(norm.weight)] == decay[id(norm.bias)] == 0.0
    optimizer, model = optimizer_of(optimizer=name, weight_decay=0.01)
    assert {group["weight_decay"] for group in optimizer.param_groups} == {0.01}


def test_schedule_options_are_checked():
    from sslreg.experiment import ScheduleConfig

    with pytest.raises(ValueError, match="lr_steps apply to lr_schedule 'step'"):
        ScheduleConfig(lr_schedule="cosine", lr_steps=[2])
    with pytest.raises(ValueError, match="optimizer"):
        ScheduleConfig(optimizer="adam")


def test_step_context_cosine_runs_from_start_to_end():
    values = [StepContext(iteration=i, max_iters=5).cosine(0.9, 1.0) for i in range(5)]
    assert values[0] == pytest.approx(0.9) and values[-1] == pytest.approx(1.0) and values[2] == pytest.approx(0.95)
    assert StepContext(iteration=3, max_iters=6).progress == 0.5


class Broken(Probe):
    name = "broken"

    def loss(self, model: ProbeModel, inputs: Any, targets: Any) -> Any:
        return {"accuracy": 1.0}


def test_a_loss_without_loss_is_a_plugin_error_naming_the_task(tmp_path, capsys):
    raw = helpers.experiment_dict(tmp_path / "broken", max_iters=1)
    raw["pretrain"]["pretext"] = {"name": "broken"}
    raw["evaluate"] = []
    reg = registry()
    reg.add(Broken, plugin="test", distribution="tests", version="0")
    plan = Plan("test", raw, [("", {}, validate_experiment(raw, reg))])
    assert run_guarded(lambda: run_plan(plan, reg)) == 1
    assert "pretext 'broken': loss() must return a scalar tensor or a dict" in capsys.readouterr().err
