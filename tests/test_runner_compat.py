"""The checkpoint shim: mmengine checkpoints load with torch.load(weights_only=True), nothing but numpy allowed."""

from __future__ import annotations

import builtins
import io
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from torch.serialization import get_unsafe_globals_in_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
import runner_helpers as helpers

from sslreg.config import Plan
from sslreg.experiment import validate_experiment
from sslreg.files import NUMPY_SAFE_GLOBALS
from sslreg.runner import compat, run_plan


def test_message_hub_round_trips_through_plain_data():
    hub = MessageHub.get_instance("compat-test")
    for value in (1.0, 2.5, 4.0):
        hub.update_scalar("train/loss", value)
    hub.update_info("iter", 3)
    plain = compat.plain_message_hub(hub.state_dict())
    assert not any(isinstance(v, HistoryBuffer) for v in plain["log_scalars"].values())
    restored = compat.restore_message_hub(plain)
    other = MessageHub.get_instance("compat-test-restored")
    other.load_state_dict(restored)
    assert other.get_scalar("train/loss").mean() == pytest.approx(2.5)
    assert other.get_scalar("train/loss").current() == 4.0
    assert other.get_info("iter") == 3


def test_raw_history_buffer_needs_getattr_which_is_never_allowed(tmp_path):
    path = tmp_path / "raw.pth"
    buffer = HistoryBuffer([1.0], [1])
    torch.save({"message_hub": {"log_scalars": {"loss": buffer}}}, path)
    assert "builtins.getattr" in get_unsafe_globals_in_checkpoint(str(path))
    with pytest.raises(pickle.UnpicklingError, match="weights_only"):
        compat.load_checkpoint(path)
    assert builtins.getattr not in NUMPY_SAFE_GLOBALS
    assert all(getattr(g, "__module__", "").startswith("numpy") for g in NUMPY_SAFE_GLOBALS)


def test_runner_checkpoints_hold_only_weights_and_numpy(tmp_path):
    torch.set_num_threads(1)
    raw = helpers.experiment_dict(tmp_path / "run", epochs=1)
    registry = helpers.make_registry()
    assert run_plan(Plan("t", raw, [("", {}, validate_experiment(raw, registry))]), registry) == 0
    checkpoint = tmp_path / "run" / "epoch_1.pth"
    extra = get_unsafe_globals_in_checkpoint(str(checkpoint))
    assert "builtins.getattr" not in extra
    assert all(name.startswith("numpy.") for name in extra), extra
    loaded = compat.load_checkpoint(checkpoint)
    assert isinstance(loaded["message_hub"]["log_scalars"]["train/loss"], HistoryBuffer)
    with open(checkpoint, "rb") as stream:  # and plain torch.load(weights_only=True) with the same allow-list
        with torch.serialization.safe_globals(NUMPY_SAFE_GLOBALS):
            assert "state_dict" in torch.load(io.BytesIO(stream.read()), weights_only=True)
    assert not list((tmp_path / "run").glob("*.part"))


def test_atomic_save_leaves_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "x.pth"
    compat.atomic_save({"a": torch.ones(1)}, path)

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(KeyboardInterrupt):
        compat.atomic_save({"a": torch.zeros(1)}, path)
    assert torch.equal(compat.load_checkpoint(path)["a"], torch.ones(1))
    assert [p.name for p in tmp_path.iterdir()] == ["x.pth"]
    assert np.isclose(float(compat.load_checkpoint(path)["a"]), 1.0)
