"""voc07_detection inside ``sslreg run``: its column in the results tables, next to the SVM's layers, in a sweep."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from sslreg.cli import main


@pytest.mark.filterwarnings("ignore:The least populated class")  # 24 SVM images: some classes are rare
def test_a_sweep_with_svm_layers_and_the_detection_column(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SSLREG_CACHE", str(tmp_path / "cache"))
    demo = {"name": "embedded_detection", "num_trainval": 6, "num_test": 4, "size": 48}
    config = {
        "name": "det_sweep",
        "seed": 0,
        "work_dir": str(tmp_path / "runs"),
        "backbone": {"name": "resnet18"},
        "evaluate": [
            {
                "name": "voc07_svm", "layers": ["res3", "res4"], "image_size": 32,
                "train": {"name": "embedded_shapes", "split": "train", "num_images": 24, "size": 32},
                "test": {"name": "embedded_shapes", "split": "test", "num_images": 24, "size": 32},
            },
            {
                "name": "voc07_detection", "train": {**demo, "split": "trainval"}, "test": {**demo, "split": "test"},
                "runs": 2, "short_side": 48, "max_side": 80, "iterations": 2, "lr_steps": [1], "warmup_iters": 1,
                "anchor_sizes": [16, 32], "rpn_pre_nms_train": 50, "rpn_post_nms_train": 10, "rpn_pre_nms_test": 50,
                "rpn_post_nms_test": 5, "roi_batch_size": 4, "rpn_batch_size": 16, "roi_resolution": 2,
            },
        ],
        "sweep": {"backbone.seed": [0, 1]},
    }  # fmt: skip
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path)]) == 0
    root = tmp_path / "runs"
    with (root / "sweep_results.csv").open() as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))  # provenance comments
    detection = [row for row in rows if row["evaluator"] == "voc07_detection"]
    assert [(row["backbone.seed"], row["metric"], row["layer"], row["n"]) for row in detection] == [
        ("0", "mAP", "res4", "2"),
        ("1", "mAP", "res4", "2"),
    ]
    assert {row["layer"] for row in rows if row["evaluator"] == "voc07_svm"} == {"res3", "res4"}
    table = (root / "sweep_results.md").read_text()
    assert "**voc07_detection: mAP**" in table and "**voc07_svm: VOC07 SVM mAP**" in table
    point = next(p for p in root.iterdir() if p.is_dir() and (p / "results.json").is_file())
    [result] = [
        r for r in json.loads((point / "results.json").read_text())["results"] if r["evaluator"] == "voc07_detection"
    ]
    assert result["details"]["layout"] == "C4" and len(result["details"]["runs"]) == 2
    assert "| pretraining | res4 |" in (point / "results.md").read_text()
