"""Peak memory and time of the surface-normal metrics on a full NYUv2-size test set: 654 predictions of 480 x 640.

    python benchmarks/normals_metrics.py [--images 654] [--batch 4] [--baseline-images 65]

Synthetic predictions and ground truth (unit normals, ~85% valid pixels, errors spread like a trained model's) are
streamed in batches through sslreg_normals.metrics.NormalErrors in a fresh process, which reports its peak RSS
(resource.getrusage; importing torch alone takes about 500 MB of it) and the time spent in the metric. The
baseline is the reference's approach, measured in the same run: every valid pixel's error kept in memory until the
end (then mean, median and the three thresholds with numpy), run on ``--baseline-images`` images in its own
process and extrapolated linearly to the full set. The reference code (fair_self_supervision_benchmark's normals
evaluation) also keeps the predictions and needs about 150 GB; the baseline is the lower bound of any
keep-everything approach.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

HEIGHT, WIDTH = 480, 640


def batches(images: int, batch: int, seed: int = 0):
    """(prediction, truth, valid) tensors for ``images`` images, ``batch`` at a time (made on the fly)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    for start in range(0, images, batch):
        count = min(batch, images - start)
        truth = torch.nn.functional.normalize(torch.randn(count, 3, HEIGHT, WIDTH, generator=generator), dim=1)
        noise = torch.randn(count, 3, HEIGHT, WIDTH, generator=generator) * 0.3
        pred = torch.nn.functional.normalize(truth + noise, dim=1)
        valid = torch.rand(count, HEIGHT, WIDTH, generator=generator) < 0.85
        yield pred, truth, valid


def peak_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def streaming(images: int, batch: int) -> dict:
    import torch
    from sslreg_normals.metrics import NormalErrors

    torch.set_num_threads(1)
    before = peak_mb()
    started, metric_seconds = time.perf_counter(), 0.0
    errors = NormalErrors()
    for pred, truth, valid in batches(images, batch):
        start = time.perf_counter()
        errors.update(pred, truth, valid)
        metric_seconds += time.perf_counter() - start
    return {"seconds": time.perf_counter() - started, "metric_seconds": metric_seconds, "peak_mb": peak_mb(),
            "after_import_mb": before, "pixels": errors.count, "summary": errors.summary()}  # fmt: skip


def hold_everything(images: int, batch: int) -> dict:
    import numpy as np
    import torch
    from sslreg_normals.metrics import THRESHOLDS, angular_errors

    torch.set_num_threads(1)
    before = peak_mb()
    started, metric_seconds = time.perf_counter(), 0.0
    kept = []
    for pred, truth, valid in batches(images, batch):
        start = time.perf_counter()
        p, t = pred.permute(0, 2, 3, 1)[valid], truth.permute(0, 2, 3, 1)[valid]
        kept.append(angular_errors(p.double(), t.double()).numpy())
        metric_seconds += time.perf_counter() - start
    start = time.perf_counter()
    errors = np.concatenate(kept)
    summary = {"mean": float(errors.mean()), "median": float(np.median(errors))}
    summary.update({f"{t:g}": float(100 * np.mean(errors < t)) for t in THRESHOLDS})
    metric_seconds += time.perf_counter() - start
    return {"seconds": time.perf_counter() - started, "metric_seconds": metric_seconds, "peak_mb": peak_mb(),
            "after_import_mb": before, "pixels": len(errors), "summary": summary}  # fmt: skip


def in_subprocess(mode: str, images: int, batch: int) -> dict:
    """Run one mode in a fresh interpreter, so each peak RSS is its own."""
    command = [sys.executable, __file__, "--child", mode, "--images", str(images), "--batch", str(batch)]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=654)
    parser.add_argument("--batch", type=int, default=4, help="predictions per batch (an evaluator's test batch)")
    parser.add_argument("--baseline-images", type=int, default=65)
    parser.add_argument("--child", choices=["streaming", "hold"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run = streaming if args.child == "streaming" else hold_everything
        print(json.dumps(run(args.images, args.batch)))
        return
    ours = in_subprocess("streaming", args.images, args.batch)
    small = in_subprocess("streaming", args.baseline_images, args.batch)
    base = in_subprocess("hold", args.baseline_images, args.batch)
    scale = args.images / args.baseline_images
    base_full_mb = base["after_import_mb"] + (base["peak_mb"] - base["after_import_mb"]) * scale
    print(f"streaming metrics, {args.images} x {HEIGHT} x {WIDTH} predictions ({ours['pixels']:,} valid pixels):")
    print(
        f"  peak RSS {ours['peak_mb']:.0f} MB (of which {ours['after_import_mb']:.0f} MB is Python + torch before"
        f" the first batch); {ours['seconds']:.1f} s in all, {ours['metric_seconds']:.1f} s of it in the metric"
        f" ({ours['pixels'] / ours['metric_seconds'] / 1e6:.1f} M pixels/s), the rest making the synthetic data"
    )
    print(f"  {', '.join(f'{k} {v:.3f}' for k, v in ours['summary'].items())}")
    print(
        f"hold-every-error baseline on {args.baseline_images} images: peak RSS {base['peak_mb']:.0f} MB,"
        f" {base['metric_seconds']:.1f} s in the metric; extrapolated to {args.images} images: {base_full_mb:.0f} MB"
    )
    print(
        f"  streaming on the same {args.baseline_images} images: peak RSS {small['peak_mb']:.0f} MB;"
        f" median {small['summary']['median']:.4f} vs numpy {base['summary']['median']:.4f}"
        f" (|diff| {abs(small['summary']['median'] - base['summary']['median']):.4f}°)"
    )
    print(
        f"ratio: baseline / streaming peak RSS at {args.images} images = {base_full_mb / ours['peak_mb']:.1f}x;"
        f" streaming growth from {args.baseline_images} to {args.images} images:"
        f" {ours['peak_mb'] - small['peak_mb']:+.0f} MB"
    )
    print(f"under 1 GB: {'yes' if ours['peak_mb'] < 1024 else 'NO'}")


if __name__ == "__main__":
    main()
