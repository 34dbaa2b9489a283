"""Cost of tapping every layer: time(all five taps in one pass) / time(plain forward to the last layer).

Both are measured on the same inputs in the same run, interleaved, median of the timed reps.
Target: <= 1.10 (the taps are references to tensors the pass computes anyway).

    python benchmarks/backbone_taps.py [--device cpu|cuda] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from sslreg.plugins import get_registry

TARGET = 1.10


def _timer(device: torch.device) -> Callable[[Callable[[], object]], float]:
    """Seconds one call takes, synchronising the GPU around it."""

    def run(fn: Callable[[], object]) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    return run


def measure(name: str, batch: int, size: int, warmup: int, reps: int, device: torch.device, amp: bool) -> dict:
    """Median seconds of the plain pass and of the all-taps pass, and their ratio, for one trunk."""
    model = get_registry().build("backbone", {"name": name, "seed": 0}).eval().to(device)
    model = model.to(memory_format=torch.channels_last)
    x = torch.randn(batch, model.config.in_channels, size, size, device=device).to(memory_format=torch.channels_last)
    last = model.layer_names[-1]
    timer = _timer(device)
    plain_times, tap_times = [], []
    with torch.inference_mode(), torch.autocast(device.type, enabled=amp):
        for _ in range(warmup):
            model(x, [last]), model(x, "all")
        for _ in range(reps):  # interleaved, so drift on a shared machine hits both alike
            plain_times.append(timer(lambda: model(x, [last])))
            tap_times.append(timer(lambda: model(x, "all")))
    plain, taps = statistics.median(plain_times), statistics.median(tap_times)
    return {"name": name, "plain_s": plain, "taps_s": taps, "ratio": taps / plain}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--quick", action="store_true", help="batch 4, 1 warm-up, 3 timed reps (smoke run)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224, help="input side in pixels (default 224)")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--models", nargs="+", default=["resnet50", "alexnet"])
    args = parser.parse_args()
    device = torch.device(args.device)
    batch, warmup, reps = (4, 1, 3) if args.quick else (args.batch, 2, args.reps)
    amp = device.type == "cuda"
    print(f"device {device}, batch {batch}, {args.size} px, channels_last, amp {amp}, {reps} timed reps (median)")
    print(f"{'trunk':<10} {'plain (s)':>10} {'all taps (s)':>13} {'ratio':>7}  target <= {TARGET}")
    for name in args.models:
        r = measure(name, batch, args.size, warmup, reps, device, amp)
        verdict = "ok" if r["ratio"] <= TARGET else "ABOVE TARGET"
        print(f"{r['name']:<10} {r['plain_s']:>10.4f} {r['taps_s']:>13.4f} {r['ratio']:>7.3f}  {verdict}")


if __name__ == "__main__":
    main()
