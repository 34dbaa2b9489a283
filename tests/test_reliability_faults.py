"""Faults during a run: SIGKILL at every file write, corrupt and truncated checkpoints, a full disk, two runs
on one folder. Each run resumes to the same final weights as an uninterrupted one, or stops with one line."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent))
import reliability_helpers
import runner_helpers as helpers

from sslreg.cli import run_guarded
from sslreg.config import load_plan
from sslreg.runner import checkpoints, run_plan
from sslreg.runner.hooks import RetainingCheckpointHook


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_config(folder: Path, work_dir: Path, **schedule) -> Path:
    raw = helpers.experiment_dict(work_dir, epochs=4, **{"keep_checkpoints": 1, **schedule})
    path = folder / f"{work_dir.name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run(config: Path, *overrides: str) -> int:
    registry = helpers.make_registry()
    return run_guarded(lambda: run_plan(load_plan(config, registry, list(overrides)), registry))


def weights(work_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(work_dir / "trunk.pth", weights_only=True)["state_dict"]


def results(work_dir: Path) -> list:
    return json.loads((work_dir / "results.json").read_text())["results"]


def assert_same_weights(a: Path, b: Path) -> None:
    left, right = weights(a), weights(b)
    assert left.keys() == right.keys()
    for key in left:
        assert torch.equal(left[key], right[key]), key


def digests(folder: Path, skip: tuple[str, ...] = ("sslreg.log", "sslreg.lock")) -> dict[str, str]:
    """sha256 of every file under ``folder`` but the log and the lock (byte-for-byte comparisons)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in skip
    }


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The same experiment, run without interruption."""
    folder = tmp_path_factory.mktemp("reference")
    torch.set_num_threads(1)
    assert run(write_config(folder, folder / "straight")) == 0
    return folder / "straight"


def _child(config: Path, env: dict[str, str], log: Path) -> None:
    """In a forked child: install the fault hooks ``env`` names and run ``config`` as the command line would;
    its stderr goes to ``log``."""
    handle = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(handle, 2)
    sys.stderr = open(2, "w", closefd=False)  # the child's stderr, read by the test
    os.environ.update(env)
    reliability_helpers.install()
    code = helpers.main([str(config)])
    sys.stderr.flush()
    os._exit(code)


def fork_run(config: Path, env: dict[str, str], log: Path) -> multiprocessing.Process:
    """Start a run of ``config`` in a forked process (the same as a separate ``sslreg run`` for a SIGKILL or a
    full disk, without the seconds of importing torch again)."""
    process = multiprocessing.get_context("fork").Process(target=_child, args=(config, env, log), daemon=True)
    process.start()
    return process


def start_paused(tmp_path: Path, config: Path, pause: str) -> tuple[multiprocessing.Process, Path]:
    """A forked run of ``config`` paused at ``pause`` (see reliability_helpers); returned once paused."""
    mark, log = tmp_path / "paused", tmp_path / "child.log"
    env = {reliability_helpers.PAUSE_ENV: pause, reliability_helpers.MARK_ENV: str(mark)}
    process = fork_run(config, env, log)
    deadline = time.monotonic() + 240
    while not mark.exists():
        if not process.is_alive():
            raise AssertionError(f"exited {process.exitcode} before pausing: {log.read_text()}")
        assert time.monotonic() < deadline, "never paused"
        time.sleep(0.02)
    return process, mark


def kill(process: multiprocessing.Process) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.join()
    assert process.exitcode == -signal.SIGKILL


@pytest.mark.parametrize(
    "pause",
    [
        "epoch_2.pth:write",  # the checkpoint's .part file half written
        "epoch_2.pth:publish",  # .part and checksum written, not yet renamed
        "trunk.pth:publish",  # every checkpoint written, the trunk not yet in place
        "pretrain.json:publish",  # trunk.pth written, its stage record not
        "results.json:publish",  # results.csv/.md written, results.json not
    ],
)
def test_sigkill_at_each_write_resumes_to_the_same_weights(tmp_path, capsys, reference, pause):
    work_dir = tmp_path / "run"
    config = write_config(tmp_path, work_dir)
    process, _ = start_paused(tmp_path, config, pause)
    try:
        if pause.startswith("epoch_2"):
            # keep_checkpoints=1, yet the previous checkpoint is still there while the next one is written
            assert checkpoints.problem(work_dir / "epoch_1.pth") is None
            assert list(work_dir.glob(".epoch_2.pth.part"))
    finally:
        kill(process)
    assert not (work_dir / "results.json").exists()

    capsys.readouterr()
    assert run(config) == 0
    out = capsys.readouterr().out
    if pause.startswith("epoch_2"):
        assert "resuming from epoch_1.pth" in out
    assert_same_weights(work_dir, reference)
    assert results(work_dir) == results(reference)
    assert not [p for p in work_dir.rglob("*") if p.name.endswith(".part")], "stale .part files are removed"
    assert [p.name for _, p in checkpoints.checkpoints(work_dir)] == ["epoch_4.pth"]
    assert checkpoints.problem(work_dir / "epoch_4.pth") is None


def crash_after_epoch(monkeypatch, last: int) -> None:
    """Make the in-process run die right after checkpoint ``last`` is complete (as a kill would)."""
    original = RetainingCheckpointHook._save_checkpoint_with_step

    def save(self, runner, step, meta):
        original(self, runner, step, meta)
        if step == last:
            raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(RetainingCheckpointHook, "_save_checkpoint_with_step", save)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for offset in range(len(data) // 2, len(data) // 2 + 8):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [truncate, flip], ids=["truncated", "flipped-bytes"])
def test_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys, monkeypatch, reference, damage):
    work_dir = tmp_path / "run"
    config = write_config(tmp_path, work_dir, keep_checkpoints=2)
    crash_after_epoch(monkeypatch, 3)
    assert run(config) == 130
    monkeypatch.undo()
    assert [p.name for _, p in checkpoints.checkpoints(work_dir)] == ["epoch_2.pth", "epoch_3.pth"]
    damage(work_dir / "epoch_3.pth")

    capsys.readouterr()
    assert run(config) == 0
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if "skipping" in line]
    assert len(warnings) == 1 and "epoch_3.pth" in warnings[0] and "checksum mismatch" in warnings[0]
    assert "resuming from epoch_2.pth" in out
    assert_same_weights(work_dir, reference)
    assert results(work_dir) == results(reference)


def test_no_valid_checkpoint_starts_over_and_damaged_trunk_is_rebuilt(tmp_path, capsys, monkeypatch, reference):
    work_dir = tmp_path / "run"
    config = write_config(tmp_path, work_dir, keep_checkpoints=2)
    crash_after_epoch(monkeypatch, 2)
    assert run(config) == 130
    monkeypatch.undo()
    for _, path in checkpoints.checkpoints(work_dir):
        flip(path)
    capsys.readouterr()
    assert run(config) == 0
    out = capsys.readouterr().out
    assert out.count("skipping") == 2 and "resuming" not in out
    assert_same_weights(work_dir, reference)

    flip(work_dir / "trunk.pth")  # a damaged trunk is rebuilt from the final checkpoint, without training
    before = results(work_dir)
    assert run(config) == 0
    out = capsys.readouterr().out
    assert "trunk.pth is not the file recorded" in out and "resuming from epoch_4.pth" in out
    assert_same_weights(work_dir, reference)
    assert results(work_dir) == before


def test_two_runs_on_one_folder_one_refuses_and_results_are_not_mixed(tmp_path, capsys, reference):
    work_dir = tmp_path / "run"
    config = write_config(tmp_path, work_dir)
    process, mark = start_paused(tmp_path, config, "epoch_2.pth:publish")
    try:
        before = digests(work_dir)
        for overrides in ([], ["pretrain.schedule.lr=0.5"]):
            capsys.readouterr()
            assert run(config, *overrides) == 2
            line = one_line(capsys.readouterr().err)
            assert str(work_dir) in line and f"pid {process.pid}" in line, line
        assert digests(work_dir) == before, "the refused run touched nothing"
        mark.with_name(mark.name + ".go").touch()
        process.join(timeout=240)
        assert process.exitcode == 0, (tmp_path / "child.log").read_text()
    finally:
        if process.is_alive():
            kill(process)
    assert_same_weights(work_dir, reference)
    assert results(work_dir) == results(reference)
    finished = digests(work_dir)

    capsys.readouterr()  # the other config is refused by the folder's fingerprint now, naming the key
    assert run(config, "pretrain.schedule.lr=0.5") == 2
    line = one_line(capsys.readouterr().err)
    assert "pretrain.schedule.lr: 0.05 -> 0.5" in line and "work_dir" in line
    assert digests(work_dir) == finished


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs (needs root); skipped where it cannot be mounted."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_full_disk_during_a_checkpoint_is_one_line_and_loses_nothing(tmp_path, small_disk, capsys, reference):
    work_dir = small_disk / "run"
    config = write_config(tmp_path, work_dir)
    filler, log = small_disk / "filler", tmp_path / "child.log"
    process = fork_run(config, {reliability_helpers.FILL_ENV: f"epoch_2.pth:{filler}"}, log)
    process.join(timeout=240)
    if process.is_alive():
        kill(process)
    assert process.exitcode == 2, log.read_text()
    line = one_line(log.read_text())
    assert "disk full" in line and str(work_dir / "epoch_2.pth") in line and "free there" in line, line
    assert not list(work_dir.rglob("*.part")), "no partial file left behind"
    assert [p.name for _, p in checkpoints.checkpoints(work_dir)] == ["epoch_1.pth"]
    assert checkpoints.problem(work_dir / "epoch_1.pth") is None

    filler.unlink()  # space freed: the rerun resumes and ends where an uninterrupted run ends
    capsys.readouterr()
    assert run(config) == 0
    assert "resuming from epoch_1.pth" in capsys.readouterr().out
    assert_same_weights(work_dir, reference)
    assert results(work_dir) == results(reference)
