"""Two CPU processes under torchrun (gloo, through mmengine's launcher) train the same weights as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent))
import runner_helpers as helpers

from sslreg.config import load_plan
from sslreg.runner import run_plan

HELPERS = Path(__file__).parent / "runner_helpers.py"


def config_for(tmp_path: Path, name: str) -> Path:
    # no BatchNorm in tinynet; 32 images, global batch 8: both setups see the same 8 images per step
    raw = helpers.experiment_dict(tmp_path / name, epochs=2, batch_size=8)
    raw["evaluate"].append({"name": "feature_mean", "data": {"name": "memory", "size": 16, "seed": 1}})
    raw["baseline"] = "random"
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_two_processes_match_one(tmp_path):
    torch.set_num_threads(1)
    env = {key: value for key, value in os.environ.items() if key not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(HELPERS),
        str(config_for(tmp_path, "ddp")),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    registry = helpers.make_registry()
    assert run_plan(load_plan(config_for(tmp_path, "single"), registry), registry) == 0

    two = torch.load(tmp_path / "ddp" / "trunk.pth", weights_only=True)
    one = torch.load(tmp_path / "single" / "trunk.pth", weights_only=True)
    assert two["meta"]["iterations"] == one["meta"]["iterations"] == 8
    for key, value in one["state_dict"].items():
        torch.testing.assert_close(two["state_dict"][key], value, rtol=1e-5, atol=1e-6)
    start = torch.manual_seed(3) and helpers.make_registry().build("backbone", {"name": "tinynet"})
    assert not torch.allclose(start.c1.weight, one["state_dict"]["trunk.c1.weight"])  # it did train

    # evaluation: the distributed evaluator ran on both ranks, each on its half, and reduced; the other on rank 0
    ddp, single = (json.loads((tmp_path / name / "results.json").read_text()) for name in ("ddp", "single"))
    for results, single_results in (
        (ddp["results"], single["results"]),
        (ddp["baseline"]["results"], single["baseline"]["results"]),
    ):
        assert [r["evaluator"] for r in results] == ["centroid", "feature_mean"]
        means = {r["evaluator"]: r for r in results}["feature_mean"]
        assert means["details"] == {"count": 16, "world_size": 2}
        expected = {r["evaluator"]: r for r in single_results}["feature_mean"]
        assert expected["details"] == {"count": 16, "world_size": 1}
        for layer, score in expected["layers"].items():
            assert means["layers"][layer]["mean"] == pytest.approx(score["mean"], rel=1e-4)
    records = sorted(path.name.split("-")[0] for path in (tmp_path / "ddp" / "stages").glob("*-*-*.json"))
    assert records == ["evaluate", "evaluate", "random", "random"]

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)  # every stage stored
    assert again.returncode == 0 and "already finished" in again.stdout, again.stdout[-2000:] + again.stderr[-2000:]
    assert json.loads((tmp_path / "ddp" / "results.json").read_text())["results"] == ddp["results"]
