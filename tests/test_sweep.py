"""A sweep over a tiny grid: one sub-folder per point, one results table over the grid, and PNG plots."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent))
import runner_helpers as helpers

from sslreg.config import load_plan
from sslreg.runner import run_plan


def test_sweep_writes_grid_table_and_plots(tmp_path, capsys, monkeypatch):
    torch.set_num_threads(1)
    raw = helpers.experiment_dict(tmp_path / "sweep", epochs=1, batch_size=8)
    raw["pretrain"]["data"]["size"] = 32
    raw["sweep"] = {"pretrain.data.subset": [8, 16, 32], "pretrain.backbone.width": [2, 4]}
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    registry = helpers.make_registry()
    plan = load_plan(config, registry)
    assert plan.is_sweep and len(plan.points) == 6
    assert run_plan(plan, registry) == 0

    root = tmp_path / "sweep"
    for label, _, _ in plan.points:
        assert (root / label / "results.json").is_file(), label
    lines = (root / "sweep_results.csv").read_text().splitlines()
    assert lines[0].startswith("# sslreg sweep results") and any(line.startswith("# sslreg: ") for line in lines)
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))  # provenance comments first
    assert len(rows) == 6 * 2  # points x layers
    assert {row["pretrain.data.subset"] for row in rows} == {"8", "16", "32"}
    assert {row["layer"] for row in rows} == {"c1", "c2"}
    table = (root / "sweep_results.md").read_text()
    summary = "| pretrain.data.subset | pretrain.backbone.width | centroid c1 ↑ | centroid c2 ↑ |"
    per_metric = "| pretrain.data.subset | pretrain.backbone.width | c1 | c2 |"
    tables = table.split("\n\n")
    for header in (summary, per_metric):  # the summary table first, then one table per metric; 6 points each
        (found,) = [block for block in tables if block.startswith(header)]
        assert len(found.splitlines()) == 2 + 6, found
    assert table.index(summary) < table.index(per_metric) < table.index("## Provenance")
    plots = sorted(p.name for p in root.glob("*.png"))
    assert plots == [
        "plot_centroid_accuracy_per_layer.png",
        "plot_centroid_accuracy_vs_subset.png",
        "plot_centroid_accuracy_vs_width.png",
    ]
    assert all((root / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in plots)

    # finished points are skipped on a second run; the grid report is rewritten from the stored results
    monkeypatch.setattr("sslreg.runner.training.build_runner", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    capsys.readouterr()
    assert run_plan(plan, registry) == 0
    assert capsys.readouterr().out.count("already finished") == 6
