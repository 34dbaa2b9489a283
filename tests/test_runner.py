"""The runner end to end on test-only components: results files, finished runs not redone, bad images, folders."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import runner_helpers as helpers

from sslreg.cli import run_guarded
from sslreg.config import Plan
from sslreg.experiment import validate_experiment
from sslreg.runner import run_plan as run_plan_raising


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_plan(plan: Plan, registry: object) -> int:
    """run_plan as the command line runs it: errors become one line on stderr and an exit code."""
    return run_guarded(lambda: run_plan_raising(plan, registry))


def plan_of(raw: dict) -> tuple[Plan, object]:
    registry = helpers.make_registry()
    return Plan("test", raw, [("", {}, validate_experiment(raw, registry))]), registry


def test_run_writes_results_and_finished_run_is_not_redone(tmp_path, capsys, monkeypatch):
    plan, registry = plan_of(helpers.experiment_dict(tmp_path / "run"))
    assert run_plan(plan, registry) == 0
    run = tmp_path / "run"
    for name in ("results.json", "results.csv", "results.md", "trunk.pth", "config.yaml", "sslreg.log"):
        assert (run / name).is_file(), name
    payload = json.loads((run / "results.json").read_text())
    assert payload["label"] == "rotation memory"
    assert set(payload["results"][0]["layers"]) == {"c1", "c2"}
    assert payload["pretrain"]["iterations"] == 8  # 2 epochs x 32 images / batch 8
    table = (run / "results.md").read_text()
    assert "| pretraining | c1 | c2 |" in table and "| rotation memory |" in table
    assert list(run.glob("*/vis_data/events.out.tfevents.*")), "TensorBoard scalars"
    header = (run / "sslreg.log").read_text()
    assert "components: pretext rotation (test" in header and "mmengine 0.10.7" in header
    trunk = torch.load(run / "trunk.pth", weights_only=True)
    assert trunk["meta"]["config"]["pretrain"]["pretext"]["name"] == "rotation"
    assert {k.split(".")[0] for k in trunk["state_dict"]} == {"trunk", "head"}
    out = capsys.readouterr().out
    assert "c1" in out and "rotation memory" in out

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run must not train again")

    monkeypatch.setattr("sslreg.runner.training.build_runner", no_training)
    monkeypatch.setattr("sslreg.runner.evaluation.evaluated_trunk", no_training)
    assert run_plan(plan, registry) == 0
    assert "already finished" in capsys.readouterr().out


def test_evaluation_only_uses_the_backbone_section(tmp_path):
    raw = {
        "name": "random",
        "work_dir": str(tmp_path / "r"),
        "backbone": {"name": "tinynet"},
        "evaluate": [{"name": "centroid", "layers": ["c2"], "draws": 3}],
    }
    plan, registry = plan_of(raw)
    assert run_plan(plan, registry) == 0
    payload = json.loads((tmp_path / "r" / "results.json").read_text())
    assert payload["label"] == "tinynet random init"
    score = payload["results"][0]["layers"]["c2"]
    assert score["n"] == 3 and score["std"] is not None
    assert "±" in (tmp_path / "r" / "results.md").read_text()


def test_too_many_bad_images_is_a_one_line_user_error(tmp_path, capsys):
    raw = helpers.experiment_dict(tmp_path / "bad")
    raw["pretrain"]["data"].update(size=128, bad_every=3)
    raw["pretrain"]["schedule"].update(epochs=1)
    plan, registry = plan_of(raw)
    assert run_plan(plan, registry) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unreadable" in err[0] and "max_bad_fraction" in err[0]


def test_a_few_bad_images_are_skipped_and_counted(tmp_path):
    raw = helpers.experiment_dict(tmp_path / "few")
    raw["pretrain"]["data"].update(size=32, bad_every=16, max_bad_fraction=0.2)
    plan, registry = plan_of(raw)
    assert run_plan(plan, registry) == 0
    info = json.loads((tmp_path / "few" / "results.json").read_text())["pretrain"]
    assert info["bad_images"] == 4 and info["seen_images"] == 64  # items 0 and 16, two epochs


def test_folder_of_another_config_is_refused(tmp_path, capsys):
    plan, registry = plan_of(helpers.experiment_dict(tmp_path / "x", epochs=1, max_iters=2))
    assert run_plan(plan, registry) == 0
    changed = helpers.experiment_dict(tmp_path / "x", epochs=1, max_iters=2)
    changed["pretrain"]["schedule"]["lr"] = 0.5
    (tmp_path / "x" / "results.json").unlink()
    plan, registry = plan_of(changed)
    assert run_plan(plan, registry) == 2
    assert "pretrain.schedule.lr" in capsys.readouterr().err


def test_max_iters_caps_the_run(tmp_path):
    plan, registry = plan_of(helpers.experiment_dict(tmp_path / "m", epochs=50, max_iters=6))
    assert run_plan(plan, registry) == 0
    info = json.loads((tmp_path / "m" / "results.json").read_text())["pretrain"]
    assert info["iterations"] == 6 and info["epochs"] == 2
    assert np.isfinite(json.loads((tmp_path / "m" / "results.json").read_text())["results"][0]["layers"]["c1"]["mean"])


def test_streamed_source_trains_with_workers(tmp_path):
    raw = helpers.experiment_dict(tmp_path / "s", epochs=2, num_workers=2)
    raw["pretrain"]["data"] = {"name": "memory_stream", "size": 32}
    plan, registry = plan_of(raw)
    assert run_plan(plan, registry) == 0
    info = json.loads((tmp_path / "s" / "results.json").read_text())["pretrain"]
    assert info["iterations"] == 8 and info["seen_images"] == 64


def test_a_run_that_failed_before_its_first_checkpoint_can_be_fixed_in_place(tmp_path, capsys):
    raw = helpers.experiment_dict(tmp_path / "fix")
    raw["pretrain"]["data"].update(size=128, bad_every=3)  # too many unreadable images: stops before a checkpoint
    raw["pretrain"]["schedule"].update(epochs=1)
    plan, registry = plan_of(raw)
    assert run_plan(plan, registry) == 2
    raw["pretrain"]["data"].update(bad_every=0)
    plan, registry = plan_of(raw)
    assert run_plan(plan, registry) == 0, capsys.readouterr().err
    assert (tmp_path / "fix" / "results.json").is_file()
