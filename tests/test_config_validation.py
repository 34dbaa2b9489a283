"""Validation in one pass that reaches the data, a typed experiment, --json, and sweep-point folder names.

The components live in a private Registry: a dataset whose ``check`` looks for its root folder, and an
evaluator that names datasets at several depths (a field, a list, a sub-model).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

import sslreg.plugins
from sslreg import DatasetConfig, DatasetSource, DataSpec, Evaluator, EvaluatorConfig, PretextConfig, PretextTask
from sslreg.cli import main
from sslreg.config import load_plan
from sslreg.experiment import MAX_LABEL, point_label
from sslreg.registry import Registry
from sslreg.testing import TinyBackbone


class RootedConfig(DatasetConfig):
    root: str = Field(description="Folder of the images (required: there is no sensible default).")


class Rooted(DatasetSource):
    """Images under a root folder (the test only checks that the folder is there)."""

    name = "rooted"
    Config = RootedConfig

    def __len__(self) -> int:
        return 0

    @classmethod
    def check(cls, config: RootedConfig) -> list[str]:
        return [] if Path(config.root).is_dir() else [f"root {config.root!r} does not exist"]


class Fragile(Rooted):
    """A dataset whose check has a bug."""

    name = "fragile"

    @classmethod
    def check(cls, config: RootedConfig) -> list[str]:
        raise KeyError("oops")


class Inner(BaseModel):
    data: DataSpec = Field(description="A dataset one model down.")


class ProbeConfig(EvaluatorConfig):
    train: DataSpec = Field(description="Training data (required).")
    extra: list[DataSpec] = Field(default_factory=list, description="More datasets.")
    nested: Inner | None = Field(None, description="A sub-model naming a dataset.")
    steps: int = Field(1, ge=1, description="Steps.")


class Probe(Evaluator):
    """An evaluator that names datasets at several depths."""

    name = "probe"
    Config = ProbeConfig

    def evaluate(self, backbone, context):
        return []


class NullPretext(PretextTask):
    """A pretext task that is only validated, never run."""

    name = "nothing"
    Config = PretextConfig

    def make_sample(self, image, rng):
        raise NotImplementedError

    def build_model(self, trunk):
        raise NotImplementedError

    def loss(self, model, inputs, targets):
        raise NotImplementedError


@pytest.fixture
def registry(monkeypatch, tmp_path):
    """The private registry, also what ``sslreg validate`` sees; the current folder is tmp_path."""
    registry = Registry()
    for cls in (Rooted, Fragile, Probe, NullPretext, TinyBackbone):
        registry.add(cls, "test")
    monkeypatch.setattr(sslreg.plugins, "get_registry", lambda: registry)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SSLREG_T_ROOT", raising=False)
    (tmp_path / "images").mkdir()
    return registry


PRETRAIN = """\
pretrain:
  pretext: {name: nothing}
  backbone: {name: tiny}
  data: {name: rooted, root: "{{$SSLREG_T_ROOT:/nonexistent/yfcc}}"}
"""
PROBE = """\
evaluate:
  - name: probe
    layers: [l2]
    train: {name: rooted, root: missing/train}
    extra: [{name: rooted, root: images}, {name: rooted, root: missing/extra}]
    nested: {data: {name: rooted, root: missing/nested}}
