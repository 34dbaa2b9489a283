"""Cost of colorization's soft encoding (K nearest of Q bins, cdist + topk) relative to a trunk forward pass.

Both run on the same batch in the same process (batch 8 of L images at 96 px, ab targets at stride 4, i.e.
24×24), on the CPU or the GPU when there is one. Prints, for each K of the paper's grid, the median time of
the encoding used by the loss (sparse) and of the dense (N, Q, h, w) encoding, as ratios to the median
trunk forward (ResNet-50 from sslreg-backbones when installed, else a small conv trunk).

    OMP_NUM_THREADS=1 python3 benchmarks/colorization_encoding.py
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from sslreg_colorization.bins import zhang_bins
from sslreg_colorization.encoding import soft_encode, soft_encode_sparse
from torch import nn

PAPER_K = (2, 5, 10, 20, 40, 80, 160, 313)


def trunk_forward(device: torch.device) -> tuple[str, Callable[[torch.Tensor], object]]:
    """ResNet-50 (1 input channel) from sslreg-backbones, or a small conv trunk when that plugin is absent."""
    try:
        from sslreg.plugins import get_registry

        model: nn.Module = get_registry().build("backbone", {"name": "resnet50", "in_channels": 1, "seed": 0})
        name = "resnet50 (sslreg-backbones), deepest layer"
    except Exception:  # noqa: BLE001 - the benchmark still runs without the backbones plugin
        model = nn.Sequential(
            *[
                layer
                for c_in, c_out in [(1, 32), (32, 64), (64, 128), (128, 256)]
                for layer in (nn.Conv2d(c_in, c_out, 3, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU())
            ]
        )
        name = "small 4-layer conv trunk (sslreg-backbones not installed)"
    model = model.to(device).eval()
    return name, model


def median_time(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median wall time of ``fn`` in seconds (after one warm-up call), synchronising on the GPU."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--stride", type=int, default=4, help="target stride (ab maps are size/stride per side)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    bins = torch.from_numpy(zhang_bins()).to(device)
    side = args.size // args.stride
    inputs = torch.randn(args.batch, 1, args.size, args.size, device=device)
    ab = torch.rand(args.batch, 2, side, side, device=device) * 180 - 90
    name, trunk = trunk_forward(device)
    with torch.no_grad():
        base = median_time(lambda: trunk(inputs), device, args.repeats)
        print(f"device {device}, threads {torch.get_num_threads()}, Q = {len(bins)} bins")
        print(f"trunk: {name}; batch {args.batch}×1×{args.size}×{args.size}: {base * 1e3:.1f} ms (baseline)")
        print(f"targets {args.batch}×2×{side}×{side} = {args.batch * side * side} pixels")
        print(f"{'K':>5} {'sparse ms':>10} {'sparse/trunk':>13} {'dense ms':>9} {'dense/trunk':>12}")
        for k in PAPER_K:
            sparse = median_time(lambda k=k: soft_encode_sparse(ab, bins, k), device, args.repeats)
            dense = median_time(lambda k=k: soft_encode(ab, bins, k), device, args.repeats)
            print(f"{k:>5} {sparse * 1e3:>10.2f} {sparse / base:>13.3f} {dense * 1e3:>9.2f} {dense / base:>12.3f}")


if __name__ == "__main__":
    main()
