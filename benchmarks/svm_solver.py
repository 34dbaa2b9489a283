"""Benchmark: ``sslreg evaluate voc07_svm --features`` against scikit-learn's LinearSVC protocol, over a size grid.

Our side is the product's own path, as a user runs it: the ``sslreg`` command of this environment in a fresh
process (its start, reading the .npz, normalising, 3-fold CV over the 26 costs, refit, test AP), timed from launch
to exit. The baseline is the reference protocol with LinearSVC (benchmarks/svm_baseline.py): per class CV over
the 26 costs, refit at the best, classes in parallel over ``--threads`` joblib workers, timed in this process
(scikit-learn imported beforehand). Both read the same features, realistic pooled-ReLU-like ones
(sslreg_svm.synthetic, 50-85 mAP) or a real trunk's pooled features on the embedded shapes (``--source trunk``).

Per cell it prints both times, their ratio, the mAP difference and the number of classes whose chosen cost
differs (the targets: ratio >= 10, |mAP difference| <= 0.2, at most 2 of 20 costs different).

    python benchmarks/svm_solver.py --rows 800 --dims 1024                 # one cell
    python benchmarks/svm_solver.py                                        # the grid: 800/2500/5011 x 1024/4096/9216
    python benchmarks/svm_solver.py --coco                                 # 118,287 x 2048, 80 classes: ours only
    python benchmarks/svm_solver.py --source trunk --rows 2500 --jigsaw runs/shapes_jigsaw/trunk.pth
                                                                # random and Jigsaw-pretrained ResNet-18 res4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

# scikit-learn is imported before any timing, so that the baseline does not pay for its import
from sslreg_svm.solver import COSTS
from sslreg_svm.synthetic import realistic_features
from svm_baseline import sklearn_protocol

VOC_TEST = 4952
COCO = dict(rows=118_287, test=5_000, dim=2048, classes=80)


def run_ours(path: Path, threads: int, device: str | None) -> tuple[dict, float, float]:
    """``sslreg evaluate voc07_svm --features path --json`` in a fresh process: its JSON, wall seconds, peak RSS GB."""
    command = [
        str(Path(sys.executable).with_name("sslreg")),
        "evaluate",
        "voc07_svm",
        "--features",
        str(path),
        "--json",
    ]
    if device:
        command += ["--device", device]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, text=True)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak memory (ru_maxrss, kB on Linux)
        elapsed = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"sslreg evaluate failed ({process.returncode}): {err.read().strip()}")
        return json.loads(out.read()), elapsed, usage.ru_maxrss / 1024**2


def cell(rows: int, dim: int, classes: int, threads: int, device: str | None, skip_sklearn: bool, seed: int) -> dict:
    """One grid cell of synthetic features through both protocols."""
    splits = realistic_features(rows, min(rows, VOC_TEST), dim, classes, seed=seed)
    return compare(splits.arrays(), f"{rows:,} x {dim:,}", threads, device, skip_sklearn)


def compare(arrays: dict[str, np.ndarray], label: str, threads: int, device: str | None, skip_sklearn: bool) -> dict:
    """The same features (devkit labels) through our CLI and the scikit-learn protocol."""
    classes = arrays["train_labels"].shape[1]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "features.npz"
        np.savez(path, **arrays)
        ours, ours_time, peak = run_ours(path, threads, device)
    result = {"cell": label, "classes": classes, "ours_s": ours_time, "ours_mAP": ours["mAP"], "peak_gb": peak}
    if skip_sklearn:
        return result
    start = time.perf_counter()
    ref_map, ref_best = sklearn_protocol(*arrays.values(), COSTS, n_jobs=threads)
    result["sklearn_s"] = time.perf_counter() - start
    result["sklearn_mAP"] = 100.0 * ref_map
    ours_costs = np.array([ours["chosen_costs"][f"class{j}"] for j in range(classes)], dtype=np.float64)
    result["costs_differ"] = int((~np.isclose(ours_costs, np.asarray(COSTS)[ref_best])).sum())
    return result


def print_row(r: dict) -> None:
    if "sklearn_s" in r:
        print(
            f"| {r['cell']} | {r['ours_s']:8.1f} | {r['sklearn_s']:8.1f} | "
            f"{r['sklearn_s'] / r['ours_s']:6.1f}x | {r['ours_mAP']:6.2f} | {r['ours_mAP'] - r['sklearn_mAP']:+.3f} | "
            f"{r['costs_differ']:2d}/{r['classes']} | {r['peak_gb']:5.2f} |",
            flush=True,
        )
    else:
        print(
            f"| {r['cell']}, {r['classes']} classes | {r['ours_s']:8.1f} s | mAP {r['ours_mAP']:6.2f} | "
            f"peak RSS {r['peak_gb']:.2f} GB |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[800, 2500, 5011], help="training rows")
    parser.add_argument("--dims", type=int, nargs="+", default=[1024, 4096, 9216], help="feature dimensions")
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2, help="cores for both sides (sklearn: joblib n_jobs)")
    parser.add_argument("--device", default=None, help="our side's torch device (default: the command's own)")
    parser.add_argument("--skip-sklearn", action="store_true", help="time our side only")
    parser.add_argument("--coco", action="store_true", help="the COCO-sized cell (our side only)")
    parser.add_argument(
        "--source", choices=["synthetic", "trunk"], default="synthetic", help="synthetic features or a real trunk's"
    )
    parser.add_argument("--jigsaw", type=Path, help="trunk.pth of a Jigsaw-pretrained ResNet-18 (--source trunk)")
    parser.add_argument("--layer", default="res4", help="the trunk's layer (--source trunk)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "sslreg-svm-bench", help="features")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    print(f"{len(COSTS)} costs, 3-fold CV, {args.threads} threads; load average {os.getloadavg()}", flush=True)
    results = []
    if args.coco:
        r = cell(COCO["rows"], COCO["dim"], COCO["classes"], args.threads, args.device, True, args.seed)
        results.append(r)
        print_row(r)
    elif args.source == "trunk":
        from svm_trunk_features import trunk_features

        print("| trunk features: train x dims | ours (s) | sklearn (s) | ratio | mAP | mAP diff | costs | peak GB |")
        print("|---|---|---|---|---|---|---|---|")
        for rows in args.rows:
            for weights in [None] + ([args.jigsaw] if args.jigsaw else []):
                arrays, name = trunk_features(rows, rows, weights, args.layer, args.cache)
                label = f"{name}: {rows:,} x {arrays['train_features'].shape[1]:,}"
                r = compare(arrays, label, args.threads, args.device, args.skip_sklearn)
                results.append(r)
                print_row(r)
    else:
        print("| train rows x dims | ours (s) | sklearn (s) | ratio | mAP | mAP diff | costs | peak GB |")
        print("|---|---|---|---|---|---|---|---|")
        for rows in args.rows:
            for dim in args.dims:
                r = cell(rows, dim, args.classes, args.threads, args.device, args.skip_sklearn, args.seed)
                results.append(r)
                print_row(r)
    print(f"load average {os.getloadavg()}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
