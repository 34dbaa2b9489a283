"""Slow: on the demo detection set, the Jigsaw trunk of configs/shapes is ahead of the same ResNet-18 untrained.

Pretrains as configs/shapes/jigsaw.yaml does (about 15 minutes on 2 idle CPU cores; set SSLREG_JIGSAW_TRUNK to a
trunk.pth it wrote to skip that), then runs the detection part of configs/detection/demo.yaml (2 runs each) on
both trunks.   python -m pytest -m slow plugins/detection/tests/test_jigsaw_vs_random.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from sslreg.cli import main

ROOT = Path(__file__).resolve().parents[3]


def detection_map(tmp_path: Path, name: str, weights: str | None) -> dict:
    config = yaml.safe_load((ROOT / "configs" / "detection" / "demo.yaml").read_text())
    config["evaluate"] = [spec for spec in config["evaluate"] if spec["name"] == "voc07_detection"]
    config["backbone"] = {"name": "resnet18", **({"weights": weights} if weights else {})}
    config.update(name=name, work_dir=str(tmp_path / name))
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path)]) == 0
    [result] = json.loads((tmp_path / name / "results.json").read_text())["results"]
    return result["layers"]["res4"]


@pytest.mark.slow
def test_jigsaw_trunk_detects_better_than_a_random_one(tmp_path: Path):
    trunk = os.environ.get("SSLREG_JIGSAW_TRUNK")
    if not trunk:
        work = tmp_path / "jigsaw"
        assert main(["run", str(ROOT / "configs/shapes/jigsaw.yaml"), "--set", f"work_dir={work}"]) == 0
        trunk = str(work / "trunk.pth")
    random = detection_map(tmp_path, "random", None)
    jigsaw = detection_map(tmp_path, "jigsaw_det", trunk)
    print(f"demo detection mAP: random {random}, jigsaw {jigsaw}")
    assert jigsaw["mean"] > random["mean"] + max(random["std"], jigsaw["std"]), (random, jigsaw)
