"""Each new pretext task trains a ResNet-18 on the embedded shapes on CPU (configs/shapes/<task>.yaml, pretraining
only) and its loss falls well below where it started. Tens of minutes on 2 CPU cores, so marked slow
(python -m pytest -m slow tests/test_pretext_training.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Final loss (mean of the last log window) as a fraction of the first logged window's, at most.
FALLS_TO = {"rotation": 0.8, "inpainting": 0.6, "simclr": 0.8, "moco_v2": 0.8}


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(FALLS_TO))
def test_loss_falls_well_below_its_start(task: str, tmp_path: Path) -> None:
    config = ROOT / "configs" / "shapes" / f"{task}.yaml"
    command = [sys.executable, "-m", "sslreg.cli", "run", str(config), "--set", "evaluate=[]"]
    subprocess.run([*command, "--set", f"work_dir={tmp_path}"], check=True, cwd=ROOT, timeout=7200)
    (scalars,) = tmp_path.glob("*/vis_data/scalars.json")
    losses = [row["loss"] for row in map(json.loads, scalars.read_text().splitlines()) if "loss" in row]
    final = json.loads((tmp_path / "results.json").read_text())["pretrain"]["metrics"]["loss"]
    print(f"\n{task}: loss {losses[0]:.3f} (first window) -> {final:.3f} (last window)")
    assert final < FALLS_TO[task] * losses[0]
