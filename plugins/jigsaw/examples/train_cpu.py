"""Train a tiny trunk on Jigsaw puzzles from real photos on the CPU and show the loss falling below log|P|.

Photos come from scikit-image's bundled samples (no download), cut into 128 px crops; a plain torch loop
draws fresh puzzles every step. Run: python plugins/jigsaw/examples/train_cpu.py [--steps 300]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import time
from pathlib import Path

import numpy as np
import torch
from sslreg_jigsaw import Jigsaw, JigsawConfig

from sslreg import Backbone

PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
)


def photo_crops(size: int = 128, per_photo: int = 12, seed: int = 0) -> list[np.ndarray]:
    """Random ``size`` px square crops of scikit-image's sample photos, each photo first shrunk to 256 px."""
    import cv2
    from skimage import data

    rng = np.random.default_rng(seed)
    crops = []
    for name in PHOTOS:
        image = getattr(data, name)()[:, :, :3]
        scale = 256 / min(image.shape[:2])
        image = cv2.resize(
            image,
            (round(image.shape[1] * scale), round(image.shape[0] * scale)),
            cv2.INTER_AREA,
        )
        for _ in range(per_photo):
            top = int(rng.integers(image.shape[0] - size + 1))
            left = int(rng.integers(image.shape[1] - size + 1))
            crops.append(np.ascontiguousarray(image[top : top + size, left : left + size]))
    return crops


def tiny_trunk() -> Backbone:
    """The test suite's two-layer conv trunk (plugins/jigsaw/tests/tiny_trunk.py)."""
    path = Path(__file__).resolve().parents[1] / "tests" / "tiny_trunk.py"
    spec = importlib.util.spec_from_file_location("sslreg_jigsaw_tiny_trunk", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TinyTrunk(width=32)


def train(
    steps: int = 300,
    num_permutations: int = 10,
    batch_size: int = 16,
    lr: float = 3e-3,
    seed: int = 0,
    cache_dir: str | None = None,
    **options: object,
) -> dict[str, float]:
    """Train and return the mean loss of the first and last 10 % of steps next to log|P|.

    ``options`` override the small CPU geometry and head below (any JigsawConfig field).
    """
    torch.manual_seed(seed)
    small = {
        "image_size": 96,
        "cell": 32,
        "tile": 28,
        "tile_dim": 64,
        "hidden_dim": 128,
        "dropout": 0.0,
        "pool_size": 3,
    }
    config = JigsawConfig(num_permutations=num_permutations, cache_dir=cache_dir, **{**small, **options})
    task = Jigsaw(config)
    model = task.build_model(tiny_trunk())
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    images = photo_crops(seed=seed)
    rng = np.random.default_rng(seed)
    losses = []
    model.train()
    for _ in range(steps):
        picks = rng.integers(len(images), size=batch_size)
        pairs = [task.make_sample(images[i], rng) for i in picks]
        tiles, targets = (
            torch.stack([p[0] for p in pairs]),
            torch.stack([p[1] for p in pairs]),
        )
        loss = task.loss(model, tiles, targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    window = max(1, steps // 10)
    return {
        "log_P": math.log(num_permutations),
        "start_loss": float(np.mean(losses[:window])),
        "end_loss": float(np.mean(losses[-window:])),
        "steps": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--num-permutations", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    result = train(steps=args.steps, num_permutations=args.num_permutations, seed=args.seed)
    print(
        f"jigsaw |P| = {args.num_permutations}, {result['steps']} steps: loss {result['start_loss']:.3f} (first 10 %)"
        f" -> {result['end_loss']:.3f} (last 10 %); log|P| = {result['log_P']:.3f};"
        f" {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
