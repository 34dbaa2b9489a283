"""Results tables, the random-init baseline, published references, plots and provenance; `sslreg report`."""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import runner_helpers as helpers

from sslreg import EvalResult, LayerScore, files_fingerprint
from sslreg.cli import main, run_guarded
from sslreg.config import Plan
from sslreg.errors import ConfigError
from sslreg.experiment import validate_experiment
from sslreg.reference import Reference
from sslreg.report import RunReport, columns, markdown
from sslreg.runner import run_plan
from sslreg.runner.evaluation import random_trunk
from sslreg.trunk import build_trunk

PNG = b"\x89PNG\r\n\x1a\n"
REFERENCE = {
    "source": "Made-up et al. 2024, Table 9",
    "label": "made-up rotation",
    "scores": {"centroid": {"accuracy": {"c1": 50.0, "c2": 60.0}}},
}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(raw: dict, registry=None) -> int:
    registry = registry or helpers.make_registry()
    return run_guarded(lambda: run_plan(Plan("test", raw, [("", {}, validate_experiment(raw, registry))]), registry))


def tiny(folder: Path) -> dict:
    raw = helpers.experiment_dict(folder)
    raw["baseline"] = "random"
    raw["reference"] = [REFERENCE]
    return raw


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """One tiny run with a random-init baseline and a reference (shared: each run costs seconds)."""
    folder = tmp_path_factory.mktemp("report") / "run"
    torch.set_num_threads(1)
    assert run(tiny(folder)) == 0
    return folder


def markdown_rows(text: str, header_start: str) -> list[list[str]]:
    """The rows of the first Markdown table whose header starts with ``header_start``."""
    block = next(b for b in text.split("\n\n") if b.startswith(header_start))
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in block.splitlines()[2:]]


def test_a_baseline_run_writes_both_trunks_the_difference_the_paper_and_plots(finished, capsys):
    payload = json.loads((finished / "results.json").read_text())
    ours = payload["results"][0]["layers"]
    random = payload["baseline"]["results"][0]["layers"]
    assert payload["baseline"]["label"] == "random init" and set(random) == {"c1", "c2"}
    for layer in ("c1", "c2"):
        assert payload["differences"]["random init"]["centroid"]["accuracy"][layer] == pytest.approx(
            ours[layer]["mean"] - random[layer]["mean"], abs=1e-3
        )
        assert payload["differences"]["paper: made-up rotation"]["centroid"]["accuracy"][layer] == pytest.approx(
            ours[layer]["mean"] - REFERENCE["scores"]["centroid"]["accuracy"][layer], abs=1e-3
        )
    assert payload["reference"][0]["source"] == REFERENCE["source"]

    table = (finished / "results.md").read_text()
    rows = markdown_rows(table, "| run | centroid c1 ↑ | centroid c2 ↑ |")
    assert [row[0] for row in rows] == [
        "rotation memory",
        "random init",
        "difference (pretrained − random)",
        "paper: made-up rotation",
        "difference (ours − paper)",
    ]
    assert rows[2][1] == f"{ours['c1']['mean'] - random['c1']['mean']:+.1f}"
    assert rows[3][1:] == ["50.0", "60.0"] and rows[4][1] == f"{ours['c1']['mean'] - 50.0:+.1f}"
    assert REFERENCE["source"] in table
    assert table.index("| run |") < table.index("**centroid: accuracy**") < table.index("## Provenance")

    assert payload["plots"] == ["loss_curve.png", "layers.png"]
    for name in payload["plots"]:
        assert (finished / name).read_bytes()[:8] == PNG
    loss = payload["pretrain"]["loss"]
    assert [step for step, _ in loss["logged"]] == [2, 4, 6, 8] and loss["first"] == loss["logged"][0][1]

    records = sorted(p.name.split("-")[0] for p in (finished / "stages").glob("*-centroid-*.json"))
    assert records == ["evaluate", "random"], "the baseline's evaluator stage has its own record"


