"""The shipped detection configs validate and say what the protocol says."""

from __future__ import annotations

from pathlib import Path

import pytest

from sslreg import get_registry
from sslreg.config import load_plan

ROOT = Path(__file__).resolve().parents[3]


def resolved(path: str, capsys) -> list[dict]:
    """The validated experiments of a config file (schema only: the paper's data is not on this machine)."""
    plan = load_plan(ROOT / path, get_registry(), check_data=False)
    return [experiment.model_dump(mode="json") for _, _, experiment in plan.points]


def detection_options(path: str, capsys) -> tuple[list[dict], dict]:
    points = resolved(path, capsys)
    [options] = [spec for spec in points[0]["evaluate"] if spec["name"] == "voc07_detection"]
    return points, options


@pytest.mark.parametrize(
    "path, train_roots, iterations, steps",
    [
        ("configs/paper/voc07_detection.yaml", "/data/VOC2007", 50000, [38000]),
        ("configs/paper/voc0712_detection.yaml", ["/data/VOC2007", "/data/VOC2012"], 100000, [65000]),
    ],
)
def test_paper_presets(monkeypatch, capsys, path, train_roots, iterations, steps):
    monkeypatch.setenv("VOC07_ROOT", "/data/VOC2007")
    monkeypatch.setenv("VOC12_ROOT", "/data/VOC2012")
    _, options = detection_options(path, capsys)
    assert options["train"]["root"] == train_roots and options["test"]["root"] == "/data/VOC2007"
    assert (options["train"]["split"], options["test"]["split"]) == ("trainval", "test")
    assert (options["iterations"], options["lr_steps"], options["lr"]) == (iterations, steps, 0.002)
    assert (options["short_side"], options["max_side"], options["freeze_at"], options["runs"]) == (600, 1000, "res4", 3)
    assert options["ap_mode"] == "11point" and options["iou_threshold"] == 0.5


def test_demo_config_and_its_sweep(capsys):
    points, options = detection_options("configs/detection/demo.yaml", capsys)
    assert options["train"]["name"] == "embedded_detection" and options["runs"] == 2
    assert [spec["name"] for spec in points[0]["evaluate"]] == ["voc07_svm", "voc07_detection"]
    sweep, _ = detection_options("configs/detection/demo_sweep.yaml", capsys)
    assert [point["backbone"]["seed"] for point in sweep] == [0, 1, 2]