"""


def stderr_lines(err: str) -> list[str]:
    """stderr without plugin-load warnings (other plugins may be installed on this machine)."""
    return [line for line in err.splitlines() if not line.startswith("sslreg: warning: plugin ")]


def validate(*argv: str, capsys) -> tuple[int, list[str], str]:
    code = main(["validate", *argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return code, stderr_lines(captured.err), captured.out


def test_every_dataset_is_checked_with_hints_for_defaults_in_use(registry, capsys):
    Path("exp.yaml").write_text(PRETRAIN + PROBE + "sweep: {pretrain.data.subset: [1, 2]}\n")
    code, err, _ = validate("exp.yaml", capsys=capsys)
    assert code == 2
    assert err == [  # the same problem at both sweep points is reported once
        "sslreg: error: exp.yaml: pretrain.data: root '/nonexistent/yfcc' does not exist"
        " (set $SSLREG_T_ROOT, or --set pretrain.data.root=...)",
        "sslreg: error: exp.yaml: evaluate[0].train: root 'missing/train' does not exist",
        "sslreg: error: exp.yaml: evaluate[0].extra[1]: root 'missing/extra' does not exist",
        "sslreg: error: exp.yaml: evaluate[0].nested.data: root 'missing/nested' does not exist",
    ]
    for folder in ("missing/train", "missing/extra", "missing/nested"):
        Path(folder).mkdir(parents=True)
    code, err, _ = validate("exp.yaml", "--set", "pretrain.data.root=images", capsys=capsys)
    assert (code, err) == (0, [])


def test_a_root_whose_variable_is_unset_is_one_problem(registry, capsys):
    Path("exp.yaml").write_text(PRETRAIN.replace(":/nonexistent/yfcc", "") + "name: x\n")
    code, err, _ = validate("exp.yaml", capsys=capsys)
    assert code == 2
    assert err == [
        "sslreg: error: exp.yaml: pretrain.data.root: $SSLREG_T_ROOT is not set and {{$SSLREG_T_ROOT}} has no default:"
        " set it, or --set pretrain.data.root=..."
    ]


def test_data_checks_can_be_skipped_for_the_schema_only(registry):
    Path("exp.yaml").write_text(PRETRAIN + PROBE)
    with pytest.raises(ValueError):
        load_plan("exp.yaml", registry)
    plan = load_plan("exp.yaml", registry, check_data=False)
    assert len(plan.points) == 1
    assert plan.unresolved == {"pretrain.data.root": "SSLREG_T_ROOT"}


def test_data_problems_come_with_schema_problems_and_per_sweep_point(registry, capsys):
    Path("exp.yaml").write_text(
        PRETRAIN.replace("{{$SSLREG_T_ROOT:/nonexistent/yfcc}}", "images")
        + PROBE.replace("layers: [l2]", "layers: [l9]\n    steps: 0")
        + "  - {name: probe, train: {name: fragile, root: images}}\n"
        + "sweep: {pretrain.data.root: [images, gone]}\n"
    )
    code, err, _ = validate("exp.yaml", capsys=capsys)
    assert code == 2
    assert err == [  # evaluate[0] did not validate; the datasets it names are checked all the same
        "sslreg: error: exp.yaml: evaluate[0].steps: Input should be greater than or equal to 1 (got 0)",
        "sslreg: error: exp.yaml: evaluate[0].layers: unknown layer 'l9'; tiny has ['l1', 'l2']",
        "sslreg: error: exp.yaml: evaluate[0].train: root 'missing/train' does not exist",
        "sslreg: error: exp.yaml: evaluate[0].extra[1]: root 'missing/extra' does not exist",
        "sslreg: error: exp.yaml: evaluate[0].nested.data: root 'missing/nested' does not exist",
        "sslreg: error: exp.yaml: evaluate[1].train: check() of dataset 'fragile' failed: KeyError: 'oops'",
        "sslreg: error: exp.yaml: pretrain.data: root 'gone' does not exist"
        " (at sweep points with pretrain.data.root='gone')",
    ]


def test_required_options_are_reported_with_their_path(registry, capsys):
    Path("exp.yaml").write_text(
        PRETRAIN + "evaluate:\n  - {name: probe}\n  - {name: probe, train: {name: rooted, rot: images}}\n"
    )
    code, err, _ = validate("exp.yaml", capsys=capsys)
    assert code == 2
    assert err[:3] == [
        "sslreg: error: exp.yaml: evaluate[0].train: required option is missing",
        "sslreg: error: exp.yaml: evaluate[1].train.root: required option is missing",
        "sslreg: error: exp.yaml: evaluate[1].train.rot: unknown option; did you mean 'root'?",
    ]


def test_the_experiment_holds_each_component_s_own_validated_config(registry):
    Path("images/t").mkdir()
    Path("exp.yaml").write_text(
        PRETRAIN.replace("{{$SSLREG_T_ROOT:/nonexistent/yfcc}}", "images")
        + PROBE.replace("missing/train", "images/t").replace("missing/extra", "images").replace("missing/", "")
    )
    Path("nested").mkdir()
    [(label, point, experiment)] = load_plan("exp.yaml", registry).points
    assert (label, point) == ("", {})
    assert isinstance(experiment.pretrain.data, RootedConfig) and experiment.pretrain.data.subset_seed == 0
    assert experiment.trunk_spec is experiment.pretrain.backbone and experiment.trunk_spec.name == "tiny"
    [probe] = experiment.evaluate
    assert isinstance(probe, ProbeConfig) and probe.steps == 1
    assert isinstance(probe.train, RootedConfig) and probe.train.root == "images/t"
    assert [type(spec) for spec in probe.extra] == [RootedConfig, RootedConfig]
    assert isinstance(probe.nested.data, RootedConfig)
    dumped = experiment.model_dump(mode="json")
    assert dumped["evaluate"][0]["train"] == {
        "name": "rooted",
        "subset": None,
        "subset_seed": 0,
        "max_bad_fraction": 0.05,
        "root": "images/t",
    }
    assert dumped["evaluate"][0]["nested"]["data"]["root"] == "nested"
    assert dumped["pretrain"]["data"]["root"] == "images"


def test_json_output_for_both_outcomes(registry, capsys):
    Path("base.yaml").write_text(PRETRAIN.replace("{name: tiny}", "{name: tiny, bogus: 1}"))
    Path("exp.yaml").write_text("_base_: base.yaml\nseed: -1\n")
    code, err, out = validate("exp.yaml", "--json", capsys=capsys)
    assert code == 2 and err == []
    assert json.loads(out) == {
        "ok": False,
        "problems": [
            {"path": "pretrain.backbone.bogus", "message": "unknown option", "source": "base.yaml", "line": None},
            {
                "path": "seed",
                "message": "Input should be greater than or equal to 0 (got -1)",
                "source": "exp.yaml",
                "line": None,
            },
            {
                "path": "pretrain.data",
                "message": (
                    "root '/nonexistent/yfcc' does not exist (set $SSLREG_T_ROOT, or --set pretrain.data.root=...)"
                ),
                "source": "base.yaml",
                "line": None,
            },
        ],
    }
    code, _, out = validate("exp.yaml", "--json", "--set", "seed=1", capsys=capsys)
    assert code == 2 and len(json.loads(out)["problems"]) == 2
    Path("broken.yaml").write_text("seed: [1\n")
    code, _, out = validate("broken.yaml", "--json", capsys=capsys)
    assert code == 2
    assert json.loads(out)["problems"] == [
        {
            "path": "",
            "message": "invalid YAML: did not find expected ',' or ']'",
            "source": "broken.yaml:2:1",
            "line": None,
        }
    ]
    Path("ok.yaml").write_text(PRETRAIN.replace("{{$SSLREG_T_ROOT:/nonexistent/yfcc}}", "images"))
    code, _, out = validate("ok.yaml", "--json", "--set", "sweep.seed=[1, 2]", capsys=capsys)
    report = json.loads(out)
    assert code == 0 and report["ok"] is True
    assert [point["point"] for point in report["points"]] == [{"seed": 1}, {"seed": 2}]
    assert report["points"][1]["config"]["seed"] == 2 and report["points"][1]["label"] == point_label({"seed": 2})


def test_point_labels_are_unique_readable_and_safe():
    slash, dash = point_label({"pretrain.data.root": "/a/b"}), point_label({"pretrain.data.root": "-a-b"})
    assert slash != dash and slash.startswith("root=-a-b-") and dash.startswith("root=-a-b-")
    assert point_label({"pretrain.backbone.name": "resnet50", "pretrain.data.subset": 1000}).startswith(
        "backbone=resnet50_subset=1000-"
    )
    long_a = point_label({"x": "v" * 200 + "a"})
    long_b = point_label({"x": "v" * 200 + "b"})
    assert long_a != long_b and len(long_a) == len(long_b) == MAX_LABEL
    huge = point_label({"pretrain.data.root": "/" + "é/" * 2500})
    assert len(huge) <= MAX_LABEL
    for label in (slash, dash, long_a, huge, point_label({"work_dir": "../.."}), point_label({"a": ".hidden"})):
        assert "/" not in label and not label.startswith((".", "-")) and label.isascii(), label
    assert point_label({"seed": 1}) != point_label({"seed": "1"}) != point_label({"seed": 1.0})
    assert point_label({"seed": 1}) == "seed=1-" + point_label({"seed": 1}).rsplit("-", 1)[1]
    assert point_label({"pretrain.data.subset": 1000}) == "subset=1000-6666e4c6"  # stable across runs
