"""configs/normals/demo.yaml: the Jigsaw trunk of configs/shapes/jigsaw.yaml against the random trunk it starts from.

Pretrains as configs/shapes does, then evaluates both trunks on the rendered scenes (2 runs each): 13 minutes
with one torch thread, so it is marked slow:  python -m pytest -m slow plugins/normals/tests/test_demo_comparison.py

The issue expected the Jigsaw trunk ahead on median error. Measured (plugins/normals/README.md): it is behind,
24.5 ± 0.0° against 22.5 ± 0.2° (2.0°; 4.7° before the decoder standardised its taps and trained 1000
iterations; this test's own pretraining gave 24.0 ± 0.1°), at every tap, and not because of how it is fed or
probed, so the check is an expected failure that reports XPASS if a change of the demo or of the pretraining
turns it round.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def run(config: str, work_dir: Path, *sets: str) -> list[dict]:
    command = [sys.executable, "-m", "sslreg.cli", "run", str(ROOT / config), "--set", f"work_dir={work_dir}"]
    for assignment in sets:
        command += ["--set", assignment]
    subprocess.run(command, check=True, cwd=ROOT, timeout=3600)
    return json.loads((work_dir / "results.json").read_text())["results"]


def median(results: list[dict]) -> dict:
    found = next(r for r in results if r["evaluator"] == "nyuv2_normals" and r["metric"] == "normals median°")
    return next(iter(found["layers"].values()))


@pytest.mark.slow
@pytest.mark.xfail(
    strict=False, reason="measured: the 400-iteration shapes Jigsaw trunk is 2.0° behind a random one here"
)
def test_jigsaw_trunk_is_ahead_of_the_random_trunk_on_median_error(tmp_path: Path) -> None:
    run("configs/shapes/jigsaw.yaml", tmp_path / "jigsaw")
    random = median(run("configs/normals/demo.yaml", tmp_path / "random"))
    jigsaw = median(run("configs/normals/demo.yaml", tmp_path / "normals_jigsaw",
                        f"backbone.weights={tmp_path / 'jigsaw' / 'trunk.pth'}"))  # fmt: skip
    assert jigsaw["n"] == random["n"] == 2
    assert jigsaw["mean"] < random["mean"], (jigsaw, random)
