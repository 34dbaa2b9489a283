"""A configs/paper preset with its `reference:` block, run end to end on a tiny VOC2007 tree made here: the
results table shows the paper's row, ours and the difference."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch
from sslreg_datasets.voc07 import VOC_CLASSES

from sslreg.cli import main

ROOT = Path(__file__).resolve().parents[1]
RANDOM_ROW = {"res1": 9.6, "res2": 8.3, "res3": 8.1, "res4": 8.0, "res5": 7.7}


def _voc_tree(folder: Path) -> Path:
    """A VOC2007-layout tree: 12 trainval and 8 test images, random pixels and labels (a class per image)."""
    voc = folder / "VOCdevkit" / "VOC2007"
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    (voc / "JPEGImages").mkdir()
    rng = np.random.default_rng(0)
    for split, count, start in (("trainval", 12, 0), ("test", 8, 100)):
        ids = [f"{start + index:06d}" for index in range(count)]
        for name in ids:
            cv2.imwrite(str(voc / "JPEGImages" / f"{name}.jpg"), rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
        for position, cls in enumerate(VOC_CLASSES):
            lines = [f"{name} {1 if (index + position) % 4 == 0 else -1}\n" for index, name in enumerate(ids)]
            (voc / "ImageSets" / "Main" / f"{cls}_{split}.txt").write_text("".join(lines))
    return voc


def test_a_paper_preset_prints_the_papers_row_ours_and_the_difference(tmp_path, monkeypatch, capsys):
    torch.set_num_threads(1)
    monkeypatch.setenv("VOC07_ROOT", str(_voc_tree(tmp_path)))
    monkeypatch.delenv("TRUNK_WEIGHTS", raising=False)
    run_dir = tmp_path / "random"
    overrides = ["backbone.weights=null", f"work_dir={run_dir}", "evaluate.0.image_size=32", "evaluate.0.costs=[0.1,1]"]
    args = ["run", str(ROOT / "configs/paper/voc07_benchmark.yaml")]
    assert main([*args, *(item for value in overrides for item in ("--set", value))]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "paper: Random (ResNet-50)" in out and "difference (ours − paper)" in out

    payload = json.loads((run_dir / "results.json").read_text())
    ours = payload["results"][0]["layers"]
    assert [reference["label"] for reference in payload["reference"]] == ["Random (ResNet-50)"]
    differences = payload["differences"]["paper: Random (ResNet-50)"]["voc07_svm"]["VOC07 SVM mAP"]
    table = (run_dir / "results.md").read_text()
    block = next(part for part in table.split("\n\n") if part.startswith("| run | voc07_svm res1 ↑"))
    rows = {line.split(" | ")[0].strip("| "): line.strip("|").split(" | ")[1:] for line in block.splitlines()[2:]}
    assert [cell.strip() for cell in rows["paper: Random (ResNet-50)"]] == [f"{v:.1f}" for v in RANDOM_ROW.values()]
    for position, (layer, published) in enumerate(RANDOM_ROW.items()):
        assert differences[layer] == round(ours[layer]["mean"] - published, 4)
        assert rows["difference (ours − paper)"][position].strip() == f"{ours[layer]['mean'] - published:+.1f}"
    assert "Goyal et al., ICCV 2019" in table

    # with weights the 'Random' row does not apply: no paper row
    weights = tmp_path / "trunk.pth"
    from sslreg import build_trunk, get_registry

    torch.save(build_trunk(get_registry(), {"name": "resnet50"}, seed=1).state_dict(), weights)
    overrides[:2] = [f"backbone.weights={weights}", f"work_dir={tmp_path / 'weights'}"]
    assert main([*args, *(item for value in overrides for item in ("--set", value))]) == 0
    assert json.loads((tmp_path / "weights" / "results.json").read_text())["reference"] == []
