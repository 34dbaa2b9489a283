"""A separate `python` process killed with SIGKILL while it writes a checkpoint resumes from its last complete
checkpoint and ends with the same weights as an uninterrupted run; the finished run is then left as it is."""

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
import reliability_helpers
import runner_helpers as helpers

from sslreg.cli import run_guarded
from sslreg.config import load_plan
from sslreg.runner import run_plan

SCRIPT = Path(reliability_helpers.__file__)


def write_config(tmp_path: Path, work_dir: Path) -> Path:
    raw = helpers.experiment_dict(work_dir, epochs=4, keep_checkpoints=1)
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
    mark = tmp_path / "paused"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        reliability_helpers.PAUSE_ENV: "epoch_3.pth:write",
        reliability_helpers.MARK_ENV: str(mark),
    }
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(config)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 240
        while not mark.exists():
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the run never reached its third checkpoint"
            time.sleep(0.02)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        process.stderr.close()
    assert not (killed / "trunk.pth").exists()
    assert (killed / ".epoch_3.pth.part").is_file() and (killed / "epoch_2.pth").is_file()

    assert run_in_process(config) == 0
    assert "resuming from epoch_2.pth" in capsys.readouterr().out

    straight = tmp_path / "straight"
    assert run_in_process(write_config(tmp_path, straight)) == 0
    resumed_weights, straight_weights = trunk(killed), trunk(straight)
    assert resumed_weights.keys() == straight_weights.keys()
    for key in straight_weights:
        assert torch.equal(resumed_weights[key], straight_weights[key]), key
    # keep_checkpoints=1: only the final epoch's checkpoint is left (with its checksum), no partial file
    assert sorted(p.name for p in killed.glob("*epoch_*")) == ["epoch_4.pth", "epoch_4.pth.sha256"]

    # a finished run writes nothing again (only its log and the lock file's holder pid are touched)
    def files() -> dict[str, int]:
        touched = {"sslreg.log", "sslreg.lock"}
        return {p.name: p.stat().st_mtime_ns for p in killed.rglob("*") if p.is_file() and p.name not in touched}

    before = files()
    assert run_in_process(config) == 0
    assert "already finished" in capsys.readouterr().out
    assert files() == before