def test_results_files_carry_the_provenance(finished):
    payload = json.loads((finished / "results.json").read_text())
    provenance = payload["provenance"]
    assert payload["config"]["baseline"] == "random" and payload["config"]["seed"] == 3
    assert provenance["seeds"]["seed"] == 3 and provenance["seeds"]["evaluate.0.data.seed"] == 1
    software = provenance["software"]
    assert software["sslreg"] == "0.1.0" and software["torch"] == torch.__version__ and "cuda" in software
    assert {"sslreg-svm", "sslreg-jigsaw"} <= {p["distribution"] for p in provenance["plugins"]}
    assert provenance["components"]["pretext rotation"] == "tests 0"
    assert provenance["git"] is None or len(provenance["git"]["commit"]) == 40  # a checkout, or an installed wheel
    assert provenance["device"]["used"] in ("cpu", "cuda") and provenance["device"]["cpu_cores"] >= 1
    assert set(provenance["data"]) == {"pretrain: memory", "evaluate centroid: memory"}
    assert provenance["data"]["pretrain: memory"]["options"]["size"] == 32
    assert set(provenance["stages"]) == {"pretrain", "evaluate centroid", "random init: evaluate centroid"}
    assert all(stage["seconds"] >= 0 and stage["finished"] for stage in provenance["stages"].values())
    assert all(stage["git"] == provenance["git"] for stage in provenance["stages"].values())  # commit per stage

    lines = (finished / "results.csv").read_text().splitlines()
    comments = [line for line in lines if line.startswith("# ")]
    for field in ("sslreg:", "git commit:", "python / torch / CUDA / cuDNN:", "device:", "plugins:", "seeds:"):
        assert any(line.startswith(f"# {field}") for line in comments), field
    assert any(line.startswith("# data: pretrain: memory:") for line in comments)
    assert any(line.startswith("# wall time: random init: evaluate centroid:") for line in comments)
    config = next(line for line in comments if line.startswith("# config: "))
    assert json.loads(config.removeprefix("# config: "))["baseline"] == "random"
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    assert {row["kind"] for row in rows} == {"ours", "random init", "paper: made-up rotation"}

    table = (finished / "results.md").read_text()
    for field in ("| sslreg |", "| git commit |", "| device |", "| seeds |", "| data: pretrain: memory |"):
        assert field in table, field
    assert "| wall time: pretrain |" in table and "```yaml\nname: tiny\n" in table


def test_the_baseline_is_the_trunk_pretraining_started_from(finished):
    registry = helpers.make_registry()
    experiment = validate_experiment(tiny(finished), registry)
    baseline = random_trunk(experiment, registry, finished / "trunk.pth")
    start = build_trunk(registry, experiment.pretrain.backbone, seed=experiment.seed)
    trained = build_trunk(registry, experiment.pretrain.backbone, seed=experiment.seed, weights=finished / "trunk.pth")
    for name, value in start.state_dict().items():
        assert torch.equal(baseline.state_dict()[name], value), name
    assert not all(torch.equal(trained.state_dict()[k], v) for k, v in start.state_dict().items())
    assert baseline.input_contract == trained.input_contract


