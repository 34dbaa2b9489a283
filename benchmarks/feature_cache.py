"""Feature cache benchmark: a cold extraction (one trunk pass, every layer) against a warm cache hit.

Prints the speed-up of reusing the cache (as the SVM evaluators do across costs, shots, draws and runs), both
measured in this run, and checks that the hit ran no forward pass. Usage:
    OMP_NUM_THREADS=1 python benchmarks/feature_cache.py [--images 200] [--size 64] [--backbone resnet18]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sslreg.features import extract_features
from sslreg.plugins import get_registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--backbone", default="resnet18")
    args = parser.parse_args()
    registry = get_registry()
    torch.manual_seed(0)
    trunk = registry.build("backbone", {"name": args.backbone}).freeze()
    passes = [0]
    trunk.register_forward_hook(lambda *_: passes.__setitem__(0, passes[0] + 1))
    data = registry.build("dataset", {"name": "embedded_shapes", "num_images": args.images, "size": args.size})
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        cold = extract_features(trunk, data, "all", image_size=args.size, batch_size=50, cache_dir=Path(cache))
        cold_s = time.perf_counter() - start
        cold_passes = passes[0]
        start = time.perf_counter()
        warm = extract_features(trunk, data, "all", image_size=args.size, batch_size=50, cache_dir=Path(cache))
        total = sum(float(np.asarray(array, dtype=np.float64).sum()) for array in warm.features.values())
        warm_s = time.perf_counter() - start
    dims = {layer: array.shape[1] for layer, array in cold.features.items()}
    print(f"{args.backbone}, {args.images} images at {args.size}px, layers {dims}")
    print(f"cold extraction: {cold_s:.2f} s ({cold_passes} forward passes)")
    warm_passes = passes[0] - cold_passes
    print(f"cache hit (load + read every row): {warm_s:.3f} s ({warm_passes} forward passes), sum {total:.3g}")
    print(f"speed-up of the cache: {cold_s / warm_s:.1f}x")


if __name__ == "__main__":
    main()
