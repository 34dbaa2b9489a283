"""A pretraining run killed with SIGKILL resumes from its last checkpoint and ends with the same weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent))
import runner_helpers as helpers

from sslreg.cli import run_guarded
from sslreg.config import load_plan
from sslreg.runner import run_plan

HELPERS = Path(__file__).parent / "runner_helpers.py"


def write_config(tmp_path: Path, work_dir: Path) -> Path:
    raw = helpers.experiment_dict(work_dir, epochs=4, keep_checkpoints=1)
    raw["pretrain"]["data"]["delay"] = 0.02  # ~0.6 s per epoch: time to kill the run in the middle
    path = tmp_path / f"{work_dir.name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_in_process(config: Path) -> int:
    registry = helpers.make_registry()
    return run_guarded(lambda: run_plan(load_plan(config, registry), registry))


def trunk(work_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(work_dir / "trunk.pth", weights_only=True)["state_dict"]


def test_killed_run_resumes_to_the_same_weights(tmp_path, capsys):
    torch.set_num_threads(1)
    killed = tmp_path / "killed"
    config = write_config(tmp_path, killed)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, str(HELPERS), str(config)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 240
        while not (killed / "epoch_1.pth").exists():
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint written"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert not (killed / "trunk.pth").exists(), "the run finished before it could be killed"

    assert run_in_process(config) == 0
    assert "resuming from epoch_" in capsys.readouterr().out

    straight = tmp_path / "straight"
    assert run_in_process(write_config(tmp_path, straight)) == 0
    resumed_weights, straight_weights = trunk(killed), trunk(straight)
    assert resumed_weights.keys() == straight_weights.keys()
    for key in straight_weights:
        assert torch.equal(resumed_weights[key], straight_weights[key]), key
    # keep_checkpoints=1: only the final epoch's checkpoint is left
    assert sorted(p.name for p in killed.glob("epoch_*.pth")) == ["epoch_4.pth"]

    # a finished run writes nothing again (only its log and the lock file's holder pid are touched)
    def files() -> dict[str, int]:
        touched = {"sslreg.log", "sslreg.lock"}
        return {p.name: p.stat().st_mtime_ns for p in killed.rglob("*") if p.is_file() and p.name not in touched}

    before = files()
    assert run_in_process(config) == 0
    assert "already finished" in capsys.readouterr().out
    assert files() == before
