"""MoCo v2: the conformance kit, the queue and momentum mechanics, and a killed run resuming to the same state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sslreg_moco_v2
import torch
import torch.nn.functional as F
import yaml
from sslreg_moco_v2 import MocoV2, MocoV2Config, info_nce

from sslreg import StepContext, load_weights_only, stack
from sslreg.testing import TinyBackbone, check_plugin

TESTS = Path(__file__).parents[3] / "tests"
sys.path.insert(0, str(TESTS))
import contract_helpers  # noqa: E402
import reliability_helpers  # noqa: E402

SMALL = {"augment": [{"name": "RandomResizedCrop", "size": 16, "scale": [0.5, 1.0]}, "RandomHorizontalFlip"]}


def image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (24, 24, 3), dtype=np.uint8)


def test_conformance_kit_passes():
    entries = check_plugin(sslreg_moco_v2)
    assert [(entry.kind, entry.name) for entry in entries] == [("pretext", "moco_v2")]


def test_info_nce_puts_the_positive_first_against_the_queue():
    q = F.normalize(torch.randn(4, 8), dim=1)
    queue = F.normalize(torch.randn(10, 8), dim=1)
    loss, logits = info_nce(q, q, queue, 0.2)
    assert logits.shape == (4, 11)
    torch.testing.assert_close(logits[:, 0], torch.ones(4) / 0.2)
    expected = -torch.log_softmax(torch.cat([torch.ones(4, 1), q @ queue.T], 1) / 0.2, dim=1)[:, 0].mean()
    torch.testing.assert_close(loss, expected)


def test_a_step_updates_the_key_encoder_by_momentum_and_enqueues_the_keys():
    torch.manual_seed(0)
    task = MocoV2(MocoV2Config(**SMALL, queue_size=6, dim=8, momentum=0.9))
    model = task.build_model(TinyBackbone())
    inputs, targets = stack([task.make_sample(image(i), np.random.default_rng(i)) for i in range(4)])
    assert inputs.shape == (4, 2, 3, 16, 16) and targets is None
    key_before = [p.clone() for p in model.key_trunk.parameters()]
    queue_before = model.queue.clone()
    out = task.loss(model, inputs, None, context=StepContext(iteration=0, max_iters=10))
    keys = model.pending.clone()
    out["loss"].backward()
    assert all(p.grad is None for p in model.key_trunk.parameters())  # the key encoder is not trained
    with torch.no_grad():
        for p in model.trunk.parameters():
            p.add_(1.0)
        task.after_step(model, StepContext(iteration=0, max_iters=10))
    for before, key, query in zip(key_before, model.key_trunk.parameters(), model.trunk.parameters()):
        torch.testing.assert_close(key, 0.9 * before + 0.1 * query)
    torch.testing.assert_close(model.queue[:4], keys)
    torch.testing.assert_close(model.queue[4:], queue_before[4:])
    assert int(model.queue_ptr) == 4 and model.pending is None
    model.enqueue(keys)  # wraps around: rows 4, 5, 0, 1
    torch.testing.assert_close(model.queue[[4, 5, 0, 1]], keys)
    assert int(model.queue_ptr) == 2


def test_cosine_momentum_schedule_goes_to_one():
    task = MocoV2(MocoV2Config(**SMALL, momentum=0.99, momentum_schedule="cosine"))
    values = [task.momentum_at(StepContext(iteration=i, max_iters=11)) for i in range(11)]
    assert values[0] == pytest.approx(0.99) and values[-1] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(values, values[1:]))


def test_key_encoder_can_be_the_evaluated_trunk():
    task = MocoV2(MocoV2Config(**SMALL, evaluate="key"))
    model = task.build_model(TinyBackbone())
    assert task.evaluated_trunk(model) is model.key_trunk


def test_killed_run_resumes_to_the_same_queue_pointer_and_encoders(tmp_path, capsys):
    """SIGKILL while the third checkpoint is written, resume: the final state (query and key encoders, queue,
    pointer) equals an uninterrupted run's, bit for bit."""
    pretext = {"name": "moco_v2", **SMALL, "queue_size": 20, "dim": 8, "momentum": 0.9, "momentum_schedule": "cosine"}

    def config(name: str) -> Path:
        raw = contract_helpers.experiment(tmp_path / name, pretext, epochs=4, keep_checkpoints=1)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path

    script = [sys.executable, str(TESTS / "contract_helpers.py")]
    mark = tmp_path / "paused"
    paused = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        reliability_helpers.PAUSE_ENV: "epoch_3.pth:write",
        reliability_helpers.MARK_ENV: str(mark),
    }
    process = subprocess.Popen([*script, str(config("killed"))], env=paused, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not mark.exists():
            assert process.poll() is None, "the run ended before its third checkpoint"
            assert time.monotonic() < deadline, "the run never reached its third checkpoint"
            time.sleep(0.02)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert not (tmp_path / "killed" / "trunk.pth").exists()
    assert contract_helpers.main([str(config("killed"))]) == 0
    assert "resuming from epoch_2.pth" in capsys.readouterr().out
    assert contract_helpers.main([str(config("straight"))]) == 0

    final = {name: load_weights_only(tmp_path / name / "epoch_4.pth")["state_dict"] for name in ("killed", "straight")}
    assert {"queue", "queue_ptr", "key_trunk.c1.weight", "key_head.0.weight"} <= final["straight"].keys()
    assert final["killed"].keys() == final["straight"].keys()
    for key, value in final["straight"].items():
        assert torch.equal(final["killed"][key], value), key
    assert int(final["straight"]["queue_ptr"]) == (16 * 8) % 20  # 16 steps of 8 keys into a queue of 20
    assert not torch.equal(final["straight"]["key_trunk.c1.weight"], final["straight"]["trunk.c1.weight"])
