"""Step time of sslreg's mmengine-based pretraining runner against a bare torch loop, same model, data, optimizer.

Both read the same data through the core adapter (sslreg.make_loader: same sampler and collate; rotation prediction on
procedural 48 px images, a two-layer conv trunk) on the CPU, in this process (no DataLoader workers); the
steps after a warm-up are timed both in wall time and in this process's CPU time (steadier on a shared
machine). Prints the ratios runner / bare (target <= 1.10).
Run: OMP_NUM_THREADS=1 python3 benchmarks/runner_overhead.py [--iters 80]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from mmengine.hooks import Hook

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import runner_helpers as helpers

from sslreg import make_loader
from sslreg.experiment import validate_experiment
from sslreg.runner.data import PretextTransform
from sslreg.runner.training import build_runner


def experiment(work_dir: Path, iters: int, width: int, batch: int) -> dict:
    raw = helpers.experiment_dict(work_dir, epochs=1, batch_size=batch, log_interval=10, max_iters=iters)
    raw["pretrain"]["backbone"]["width"] = width
    raw["pretrain"]["pretext"]["size"] = 40
    raw["pretrain"]["data"].update(size=iters * batch, image_size=48)
    raw["evaluate"] = []
    return raw


class StepTimes(Hook):
    """Wall time at the end of every training iteration."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.times.append((time.perf_counter(), time.process_time()))


def per_step(times: list[tuple[float, float]], warmup: int) -> tuple[float, float]:
    """(wall, CPU) seconds per step after ``warmup`` steps."""
    steps = len(times) - 1 - warmup
    return tuple((times[-1][k] - times[warmup][k]) / steps for k in range(2))


def bare_loop(config, registry, warmup: int) -> tuple[float, float]:
    """The same training with nothing but a DataLoader, forward, backward and SGD."""
    schedule = config.pretrain.schedule
    task = registry.build("pretext", config.pretrain.pretext)
    source = registry.build("dataset", config.pretrain.data)
    torch.manual_seed(config.seed)
    model = task.build_model(registry.build("backbone", config.pretrain.backbone))
    optimizer = torch.optim.SGD(
        model.parameters(), lr=schedule.lr, momentum=schedule.momentum, weight_decay=schedule.weight_decay
    )
    loader = make_loader(
        source,
        PretextTransform(task),
        batch_size=schedule.batch_size,
        seed=config.seed,
        shuffle=True,
        rank=0,
        world_size=1,
        drop_last=True,
    )
    times = []
    model.train()
    for batch in loader:
        inputs, targets = batch.data
        loss = task.loss(model, inputs, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append((time.perf_counter(), time.process_time()))
    return per_step(times, warmup)


def runner_loop(config, registry, work_dir: Path, warmup: int) -> tuple[float, float]:
    runner = build_runner(config, registry, work_dir, None)
    timer = StepTimes()
    runner.register_hook(timer, priority="LOWEST")
    runner.train()
    return per_step(timer.times, warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=80)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warmup = 10
    registry = helpers.make_registry()
    with tempfile.TemporaryDirectory() as tmp:
        bare, run = [], []
        for repeat in range(args.repeats):  # interleaved, best of each: the machine may be shared
            config = validate_experiment(
                experiment(Path(tmp) / f"r{repeat}", args.iters, args.width, args.batch), registry
            )
            bare.append(bare_loop(config, registry, warmup))
            run.append(runner_loop(config, registry, Path(tmp) / f"r{repeat}", warmup))
    for k, kind in enumerate(("wall", "CPU")):
        b, r = min(x[k] for x in bare), min(x[k] for x in run)
        print(
            f"{kind:4} bare torch loop: {b * 1000:8.2f} ms/step (runs: {', '.join(f'{x[k] * 1000:.2f}' for x in bare)})"
        )
        print(
            f"{kind:4} sslreg runner  : {r * 1000:8.2f} ms/step (runs: {', '.join(f'{x[k] * 1000:.2f}' for x in run)})"
        )
        print(f"{kind:4} ratio runner/bare: {r / b:.3f}  (target <= 1.10)")


if __name__ == "__main__":
    main()
