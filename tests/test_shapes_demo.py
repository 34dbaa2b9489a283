"""The embedded demo of what pretraining buys: configs/shapes/jigsaw.yaml against configs/shapes/random_trunk.yaml.

About 17 minutes on 2 CPU cores, so marked slow (python3 -m pytest -m slow tests/test_shapes_demo.py).
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEEPER = ("res3", "res4", "res5")


def _run(config: str, work_dir: Path) -> None:
    command = [sys.executable, "-m", "sslreg.cli", "run", str(ROOT / config), "--set", f"work_dir={work_dir}"]
    subprocess.run(command, check=True, cwd=ROOT, timeout=3600)


def _scores(csv_path: Path) -> dict[tuple[str, str], float]:
    lines = [line for line in csv_path.read_text().splitlines() if not line.startswith("#")]  # provenance comments
    return {(row["run"], row["layer"]): float(row["mean"]) for row in csv.DictReader(lines) if row["kind"] == "ours"}


@pytest.mark.slow
def test_jigsaw_pretrained_trunk_beats_every_random_seed_on_the_deeper_layers(tmp_path: Path) -> None:
    _run("configs/shapes/random_trunk.yaml", tmp_path / "random")
    _run("configs/shapes/jigsaw.yaml", tmp_path / "jigsaw")
    random = _scores(tmp_path / "random" / "sweep_results.csv")
    jigsaw = _scores(tmp_path / "jigsaw" / "results.csv")
    pretrained_label = next(run for run, _ in jigsaw)
    for layer in DEEPER:
        best_random = max(score for (_, name), score in random.items() if name == layer)
        assert jigsaw[(pretrained_label, layer)] > best_random + 1.0, (layer, jigsaw, random)
