"""Train colorization for a few hundred CPU steps on skimage's bundled photos, then colourise them.

A plain torch loop (no runner) with a tiny three-layer trunk on 64-px crops: prints the loss at the start
and the end, saves a checkpoint in sslreg's format and writes the gray | prediction | truth PNG grid through
the ``sslreg colorize`` code path.

    OMP_NUM_THREADS=1 python3 plugins/colorization/examples/tiny_training.py --steps 300
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import torch
from pydantic import Field
from sslreg_colorization import Colorization, ColorizationConfig
from sslreg_colorization.colorize import colorize_grid, write_png
from torch import nn

from sslreg import Backbone, BackboneConfig, PoolSpec

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


class TinyTrunkConfig(BackboneConfig):
    """Options of the tiny test trunk."""

    in_channels: int = Field(1, ge=1, le=4, description="Input channels.")
    width: int = Field(16, ge=4, le=256, description="Channels of the first layer (doubles per layer).")


class TinyTrunk(Backbone):
    """Three conv-BN-ReLU layers (strides 2, 4, 8): a trunk small enough for CPU tests."""

    name: ClassVar[str] = "tiny_trunk"
    Config = TinyTrunkConfig
    layer_names = ("conv1", "conv2", "conv3")
    input_size = 64

    def __init__(self, config: TinyTrunkConfig) -> None:
        super().__init__(config)
        if config.seed is not None:
            torch.manual_seed(config.seed)
        widths = [config.width, 2 * config.width, 4 * config.width]
        channels = [config.in_channels, *widths]
        self.stages = nn.ModuleDict(
            {
                name: nn.Sequential(
                    nn.Conv2d(channels[i], channels[i + 1], 3, stride=2, padding=1, bias=False),
                    nn.BatchNorm2d(channels[i + 1]),
                    nn.ReLU(inplace=True),
                )
                for i, name in enumerate(self.layer_names)
            }
        )
        self._channels = dict(zip(self.layer_names, widths))

    @property
    def layer_channels(self) -> dict[str, int]:
        return self._channels

    @property
    def layer_strides(self) -> dict[str, int]:
        return {"conv1": 2, "conv2": 4, "conv3": 8}

    @property
    def pool_specs(self) -> dict[str, PoolSpec]:
        return {"conv1": PoolSpec(4, 4, 0, 8), "conv2": PoolSpec(2, 2, 0, 8), "conv3": PoolSpec(1, 1, 0, 8)}

    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = self.resolve_layers(layers)
        out: dict[str, torch.Tensor] = {}
        for name, stage in self.stages.items():
            x = stage(x)
            if name in wanted:
                out[name] = x
            if name == wanted[-1]:
                break
        return out


def register_tiny_trunk() -> None:
    """Make ``tiny_trunk`` buildable through the process registry (as an installed plugin would)."""
    from sslreg.plugins import get_registry

    registry = get_registry()
    if not registry.find(TinyTrunk.name):
        registry.add(TinyTrunk, "tiny_training example")


def photos(short_side: int = 128) -> list[np.ndarray]:
    """skimage's bundled colour photos (no download), scaled so the shorter side is ``short_side``."""
    import skimage.data

    out = []
    for name in PHOTOS:
        image = getattr(skimage.data, name)()
        scale = short_side / min(image.shape[:2])
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        out.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
    return out


def save_checkpoint(path: Path, model: nn.Module, backbone: dict, pretext: dict) -> None:
    """An sslreg pretraining checkpoint: state_dict (trunk.*, head.*) and the resolved config in meta."""
    meta = {"config": {"pretrain": {"backbone": backbone, "pretext": pretext}}}
    torch.save({"state_dict": model.state_dict(), "meta": meta}, path)


def train(
    steps: int = 300,
    batch_size: int = 16,
    num_neighbors: int = 10,
    seed: int = 0,
    lr: float = 3e-3,
    cache_dir: Path | None = None,
    log_every: int = 0,
) -> tuple[list[float], nn.Module, Colorization, dict, dict]:
    """Train on random 64-px crops; returns the per-step losses, the model, the task and both option dicts."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cache = Path(cache_dir or tempfile.mkdtemp(prefix="sslreg-colorization-"))
    backbone_options = {"name": TinyTrunk.name, "in_channels": 1, "width": 16, "seed": seed}
    pretext_options = {
        "name": Colorization.name,
        "num_neighbors": num_neighbors,
        "image_size": 64,
        "target_stride": 4,
        "head_channels": 64,
        "cache_dir": str(cache),
    }
    task = Colorization(ColorizationConfig(**pretext_options))
    images = photos()
    task.prepare(images, cache)
    model = task.build_model(TinyTrunk(TinyTrunkConfig(**backbone_options)))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for step in range(steps):
        pairs = [task.make_sample(images[int(rng.integers(len(images)))], rng) for _ in range(batch_size)]
        inputs, targets = (torch.stack(part) for part in zip(*pairs))
        loss = task.loss(model, inputs, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if log_every and (step % log_every == 0 or step == steps - 1):
            print(f"step {step:4d}  loss {loss.item():.4f}")
    return losses, model.eval(), task, backbone_options, pretext_options


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--num-neighbors", type=int, default=10)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "tiny_training_grid.png"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        losses, model, _, backbone, pretext = train(
            args.steps, num_neighbors=args.num_neighbors, cache_dir=Path(tmp), log_every=50
        )
        span = min(10, len(losses))
        first, last = np.mean(losses[:span]), np.mean(losses[-span:])
        print(f"loss: start {first:.4f}  end {last:.4f}  (means of the first and last {span} steps)")
        register_tiny_trunk()
        checkpoint = Path(tmp) / "colorization.pth"
        save_checkpoint(checkpoint, model, backbone, pretext)
        grid = colorize_grid(checkpoint, photos(), size=96)
    write_png(args.out, grid)
    print(f"wrote {args.out} ({grid.shape[1]}x{grid.shape[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