def test_finished_baseline_stages_are_reused_and_keyed_by_their_own_trunk(finished, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise AssertionError("nothing may run again")

    monkeypatch.setattr("sslreg.runner.training.build_runner", refuse)
    monkeypatch.setattr("sslreg.runner.evaluation.evaluated_trunk", refuse)
    monkeypatch.setattr("sslreg.runner.evaluation.random_trunk", refuse)
    before = (finished / "results.json").read_text()
    capsys.readouterr()
    assert run(tiny(finished)) == 0
    out = capsys.readouterr().out
    assert "already finished" in out and "difference (pretrained − random)" in out
    assert (finished / "results.json").read_text() == before, "a finished run's results stay as they are"


def test_baseline_and_reference_mistakes_are_one_line_each():
    registry = helpers.make_registry()
    raw = {"name": "x", "backbone": {"name": "tinynet"}, "baseline": "random", "evaluate": [{"name": "centroid"}]}
    raw["reference"] = [
        {"source": "s", "scores": {"centriod": {"accuracy": {"c1": 1.0}}}},
        {"source": "", "scores": {"centroid": {"accuracy": {"c1": math.inf}}}},
        {"source": "s", "when": {"evaluate..x": 1}, "scores": {"centroid": {"accuracy": {}}}},
    ]
    raw["evaluate"][0]["layers"] = "all"
    with pytest.raises(ConfigError) as caught:
        validate_experiment(raw, registry)
    problems = [str(problem) for problem in caught.value.problems]
    expected = {
        "baseline": "randomly initialised already",
        "reference[0].scores.centriod": "did you mean 'centroid'",
        "reference[1].source": "at least 1 character",
        "reference[1].scores": "not a finite number",
        "reference[2].when": "malformed path",
        "reference[2].scores": "needs at least one number",
    }
    for path, words in expected.items():
        assert any(line.startswith(f"{path}:") and words in line for line in problems), (path, problems)
    raw["baseline"] = "pretrained"
    with pytest.raises(ConfigError) as caught:
        validate_experiment(raw, registry)
    assert any(str(problem).startswith("baseline:") for problem in caught.value.problems)


def test_reference_when_picks_the_sweep_points_it_describes():
    reference = Reference(
        source="s", when={"pretrain.data.subset": 100, "evaluate[0].name": "svm"}, scores={"svm": {"m": {"a": 1}}}
    )
    config = {"pretrain": {"data": {"subset": 100}}, "evaluate": [{"name": "svm"}]}
    assert reference.applies_to(config)
    assert not reference.applies_to({**config, "pretrain": {"data": {"subset": 10}}})
    assert not reference.applies_to({"evaluate": [{"name": "svm"}]}), "a missing path never matches"
    assert Reference(source="s", scores={"svm": {"m": {"a": 1}}}).applies_to({}), "no 'when': always"


def result(evaluator: str, metric: str, scores: dict[str, float], higher: bool = True) -> EvalResult:
    layers = {layer: LayerScore(mean=value) for layer, value in scores.items()}
    return EvalResult(evaluator=evaluator, metric=metric, higher_is_better=higher, layers=layers)


def test_one_summary_table_holds_every_evaluator_metric_and_layer_with_its_direction():
    ours = [
        result("voc07_svm", "VOC07 SVM mAP", {"res3": 60.0, "res4": 70.0}),
        result("voc07_detection", "mAP", {"res4": 55.0}),
        result("nyu_normals", "median angular error", {"res4": 15.0}, higher=False),
        result("nyu_normals", "% within 11.25", {"res4": 40.0}),
    ]
    random = [
        result("voc07_svm", "VOC07 SVM mAP", {"res3": 10.0, "res4": 9.0}),
        result("voc07_detection", "mAP", {"res4": 20.0}),
        result("nyu_normals", "median angular error", {"res4": 30.0}, higher=False),
        result("nyu_normals", "% within 11.25", {"res4": 10.0}),
    ]
    report = RunReport("jigsaw yfcc", ours, baseline=random)
    headers = [column.header for column in columns([report])]
    assert headers == [
        "voc07_svm res3 ↑",
        "voc07_svm res4 ↑",
        "voc07_detection mAP ↑",
        "nyu_normals median angular error ↓",
        "nyu_normals % within 11.25 ↑",
    ]
    text = markdown([report])
    rows = markdown_rows(text, "| run | voc07_svm res3 ↑")
    assert rows[0] == ["jigsaw yfcc", "60.0", "70.0", "55.0", "15.0", "40.0"]
    assert rows[2] == ["difference (pretrained − random)", "+50.0", "+61.0", "+35.0", "-15.0", "+30.0"]
    assert "with ↓ metrics a negative difference is better" in text
    assert "**nyu_normals: median angular error** (↓)" in text, "the per-metric tables follow"


def test_report_merges_runs_into_one_table_with_their_provenance(finished, tmp_path, capsys):
    other = tmp_path / "evaluated"
    raw = {
        "name": "weights",
        "work_dir": str(other),
        "seed": 3,
        "backbone": {"name": "tinynet", "weights": str(finished / "trunk.pth")},
        "evaluate": [{"name": "centroid", "layers": ["c2"], "data": {"name": "memory", "size": 16, "seed": 1}}],
    }
    assert run(raw) == 0
    capsys.readouterr()
    out_file = tmp_path / "report.md"
    assert main(["report", str(finished), str(other), "--out", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "rotation memory" in out and "tinynet (trunk.pth)" in out and f"report: {out_file}" in out
    text = out_file.read_text()
    rows = markdown_rows(text, "| run | row | centroid c1 ↑ | centroid c2 ↑ |")
    assert [row[:2] for row in rows] == [
        ["rotation memory", "ours"],
        ["rotation memory", "random init"],
        ["rotation memory", "difference (pretrained − random)"],
        ["rotation memory", "paper: made-up rotation"],
        ["rotation memory", "difference (ours − paper)"],
        ["tinynet (trunk.pth)", "ours"],
    ]
    assert rows[5][2] == "" and rows[5][3] == rows[0][3], "the same trunk scores the same on c2"
    provenance = markdown_rows(text, "| run | folder | sslreg |")
    assert [row[0] for row in provenance] == ["rotation memory", "tinynet (trunk.pth)"]
    assert all(row[2] == "0.1.0" for row in provenance)
    assert main(["report", str(finished), "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["label"] == "rotation memory" and entry["provenance"]["software"]["sslreg"] == "0.1.0"


def test_report_shows_runs_of_the_same_name_by_folder_as_plain_text(finished, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(finished, copy)
    assert main(["report", str(finished), str(copy)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"rotation memory [{finished}]" in out and f"rotation memory [{copy}]" in out, out


def test_report_of_a_folder_without_results_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"sslreg: error: {tmp_path}: no results.json here or in its sub-folders (not a finished sslreg run)"
    (tmp_path / "results.json").write_text("{broken")
    assert main(["report", str(tmp_path)]) == 2
    assert "not a results file sslreg can read" in capsys.readouterr().err


def test_files_fingerprint_counts_sizes_and_hashes_relative_paths(tmp_path):
    for root in (tmp_path / "a", tmp_path / "b"):
        (root / "x").mkdir(parents=True)
        (root / "x" / "1.jpg").write_bytes(b"12345")
        (root / "2.jpg").write_bytes(b"12")
    first = files_fingerprint([tmp_path / "a" / "x" / "1.jpg", tmp_path / "a" / "2.jpg"], root=tmp_path / "a")
    moved = files_fingerprint([tmp_path / "b" / "x" / "1.jpg", tmp_path / "b" / "2.jpg"], root=tmp_path / "b")
    assert first == moved and first["files"] == 2 and first["bytes"] == 7
    (tmp_path / "b" / "2.jpg").write_bytes(b"123")
    changed = files_fingerprint([tmp_path / "b" / "x" / "1.jpg", tmp_path / "b" / "2.jpg"], root=tmp_path / "b")
    assert changed["sha256"] != first["sha256"], "a file that changed size changes the fingerprint"
