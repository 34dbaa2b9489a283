"""README's first command, rerun: configs/quickstart.yaml pretrains a trunk that visibly learns and beats its own
random initialisation by at least 2 mAP points on at least 3 layers (a few minutes on 2 CPU cores: slow)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "configs" / "quickstart.yaml"


def test_the_quickstart_config_compares_with_random_init_and_validates(capsys):
    from sslreg.cli import main

    config = yaml.safe_load(QUICKSTART.read_text())
    assert config["baseline"] == "random"
    assert config["pretrain"]["data"]["name"] == "embedded_shapes" and config["pretrain"]["data"]["seed"] != 0, (
        "pretrains on unlabeled shapes distinct from the benchmark's (seed 0)"
    )
    for split in ("train", "test"):
        assert config["evaluate"][0][split].get("seed", 0) == 0
    assert main(["validate", str(QUICKSTART)]) == 0, capsys.readouterr().err


@pytest.mark.slow
def test_the_quickstart_learns_and_beats_random_init_on_three_layers(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "sslreg.cli", "run", str(QUICKSTART), "--set", f"work_dir={tmp_path}"]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    for line in ("difference (pretrained − random)", "pretext loss:", "loss_curve.png", "layers.png"):
        assert line in finished.stdout, line

    payload = json.loads((tmp_path / "results.json").read_text())
    permutations = payload["config"]["pretrain"]["pretext"]["num_permutations"]
    loss = payload["pretrain"]["loss"]
    assert loss["first"] > 0.9 * math.log(permutations), "starts at chance"
    assert loss["last"] < 0.7 * math.log(permutations), f"the pretext is learnt: {loss['last']:.3f}"

    gaps = payload["differences"]["random init"]["voc07_svm"]["VOC07 SVM mAP"]
    assert sum(gap >= 2.0 for gap in gaps.values()) >= 3, gaps
    for name in payload["plots"]:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert payload["plots"] == ["loss_curve.png", "layers.png"]
    provenance = payload["provenance"]
    for key in ("seeds", "software", "plugins", "components", "git", "device", "data", "stages"):
        assert key in provenance, key
    assert set(provenance["stages"]) == {"pretrain", "evaluate voc07_svm", "random init: evaluate voc07_svm"}
