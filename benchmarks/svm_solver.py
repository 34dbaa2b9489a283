"""Benchmark: the fast VOC07 SVM solver against the scikit-learn LinearSVC reference, full protocol, same features.

Synthetic VOC-like features (class structure through a random ReLU projection, 20 classes, one frequent class,
'difficult' positives: negatives in training, ignored at test), L2-normalised. Both paths run the whole protocol:
3-fold CV over all 26 costs on train, best cost per class, refit, test AP per class, mAP. Prints both mAPs, their
difference, both wall times and the time ratio (the targets: |diff| <= 0.2 mAP points, ratio >= 10x).

At VOC size the reference takes ~27 min on 2 idle cores (the fast solver ~2.5 min);
``--reference-classes N`` runs it on the first N classes only
(all costs, CV + refit) and extrapolates its time linearly to all classes (each class's fits are independent), while
both mAPs are compared on those N classes; the fast solver always runs (and is timed) on all classes.

    OMP_NUM_THREADS=2 python benchmarks/svm_solver.py --quick
    OMP_NUM_THREADS=2 python benchmarks/svm_solver.py --train 2000 --test 2000 --dim 2048
    OMP_NUM_THREADS=2 python benchmarks/svm_solver.py --voc --reference-classes 4
"""

from __future__ import annotations

import argparse
import os
import time

# shared, oversubscribed cores: BLAS threads must not spin while waiting
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

# scikit-learn is imported before any timing, so that neither path pays for its import
import sklearn.metrics
import sklearn.model_selection
import sklearn.svm  # noqa: F401
import torch
from sslreg_svm.metrics import mean_ap
from sslreg_svm.reference import cross_validate_sklearn, train_svms_sklearn
from sslreg_svm.solver import (
    COSTS,
    cross_validate_and_train,
    l2_normalize,
    select_costs,
)


