"""A run folder is bound to its config, each stage is resumed on its own, bad data fails early and is counted
across resumes, and every failure is one line with the right exit code (2: user, 1: internal)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import Field

sys.path.insert(0, str(Path(__file__).parent))
import runner_helpers as helpers

import sslreg
from sslreg import EvalContext, EvalResult, Evaluator, EvaluatorConfig, LayerScore
from sslreg.cli import main, run_guarded
from sslreg.config import Plan
from sslreg.errors import PluginError
from sslreg.experiment import validate_experiment
from sslreg.runner import run_plan
from sslreg.runner.stages import check_feature_cache


class RootedConfig(helpers.MemoryConfig):
    root: str = Field(".", description="A folder that must exist (checked only when the source is built).")


class Rooted(helpers.MemorySource):
    """The memory images, behind a root folder that must exist (like a real dataset whose files are missing)."""

    name = "rooted"
    Config = RootedConfig

    def __init__(self, config: RootedConfig) -> None:
        if not Path(config.root).is_dir():
            raise FileNotFoundError(errno.ENOENT, "dataset 'rooted': no such folder", config.root)
        super().__init__(config)


class Vanishing(helpers.MemoryStream):
    """A stream that yields its images the first time only (as if its shards vanished after the first look)."""

    name = "vanishing"
    calls = 0

    def stream(self, rank: int = 0, world_size: int = 1, epoch: int = 0):
        Vanishing.calls += 1
        if Vanishing.calls == 1:
            yield from super().stream(rank, world_size, epoch)


class ProbeConfig(EvaluatorConfig):
    data: sslreg.DataSpec = Field(default_factory=lambda: sslreg.DataSpec(name="memory", size=16))
    fail: str = Field("", description="Raise this exception type instead of scoring ('' for none).")


class Probe(Evaluator):
    """Nearest-centroid accuracy on pooled features from sslreg.extract_features (cached in the run folder)."""

    name = "probe"
    Config = ProbeConfig
    runs = 0

    def evaluate(self, backbone, context: EvalContext) -> list[EvalResult]:
        Probe.runs += 1
        errors = {"RuntimeError": RuntimeError, "ValueError": ValueError, "PluginError": PluginError}
        if self.config.fail:
            raise errors[self.config.fail](f"probe failed on purpose ({self.config.fail})")
        source = context.build_dataset(self.config.data)
        features = sslreg.extract_features(
            backbone, source, self.config.layers, batch_size=8, cache_dir=context.cache_dir
        )
        y = np.asarray(features.targets)
        scores = {}
        for layer, x in features.features.items():
            x = np.asarray(x)
            centres = np.stack([x[y == c].mean(0) for c in range(4)])
            predicted = ((x[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
            scores[layer] = LayerScore.of([100.0 * float((predicted == y).mean())])
        return [EvalResult(evaluator=self.name, metric="accuracy", layers=scores)]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def registry():
    found = helpers.make_registry()
    for cls in (Rooted, Vanishing, Probe):
        found.add(cls, plugin="test", distribution="tests", version="0")
    from sslreg_datasets.shards import Shards

    found.add(Shards, plugin="datasets", distribution="sslreg-datasets", version="0")
    return found


def run(raw: dict) -> int:
    """``raw`` run as the command line runs it (one line on stderr and an exit code on error)."""
    found = registry()

    def go() -> int:
        return run_plan(Plan("test", raw, [("", {}, validate_experiment(raw, found))]), found)

    return run_guarded(go)


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def digests(folder: Path) -> dict[str, str]:
    skip = ("sslreg.log", "sslreg.lock")
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in skip
    }


def payload(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def no_pretraining(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("pretraining must not run again")

    monkeypatch.setattr("sslreg.runner.training.build_runner", refuse)


# --- a folder is bound to its config ---------------------------------------------------------------------------


def test_another_config_never_shows_old_results(tmp_path, capsys):
    raw = helpers.experiment_dict(tmp_path / "run")
    assert run(raw) == 0
    finished = digests(tmp_path / "run")
    raw["pretrain"]["backbone"]["width"] = 8
    capsys.readouterr()
    assert run(raw) == 2
    line = one_line(capsys.readouterr().err)
    assert str(tmp_path / "run") in line and "pretrain.backbone.width: 4 -> 8" in line and "work_dir" in line
    assert digests(tmp_path / "run") == finished, "nothing written, the old results untouched"
    raw["work_dir"] = str(tmp_path / "wide")  # the fix the line names
    assert run(raw) == 0
    assert payload(tmp_path / "wide")["config"]["pretrain"]["backbone"]["width"] == 8


def test_options_that_do_not_change_weights_keep_the_folder(tmp_path, monkeypatch, capsys):
    raw = helpers.experiment_dict(tmp_path / "run")
    assert run(raw) == 0
    raw["pretrain"]["schedule"].update(log_interval=1, keep_checkpoints=3)
    no_pretraining(monkeypatch)
    assert run(raw) == 0, capsys.readouterr().err


def test_a_folder_without_its_fingerprint_is_refused(tmp_path, capsys):
    raw = helpers.experiment_dict(tmp_path / "run")
    assert run(raw) == 0
    (tmp_path / "run" / "fingerprint.json").write_text("{not json")
    capsys.readouterr()
    assert run(raw) == 2
    line = one_line(capsys.readouterr().err)
    assert "fingerprint.json" in line and "unreadable" in line


# --- stages ----------------------------------------------------------------------------------------------------


def test_changing_or_adding_an_evaluator_reruns_only_that_evaluator(tmp_path, monkeypatch, capsys):
    raw = helpers.experiment_dict(tmp_path / "run")
    raw["evaluate"] = [{"name": "probe", "layers": "all"}]
    assert run(raw) == 0
    first = payload(tmp_path / "run")["results"]
    trunk = (tmp_path / "run" / "trunk.pth").read_bytes()
    no_pretraining(monkeypatch)

    Probe.runs = 0
    raw["evaluate"] = [{"name": "probe", "layers": ["c1"]}]
    assert run(raw) == 0
    assert Probe.runs == 1
    changed = payload(tmp_path / "run")["results"]
    assert [list(r["layers"]) for r in changed] == [["c1"]], "results of the changed evaluator only"
    assert changed[0]["layers"]["c1"] == first[0]["layers"]["c1"]

    Probe.runs = 0
    raw["evaluate"] = [{"name": "centroid", "layers": "all"}, {"name": "probe", "layers": "all"}]
    assert run(raw) == 0
    assert Probe.runs == 0, "the probe's stage is reused (its record matches)"
    both = payload(tmp_path / "run")["results"]
    assert [r["evaluator"] for r in both] == ["centroid", "probe"] and both[1] == first[0]

    raw["evaluate"] = [{"name": "probe", "layers": "all"}]
    capsys.readouterr()
    assert run(raw) == 0
    assert "already finished" in capsys.readouterr().out
    assert payload(tmp_path / "run")["results"] == first
    assert (tmp_path / "run" / "trunk.pth").read_bytes() == trunk


def test_a_missing_evaluator_root_fixed_later_never_reruns_pretraining(tmp_path, monkeypatch, capsys):
    raw = helpers.experiment_dict(tmp_path / "run")
    missing = tmp_path / "labelled"
    raw["evaluate"] = [{"name": "centroid", "layers": "all", "data": {"name": "rooted", "root": str(missing)}}]
    assert run(raw) == 2
    line = one_line(capsys.readouterr().err)
    assert str(missing) in line and "no such folder" in line
    assert (tmp_path / "run" / "stages" / "pretrain.json").is_file(), "the pretraining is kept"
    assert not (tmp_path / "run" / "results.json").exists()
    trunk = (tmp_path / "run" / "trunk.pth").read_bytes()

    no_pretraining(monkeypatch)
    missing.mkdir()  # fixed by creating the folder
    assert run(raw) == 0, capsys.readouterr().err
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    raw["evaluate"][0]["data"]["root"] = str(elsewhere)  # or by naming another root
    assert run(raw) == 0, capsys.readouterr().err
    assert payload(tmp_path / "run")["results"][0]["evaluator"] == "centroid"
    assert (tmp_path / "run" / "trunk.pth").read_bytes() == trunk


def test_corrupt_records_and_results_are_named_and_redone(tmp_path, monkeypatch, capsys):
    raw = helpers.experiment_dict(tmp_path / "run")
    raw["evaluate"] = [{"name": "probe", "layers": "all"}]
    assert run(raw) == 0
    folder = tmp_path / "run"
    expected = (folder / "results.json").read_text()
    no_pretraining(monkeypatch)

    (folder / "results.json").write_text('{"label": "resnet18 from another run", "resu')  # never read
    (record,) = folder.glob("stages/evaluate-probe-*.json")
    record.write_text("garbage")
    (cache,) = [p for p in (folder / "features").iterdir() if p.is_dir()]
    layer = cache / "c2.npy"
    layer.write_bytes(layer.read_bytes()[:100])  # truncated feature file
    Probe.runs = 0
    capsys.readouterr()
    assert run(raw) == 0
    out = capsys.readouterr().out
    assert Probe.runs == 1
    assert f"{record}: corrupt stage record" in out
    assert f"feature cache {layer} is corrupt" in out
    redone, before = json.loads((folder / "results.json").read_text()), json.loads(expected)
    for stored in (redone, before):  # the redone stage's wall time and finish time are new; nothing else is
        del stored["provenance"]["stages"]["evaluate probe"]
    assert redone == before


def test_feature_cache_check_names_and_removes_bad_files(tmp_path):
    entry = tmp_path / "features" / "key"
    entry.mkdir(parents=True)
    (entry / "meta.json").write_text(json.dumps({"count": 4}))
    np.save(entry / "c1.npy", np.zeros((4, 3), np.float32))
    np.save(entry / "c2.npy", np.zeros((3, 3), np.float32))  # wrong row count
    np.save(entry / "targets.npy", np.zeros(4))
    lines: list[str] = []
    removed = check_feature_cache(tmp_path / "features", lines.append)
    assert removed == [entry / "c2.npy"] and len(lines) == 1 and "c2.npy" in lines[0] and "3 rows" in lines[0]
    (entry / "targets.npy").write_bytes(b"\x93NUMPY garbage")
    removed = check_feature_cache(tmp_path / "features", lines.append)
    assert removed == [entry / "targets.npy", entry / "meta.json"], "a bad targets file redoes the whole entry"


# --- bad data --------------------------------------------------------------------------------------------------


def test_bad_image_counts_survive_a_rerun(tmp_path, capsys):
    raw = helpers.experiment_dict(tmp_path / "run")
    raw["pretrain"]["data"].update(size=32, bad_every=3)  # 11 of 32 unreadable; checked at the end (64 < 100)
    assert run(raw) == 2
    first = one_line(capsys.readouterr().err)
    assert "22 of 64 training images unreadable" in first
    assert (tmp_path / "run" / "epoch_2.pth").is_file(), "failed after its last checkpoint"
    assert run(raw) == 2, "a rerun must not pass with the counts lost"
    assert one_line(capsys.readouterr().err) == first
    raw["pretrain"]["data"]["max_bad_fraction"] = 0.5  # accepted: the same folder resumes
    assert run(raw) == 0, capsys.readouterr().err
    info = payload(tmp_path / "run")["pretrain"]
    assert info["bad_images"] == 22 and info["seen_images"] == 64


def test_an_unreadable_source_fails_before_training(tmp_path, capsys):
    raw = helpers.experiment_dict(tmp_path / "run")
    raw["pretrain"]["data"].update(bad_every=1)
    assert run(raw) == 2
    line = one_line(capsys.readouterr().err)
    assert "dataset 'memory': the first 16 images are all unreadable (first: image 0: unreadable)" in line
    assert not list((tmp_path / "run").glob("epoch_*")) and not (tmp_path / "run" / "trunk.pth").exists()


def test_an_empty_shard_fails_before_training(tmp_path, capsys):
    shard = tmp_path / "empty.tar"
    shard.write_bytes(b"")
    raw = helpers.experiment_dict(tmp_path / "run")
    raw["pretrain"]["data"] = {"name": "shards", "urls": str(shard), "num_images": 32}
    assert run(raw) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("sslreg: error: dataset 'shards': urls: 1 of 1 shards are empty (0 bytes)"), line
    assert not (tmp_path / "run" / "results.json").exists()


def test_zero_iterations_is_an_error_not_a_table(tmp_path, capsys):
    Vanishing.calls = 0
    raw = helpers.experiment_dict(tmp_path / "run")
    raw["pretrain"]["data"] = {"name": "vanishing", "size": 32}
    assert run(raw) == 2
    assert "pretraining ran 0 iterations" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "run" / "trunk.pth").exists() and not (tmp_path / "run" / "results.json").exists()


# --- errors ----------------------------------------------------------------------------------------------------


def test_work_dir_problems_are_one_line(tmp_path, capsys):
    raw = helpers.experiment_dict(tmp_path / "file")
    (tmp_path / "file").write_text("")
    assert run(raw) == 2
    assert "exists and is not a folder" in one_line(capsys.readouterr().err)

    long = tmp_path / ("x" * 300)
    raw["work_dir"] = str(long)
    assert run(raw) == 2
    line = one_line(capsys.readouterr().err)
    assert "file name too long (300 characters" in line

    readonly = tmp_path / "readonly"
    readonly.mkdir()
    if os.geteuid() == 0:  # root writes through permissions: a read-only mount instead
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(readonly)])
        if mounted.returncode:
            pytest.skip("cannot mount a read-only tmpfs")
    else:
        readonly.chmod(0o555)
    try:
        raw["work_dir"] = str(readonly / "run")
        assert run(raw) == 2
        line = one_line(capsys.readouterr().err)
        assert str(readonly / "run") in line and ("Read-only" in line or "Permission denied" in line), line
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(readonly)])


@pytest.mark.parametrize(
    ("fail", "prefix"),
    [
        # raised inside an evaluator's code: reported as that plugin's internal error, naming component and method
        (
            "RuntimeError",
            "sslreg: internal error in plugin tests.test_reliability_runs, evaluator 'probe', evaluate()"
            " failed: RuntimeError: probe failed on purpose (RuntimeError)",
        ),
        (
            "ValueError",
            "sslreg: internal error in plugin tests.test_reliability_runs, evaluator 'probe', evaluate()"
            " failed: ValueError: probe failed on purpose (ValueError)",
        ),
        ("PluginError", "sslreg: internal error in probe failed on purpose (PluginError)"),
    ],
)
def test_internal_errors_are_one_line_with_the_traceback_in_the_run_log(tmp_path, capsys, monkeypatch, fail, prefix):
    monkeypatch.delenv("SSLREG_DEBUG", raising=False)
    raw = helpers.experiment_dict(tmp_path / "run")
    raw["evaluate"] = [{"name": "probe", "fail": fail}]
    assert run(raw) == 1
    line = one_line(capsys.readouterr().err)
    log = tmp_path / "run" / "sslreg.log"
    assert line.startswith(prefix) and f"traceback in {log}" in line, line
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and f"probe failed on purpose ({fail})" in text

    monkeypatch.setenv("SSLREG_DEBUG", "1")  # the traceback on stderr too
    assert run(raw) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.strip().splitlines()[-1].startswith(prefix)
    monkeypatch.setenv("SSLREG_DEBUG", "0")  # 0 means off
    assert run(raw) == 1
    one_line(capsys.readouterr().err)


def test_internal_error_outside_a_run_logs_under_the_cache(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SSLREG_DEBUG", raising=False)
    monkeypatch.setenv("SSLREG_CACHE", str(tmp_path / "cache"))

    def broken(args):
        raise KeyError("no such thing")

    monkeypatch.setattr("sslreg.cli.cmd_list", broken)
    assert main(["list"]) == 1
    line = one_line(capsys.readouterr().err)
    (log,) = (tmp_path / "cache" / "logs").glob("sslreg-*.log")
    assert line.startswith("sslreg: internal error: KeyError: 'no such thing'") and str(log) in line
    assert "KeyError" in log.read_text()


def test_errors_from_dataloader_workers_keep_their_one_line():
    from sslreg.cli import _message

    wrapped = sslreg.UserError(
        "Caught UserError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        "  File \"x.py\", line 1, in f\nsslreg.errors.UserError: dataset 'x': bad thing"
    )
    assert _message(wrapped) == "dataset 'x': bad thing"
