"""`sslreg run` end to end with the navigation evaluator (slow: minutes on 2 CPU cores).

python3 -m pytest -m slow plugins/navigation/tests/test_end_to_end.py
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LAYERS = ("res3", "res4", "res5")


def _run(config: str, work_dir: Path, *overrides: str, timeout: int = 3600) -> None:
    command = [sys.executable, "-m", "sslreg.cli", "run", str(ROOT / config), "--set", f"work_dir={work_dir}"]
    for override in overrides:
        command += ["--set", override]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    subprocess.run(command, check=True, cwd=ROOT, timeout=timeout, env=env)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))  # provenance comments


def _learned_beyond_random(results_json: Path) -> None:
    """Every layer's agents reach the goal more efficiently (SPL) than random actions on the same episodes."""
    results = {
        r["metric"]: r for r in json.loads(results_json.read_text())["results"] if r["evaluator"] == "navigation"
    }
    random_spl = results["SPL"]["details"]["random_policy"]["SPL"]
    for layer in LAYERS:
        assert results["SPL"]["layers"][layer]["mean"] > random_spl, (layer, results["SPL"]["layers"], random_spl)


@pytest.mark.slow
def test_cpu_config_in_a_sweep_gives_success_and_spl_per_layer(gl, tmp_path: Path) -> None:
    _run("configs/navigation/random_trunks.yaml", tmp_path)
    rows = _rows(tmp_path / "sweep_results.csv")
    runs = sorted({row["run"] for row in rows})
    assert len(runs) == 2
    for metric in ("success", "SPL"):
        for run in runs:
            scored = {row["layer"] for row in rows if row["run"] == run and row["metric"] == metric}
            assert scored == set(LAYERS), (metric, run, scored)
    table = (tmp_path / "sweep_results.md").read_text()
    assert "navigation: success" in table and "navigation: SPL" in table
    for folder in tmp_path.iterdir():
        if (folder / "results.json").exists():
            _learned_beyond_random(folder / "results.json")


@pytest.mark.slow
def test_jigsaw_trunk_and_random_trunk_both_learn_to_navigate(gl, tmp_path: Path) -> None:
    """Pretrains configs/shapes/jigsaw.yaml (about 15 minutes), then navigates with it and with a random trunk."""
    _run("configs/shapes/jigsaw.yaml", tmp_path / "jigsaw")
    weights = tmp_path / "jigsaw" / "trunk.pth"
    _run("configs/navigation/cpu.yaml", tmp_path / "nav_jigsaw", f"backbone.weights={weights}")
    _run("configs/navigation/cpu.yaml", tmp_path / "nav_random")
    for name in ("nav_jigsaw", "nav_random"):
        _learned_beyond_random(tmp_path / name / "results.json")
        print(name, (tmp_path / name / "results.md").read_text())
