"""`sslreg evaluate voc07_svm --features FILE.npz`: the VOC07 SVM protocol on features computed elsewhere."""

from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from sslreg import UserError, resolve_device
from sslreg_svm.common import check_features, check_labels, excluded_message, warn
from sslreg_svm.solver import COSTS
from sslreg_svm.voc07_svm import SVMOutcome, finite_or_none, run_voc07_svm

KEYS = ("train_features", "train_labels", "test_features", "test_labels")


def add_evaluate_command(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``evaluate`` sub-command."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score ready features with the VOC07 SVM protocol",
        description="Run the VOC07 linear-SVM protocol (cost by 3-fold CV, test AP per class) on features in an"
        " .npz holding train_features (N x D), train_labels (N x C), test_features (M x D), test_labels (M x C),"
        " labels 1 present, -1 absent, 0 difficult; optional class_names (C strings).",
    )
    parser.add_argument("evaluator", choices=["voc07_svm"], help="the protocol to run")
    parser.add_argument("--features", required=True, type=Path, metavar="FILE.npz", help="features and labels")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    parser.add_argument("--solver", choices=["fast", "sklearn"], default="fast", help="SVM solver (default: fast)")
    parser.add_argument("--costs", type=float, nargs="+", metavar="C", help="costs to try (default: the 26)")
    parser.add_argument("--folds", type=int, default=3, help="cross-validation folds (default: 3)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when present, else cpu)")
    parser.set_defaults(func=evaluate_command)


def load_npz(path: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """The four arrays of a features file, checked, and the class names; UserError/FileNotFoundError otherwise."""
    if not path.is_file():
        raise FileNotFoundError(f"features file {path} not found")
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path}: not a readable .npz file (save one with numpy.savez)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in KEYS if key not in archive.files]
            if missing:
                raise UserError(f"{path}: missing key(s) {missing}; an .npz needs {list(KEYS)}")
            arrays = {key: archive[key] for key in KEYS}
            names = [str(name) for name in archive["class_names"]] if "class_names" in archive.files else None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:  # a damaged archive, pickled objects
        raise UserError(f"{path}: not a readable .npz file ({error})") from None
    for split in ("train", "test"):
        features = check_features(arrays[f"{split}_features"], f"{path}: {split}_features")
        labels = check_labels(arrays[f"{split}_labels"], f"{path}: {split}_labels")
        if len(labels) != len(features):
            raise UserError(f"{path}: {split}_labels has {len(labels)} rows, {split}_features {len(features)}")
        arrays[f"{split}_labels"] = labels
    if arrays["train_features"].shape[1] != arrays["test_features"].shape[1]:
        raise UserError(f"{path}: train_features and test_features differ in dimension")
    classes = arrays["train_labels"].shape[1]
    if arrays["test_labels"].shape[1] != classes:
        raise UserError(f"{path}: train_labels and test_labels differ in number of classes")
    names = names or [f"class{index}" for index in range(classes)]
    if len(names) != classes:
        raise UserError(f"{path}: class_names has {len(names)} entries for {classes} classes")
    return arrays, names


def render(outcome: SVMOutcome, names: list[str], as_json: bool) -> None:
    """Print the per-class AP (percent) and the mAP, as a rich table or as JSON (null where undefined)."""
    excluded = {names[j]: reason for j, reason in outcome.excluded.items()}
    if as_json:
        mean = 100.0 * outcome.mean_ap
        payload = {
            "mAP": mean if np.isfinite(mean) else None,
            "per_class_ap": dict(zip(names, finite_or_none(100.0 * outcome.per_class_ap))),
            "chosen_costs": dict(zip(names, finite_or_none(outcome.chosen_costs))),
            "excluded_classes": excluded,
        }
        print(json.dumps(payload, allow_nan=False))
        return
    table = Table(title="VOC07 SVM: test AP per class (%)")
    table.add_column("class")
    table.add_column("AP", justify="right")
    table.add_column("cost", justify="right")
    for name, ap, cost in zip(names, outcome.per_class_ap, outcome.chosen_costs):
        table.add_row(
            name, f"{100.0 * ap:.2f}" if np.isfinite(ap) else "-", f"{cost:.3g}" if np.isfinite(cost) else "-"
        )
    table.add_section()
    table.add_row("mAP", f"{100.0 * outcome.mean_ap:.2f}", "")
    Console(soft_wrap=True).print(table)


def evaluate_command(args: argparse.Namespace) -> int:
    """Entry of ``sslreg evaluate``; a bad file or option raises UserError/FileNotFoundError (one line, exit 2)."""
    if args.folds < 2:
        raise UserError(f"--folds must be at least 2, got {args.folds}")
    if args.costs is not None and min(args.costs) <= 0:
        raise UserError(f"--costs must all be positive, got {args.costs}")
    device = resolve_device(args.device, torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    arrays, names = load_npz(args.features)
    outcome = run_voc07_svm(
        arrays.pop("train_features"),  # popped: the protocol's float64 copies are the only ones left in memory
        arrays["train_labels"],
        arrays.pop("test_features"),
        arrays["test_labels"],
        costs=args.costs or COSTS,
        folds=args.folds,
        solver_kind=args.solver,
        device=device,
    )
    if outcome.excluded:
        warn(f"{args.features}: {excluded_message({names[j]: r for j, r in outcome.excluded.items()}, 'the mAP')}")
    render(outcome, names, args.json)
    return 0
