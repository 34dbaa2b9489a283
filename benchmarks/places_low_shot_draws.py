"""Benchmark: how many Places205 training images class-label low-shot reads, against extracting every image.

Writes a Places205 split list of the real size (2,448,873 lines over 205 classes, one image file on disk: the
source's check stats only the first), builds the ``places205`` source, reads the labels from the list
(``DatasetSource.targets()``, no image decoded) and makes the paper's draws (k = 1, 2, 4, 8, 16, 5 draws), as
``low_shot`` does before extracting. Prints the listed and drawn counts, their ratio, the feature-cache size per
layer at 9,216 dims either way, and the seconds each step took.

    python benchmarks/places_low_shot_draws.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from sslreg_svm.low_shot import CLASS_SHOTS, class_draws

from sslreg import get_registry

TRAIN_IMAGES = 2_448_873
CLASSES = 205
DIMS = 9216


def write_places(root: Path, images: int, classes: int, seed: int) -> None:
    """A split list of ``images`` lines with uniform random labels; only its first image exists on disk."""
    (root / "images256" / "a" / "abbey").mkdir(parents=True)
    (root / "trainvalsplit_places205").mkdir()
    cv2.imwrite(str(root / "images256" / "a" / "abbey" / "0.jpg"), np.zeros((8, 8, 3), np.uint8))
    labels = np.random.default_rng(seed).integers(0, classes, images)
    labels[0] = 0
    lines = ["a/abbey/0.jpg 0"] + [f"s/c{label}/{index:08d}.jpg {label}" for index, label in enumerate(labels[1:])]
    (root / "trainvalsplit_places205" / "train_places205.csv").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=TRAIN_IMAGES)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_places(root, args.images, CLASSES, args.seed)
        start = time.perf_counter()
        source = get_registry().build("dataset", {"name": "places205", "root": str(root)})
        built = time.perf_counter()
        labels = source.targets()
        listed = time.perf_counter()
        draws = class_draws(labels, CLASSES, CLASS_SHOTS, args.samples, args.seed)
        drawn = np.unique(np.concatenate([rows for _, _, rows in draws]))
        done = time.perf_counter()
    gb = lambda rows: rows * DIMS * 4 / 1e9
    print(f"places205 source: {built - start:.1f} s; targets(): {listed - built:.2f} s; draws: {done - listed:.2f} s")
    print("| images read | extract everything | low_shot (drawn only) | ratio |")
    print("|---|---|---|---|")
    print(f"| train images | {len(labels):,} | {len(drawn):,} | {len(labels) / len(drawn):.0f}x fewer |")
    print(f"| cache per 9,216-dim layer | {gb(len(labels)):.1f} GB | {gb(len(drawn)):.2f} GB | |")


if __name__ == "__main__":
    main()