def make_features(
    n_train: int,
    n_test: int,
    dim: int,
    n_classes: int = 20,
    latent: int = 64,
    seed: int = 0,
):
    """VOC-like (X_train, Y_train, X_test, Y_test): multi-label, train difficult -> -1, test difficult -> 0."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    freq = np.clip(rng.lognormal(np.log(0.06), 0.5, n_classes), 0.02, 0.2)
    freq[0] = 0.4  # a 'person'-like class
    present = rng.random((n, n_classes)) < freq
    centers = rng.normal(size=(n_classes, latent))
    z = present @ centers * 0.6 + rng.normal(size=(n, latent))
    proj = rng.normal(size=(latent, dim)) / np.sqrt(latent)
    x = np.maximum(z @ proj + 0.5 * rng.normal(size=(n, dim)), 0.0)
    difficult = present & (rng.random((n, n_classes)) < 0.15)
    y = np.where(present, 1, -1)
    y_train, y_test = y[:n_train].copy(), y[n_train:].copy()
    y_train[difficult[:n_train]] = -1
    y_test[difficult[n_train:]] = 0
    return l2_normalize(x[:n_train]), y_train, l2_normalize(x[n_train:]), y_test


def protocol_fast(xtr, ytr, xte, yte, device: str) -> tuple[float, np.ndarray, np.ndarray]:
    """CV -> cost per class -> refit (all costs) -> test mAP, with the fast solver."""
    cv, solution = cross_validate_and_train(xtr, ytr, COSTS, device=device)
    best = select_costs(cv, COSTS)
    scores = solution.decision(xte).cpu().numpy()
    chosen = scores[:, np.arange(ytr.shape[1]), best]
    m, per_class = mean_ap(chosen, yte)
    return m, per_class, best


def protocol_sklearn(xtr, ytr, xte, yte, n_jobs: int) -> tuple[float, np.ndarray, np.ndarray]:
    """The reference protocol: cross_val_score per class and cost, LinearSVC refit on every cost, test mAP."""
    cv = cross_validate_sklearn(xtr, ytr, COSTS, n_jobs=n_jobs)
    best = select_costs(cv, COSTS)
    scores = train_svms_sklearn(xtr, ytr, COSTS, n_jobs=n_jobs).decision(xte).numpy()
    chosen = scores[:, np.arange(ytr.shape[1]), best]
    m, per_class = mean_ap(chosen, yte)
    return m, per_class, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small size (600 train / 600 test, 512 dims)",
    )
    parser.add_argument(
        "--voc",
        action="store_true",
        help="VOC07 size (5011 train / 4952 test, 9216 dims)",
    )
    parser.add_argument("--train", type=int, default=2000, help="training samples")
    parser.add_argument("--test", type=int, default=2000, help="test samples")
    parser.add_argument("--dim", type=int, default=2048, help="feature dimension")
    parser.add_argument("--classes", type=int, default=20, help="number of classes")
    parser.add_argument(
        "--reference-classes",
        type=int,
        default=None,
        help="run the sklearn reference on the first N classes only and extrapolate its time to all classes",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads and sklearn n_jobs")
    parser.add_argument("--device", default="cpu", help="device of the fast solver (cpu, cuda)")
    parser.add_argument("--skip-sklearn", action="store_true", help="time only the fast solver")
    args = parser.parse_args()
    if args.quick:
        args.train, args.test, args.dim = 600, 600, 512
    if args.voc:
        args.train, args.test, args.dim = 5011, 4952, 9216
    n_ref = args.classes if args.reference_classes is None else args.reference_classes
    if not 1 <= n_ref <= args.classes:
        parser.error(f"--reference-classes must be in [1, {args.classes}], got {n_ref}")
    torch.set_num_threads(args.threads)
    xtr, ytr, xte, yte = make_features(args.train, args.test, args.dim, args.classes)
    print(
        f"features: train {xtr.shape}, test {xte.shape}, {args.classes} classes, {len(COSTS)} costs, "
        f"{args.threads} threads"
    )

    start = time.perf_counter()
    fast_map, fast_ap, fast_best = protocol_fast(xtr, ytr, xte, yte, args.device)
    fast_time = time.perf_counter() - start
    print(
        f"fast solver ({args.device}): mAP {100 * fast_map:.2f} over all {args.classes} classes, "
        f"time {fast_time:.1f} s (all {args.classes} classes, measured)"
    )
    if args.skip_sklearn:
        return
    start = time.perf_counter()
    _, ref_ap, ref_best = protocol_sklearn(xtr, ytr[:, :n_ref], xte, yte[:, :n_ref], args.threads)
    ref_measured = time.perf_counter() - start
    ref_time = ref_measured * args.classes / n_ref
    fast_sub, ref_sub = float(fast_ap[:n_ref].mean()), float(ref_ap.mean())
    if n_ref == args.classes:
        print(f"sklearn LinearSVC (n_jobs={args.threads}): mAP {100 * ref_sub:.2f}  time {ref_time:.1f} s (measured)")
    else:
        print(
            f"sklearn LinearSVC (n_jobs={args.threads}) on the first {n_ref} of {args.classes} classes: "
            f"time {ref_measured:.1f} s measured, extrapolated linearly x{args.classes}/{n_ref} to "
            f"{ref_time:.1f} s for all {args.classes} classes (per-class fits are independent)"
        )
    print(
        f"mAP over the first {n_ref} classes: fast {100 * fast_sub:.2f}, sklearn {100 * ref_sub:.2f}, "
        f"difference (fast - sklearn) {100 * (fast_sub - ref_sub):+.3f} points; "
        f"max per-class AP difference {100 * np.abs(fast_ap[:n_ref] - ref_ap).max():.3f}; "
        f"same cost chosen for {int((fast_best[:n_ref] == ref_best).sum())}/{n_ref} classes"
    )
    extrapolated = " (sklearn time extrapolated)" if n_ref < args.classes else ""
    print(f"speed-up (sklearn time / fast time): {ref_time / fast_time:.1f}x{extrapolated}")


if __name__ == "__main__":
    main()
