"""Jigsaw data path vs trunk: is the CPU tile pipeline fast enough to feed training, and how fast are |P| sets built?

Prints (1) tiles/s of ``Jigsaw.make_sample`` on real photos (scikit-image samples, no download) in the main
process and with N DataLoader workers; (2) tiles/s a trunk consumes in training (forward + backward of trunk +
jigsaw head on 64 px tiles: resnet18/alexnet from sslreg-backbones when installed, else the tests' tiny trunk),
on the CPU and on a GPU when there is one; the ratio data/trunk (>= 1: the data path is not the bottleneck);
(3) the time to generate |P| = 10,000 uncached, and the running-score generator against the reference's
quadratic recompute-everything loop measured at the same small |P|.

    python benchmarks/jigsaw_pipeline.py [--workers 2] [--trunk resnet18] [--samples 300]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sslreg_jigsaw import Jigsaw, JigsawConfig
from sslreg_jigsaw import permutations as P
from torch.utils.data import DataLoader, Dataset

ROOT = Path(__file__).resolve().parents[1]


def photos() -> list[np.ndarray]:
    """Full-size sample photos bundled with scikit-image."""
    from skimage import data

    names = (
        "astronaut",
        "chelsea",
        "coffee",
        "rocket",
        "hubble_deep_field",
        "immunohistochemistry",
    )
    return [np.ascontiguousarray(getattr(data, name)()[:, :, :3]) for name in names]


class Puzzles(Dataset):
    """``length`` jigsaw samples cycling over the photos, one seeded Generator per index."""

    def __init__(self, task: Jigsaw, images: list[np.ndarray], length: int) -> None:
        self.task, self.images, self.length = task, images, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.task.make_sample(self.images[index % len(self.images)], np.random.default_rng(index))


def data_tiles_per_s(task: Jigsaw, images: list[np.ndarray], samples: int, workers: int) -> float:
    """Tiles/s of the sample pipeline: in-process when workers == 0, else through a DataLoader."""
    dataset = Puzzles(task, images, samples)
    if workers == 0:
        dataset[0]
        started = time.perf_counter()
        for index in range(samples):
            dataset[index]
        return samples * task.num_tiles / (time.perf_counter() - started)
    loader = DataLoader(
        dataset,
        batch_size=16,
        num_workers=workers,
        persistent_workers=False,
        prefetch_factor=4,
    )
    iterator = iter(loader)
    next(iterator)  # workers started and warm
    started, seen = time.perf_counter(), 0
    for tiles, _ in iterator:
        seen += tiles.shape[0]
    return seen * task.num_tiles / (time.perf_counter() - started)


def make_trunk(name: str) -> tuple[torch.nn.Module, str]:
    """A trunk from sslreg-backbones (through its hook, without loading every plugin), else the test trunk."""
    try:
        import sslreg_backbones

        classes: list[type] = []
        sslreg_backbones.sslreg_register(register=classes.append)
        by_name = {cls.name: cls for cls in classes}
        if name in by_name:
            cls = by_name[name]
            return cls(cls.Config(name=name)), name
    except ImportError:
        pass
    spec = importlib.util.spec_from_file_location("tiny_trunk", ROOT / "plugins/jigsaw/tests/tiny_trunk.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TinyTrunk(width=32), "tiny test trunk (sslreg-backbones not installed)"


def trunk_tiles_per_s(task: Jigsaw, trunk: torch.nn.Module, device: str, batch: int, steps: int) -> float:
    """Tiles/s of training steps (forward + backward + SGD step) of trunk + jigsaw head on ``device``."""
    torch.manual_seed(0)
    model = task.build_model(trunk).to(device).train()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    tiles = torch.randn(batch, task.num_tiles, 3, task.config.tile, task.config.tile, device=device)
    targets = torch.randint(len(task.permutations), (batch,), device=device)

    def step() -> None:
        loss = task.loss(model, tiles, targets)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    step()
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * batch * task.num_tiles / (time.perf_counter() - started)


def reference_greedy_seconds(n: int, seed: int = 0) -> float:
    """The reference's loop: every step recomputes the distances of all 9! candidates to the whole set."""
    candidates = P.all_permutations(9)
    started = time.perf_counter()
    chosen = [int(np.random.default_rng(seed).integers(len(candidates)))]
    for _ in range(n - 1):
        distances = (candidates[:, None, :] != candidates[chosen][None, :, :]).sum(axis=2, dtype=np.int32)
        score = distances.mean(axis=1)
        score[chosen] = -1
        chosen.append(int(np.argmax(score)))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="DataLoader workers for the multi-process figure",
    )
    parser.add_argument("--samples", type=int, default=300, help="puzzles per data-path measurement")
    parser.add_argument(
        "--trunk",
        default="resnet18",
        help="sslreg-backbones trunk (resnet18, alexnet, resnet50)",
    )
    parser.add_argument("--batch", type=int, default=32, help="puzzles per training step (x9 tiles)")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps")
    parser.add_argument("--num-permutations", type=int, default=2000)
    args = parser.parse_args()

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    print(f"machine: {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, GPU {gpu}")
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        P.all_permutations.cache_clear()
        P._one_hot_rows.cache_clear()
        perms = P.generate_permutations(10000, seed=0, method="max_avg")
        generate_s = time.perf_counter() - started
        print(f"|P| = 10000 (max_avg, uncached, incl. enumerating 9!): {generate_s:.1f} s; {P.hamming_stats(perms)}")
        started = time.perf_counter()
        perms_min = P.generate_permutations(10000, seed=0, method="max_min")
        print(f"|P| = 10000 (max_min, uncached): {time.perf_counter() - started:.1f} s; {P.hamming_stats(perms_min)}")
        small = 20
        reference_s = reference_greedy_seconds(small)
        started = time.perf_counter()
        P.generate_permutations(small, seed=0, method="max_avg")
        ours_s = time.perf_counter() - started
        estimate_h = reference_s * (10000 / small) ** 2 / 3600
        print(
            f"|P| = {small}: reference quadratic loop {reference_s:.2f} s, running sums {ours_s:.3f} s"
            f" -> ratio {reference_s / ours_s:.0f}x (reference at |P| = 10000 ~ {estimate_h:.0f} h, quadratic"
            f" extrapolation)"
        )

        task = Jigsaw(JigsawConfig(num_permutations=args.num_permutations, cache_dir=cache))
        images = photos()
        single = data_tiles_per_s(task, images, args.samples, workers=0)
        multi = data_tiles_per_s(task, images, args.samples * args.workers, workers=args.workers)
        print(
            f"data path (255 px -> 9 x 64 px tiles, jitter + gray + per-tile norm, photos"
            f" {'/'.join(str(min(i.shape[:2])) for i in images)} px):"
        )
        print(f"  1 process: {single:8.0f} tiles/s   {args.workers} DataLoader workers: {multi:8.0f} tiles/s")

        trunk, trunk_name = make_trunk(args.trunk)
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        for device in devices:
            steps = args.steps if device == "cpu" else 20
            batch = args.batch if device == "cpu" else 256
            consumed = trunk_tiles_per_s(task, trunk, device, batch, steps)
            print(
                f"trunk {trunk_name} on {device} (train step, {batch} x 9 tiles of 64 px,"
                f" |P| = {args.num_permutations}): {consumed:8.0f} tiles/s"
            )
            print(
                f"  ratio data/trunk: 1 process {single / consumed:6.2f}"
                f"   {args.workers} workers {multi / consumed:6.2f}"
                f"   (>= 1: the data path keeps up; workers needed for ratio 1: {math.ceil(consumed / single)})"
            )


if __name__ == "__main__":
    main()
