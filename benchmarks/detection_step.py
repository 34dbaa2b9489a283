"""voc07_detection: one detection training step against one plain forward pass of the trunk on the same batch.

The frozen part of the trunk (through ``freeze_at``) runs once per batch under no_grad and is never
back-propagated; what a step adds is the RPN, RoIAlign, the res5 box head (forward and backward on the sampled
RoIs) and the optimiser. Prints the median time of each and the ratio step / forward, measured in the same run on
the same images; the same ratio with ``freeze_at: res2`` (res3 and res4 trained too) shows what back-propagating
into the trunk would add.
    OMP_NUM_THREADS=2 python benchmarks/detection_step.py [--backbone resnet18] [--short-side 128] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sslreg_detection.data import DetectionTransform
from sslreg_detection.demo import EmbeddedDetection, EmbeddedDetectionConfig
from sslreg_detection.evaluator import DetectionConfig, optimizer_for
from sslreg_detection.layout import choose_layout
from sslreg_detection.model import PreparedImages, build_detector

from sslreg import build_trunk, get_registry


def median_seconds(run, repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--short-side", type=int, default=128, help="image short side (demo: 128, paper: 600)")
    parser.add_argument("--batch", type=int, default=2, help="images per step (paper: 2)")
    parser.add_argument("--rois", type=int, default=16, help="RoIs sampled per image (demo: 16, paper: 512)")
    parser.add_argument("--resolution", type=int, default=6, help="RoIAlign side (demo: 6, paper: 14)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    trunk = build_trunk(get_registry(), {"name": args.backbone}, seed=0).freeze()
    with tempfile.TemporaryDirectory() as scratch:
        data = EmbeddedDetection(EmbeddedDetectionConfig(root=str(Path(scratch) / "demo"), num_trainval=8, num_test=1))
        transform = DetectionTransform(trunk.input_contract, args.short_side, 2 * args.short_side, train=True)
        items = [transform(data.load(i), np.random.default_rng(i)) for i in range(args.batch)]
    images = [item.image for item in items]
    targets = [item.target for item in items]
    padded = PreparedImages()(images)[0].tensors  # the batch exactly as the detector's trunk sees it

    def forward() -> None:
        with torch.no_grad():
            trunk(padded, "res5")

    def step_with(freeze_at: str):
        cfg = DetectionConfig(
            name="voc07_detection", freeze_at=freeze_at, roi_batch_size=args.rois, roi_resolution=args.resolution,
            anchor_sizes=[16, 32, 64, 128], rpn_pre_nms_train=600, rpn_post_nms_train=200,
        )  # fmt: skip
        torch.manual_seed(0)
        model = build_detector(trunk, choose_layout(trunk, "auto", freeze_at), cfg.detector_options(5)).train()
        optimizer = optimizer_for(model, cfg)

        def step() -> None:
            losses = model(images, targets)
            optimizer.zero_grad(set_to_none=True)
            sum(losses.values()).backward()
            optimizer.step()

        return step

    plain = median_seconds(forward, args.repeats)
    c4 = median_seconds(step_with("res4"), args.repeats)
    deeper = median_seconds(step_with("res2"), args.repeats)
    print(f"{args.backbone}, {args.batch} images of {tuple(padded.shape[-2:])} px, {torch.get_num_threads()} threads,"
          f" {args.rois} RoIs/image at {args.resolution}x{args.resolution}")  # fmt: skip
    print(f"plain trunk forward (res1..res5, no grad):      {1000 * plain:8.1f} ms")
    print(f"detection train step, frozen through res4:       {1000 * c4:8.1f} ms   ratio {c4 / plain:5.2f}")
    print(f"detection train step, frozen through res2 only:  {1000 * deeper:8.1f} ms   ratio {deeper / plain:5.2f}")


if __name__ == "__main__":
    main()
