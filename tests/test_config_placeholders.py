"""``{{$VAR}}``, ``{{$VAR:default}}`` and ``{{ fileDirname }}``-style placeholders, substituted in parsed values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sslreg.cli import main
from sslreg.config import load_config, load_plan
from sslreg.placeholders import Placeholder, substitute
from sslreg.plugins import get_registry

PRETRAIN = """\
pretrain:
  pretext: {name: jigsaw, num_permutations: 100}
  backbone: {name: resnet18}
  data: {name: embedded_photos}
"""


def stderr_lines(err: str) -> list[str]:
    """stderr without plugin-load warnings (other plugins may be installed on this machine)."""
    return [line for line in err.splitlines() if not line.startswith("sslreg: warning: plugin ")]


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("SSLREG_T_A", "SSLREG_T_B", "SSLREG_T_N"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def sub(text: str, env: dict[str, str], file: str = "/cfg/dir/exp.yaml"):
    return substitute(Placeholder(text, Path(file), file), env)


def test_environment_variables_and_defaults():
    assert sub("{{$A}}/x", {"A": "/data"}).value == "/data/x"
    result = sub("{{$A:/path/to/a}}/x", {})
    assert result.value == "/path/to/a/x" and result.defaulted == ["A"]
    assert sub("{{$A:/d}}", {"A": ""}).defaulted == ["A"]  # an empty variable counts as unset
    assert sub("{{ $A : /d }}", {"A": "/set"}).value == "/set"
    assert sub("{{'$A:80'}}", {}).value == 80  # mmengine's quoted form
    missing = sub("{{$A}}", {})
    assert missing.missing == ["A"] and missing.value == "{{$A}}"
    assert sub("{{$A:}}", {}).missing == ["A"]  # as in mmengine, an empty default is no default


def test_a_value_that_is_one_variable_becomes_a_number_bool_or_null():
    assert sub("{{$A}}", {"A": "12"}).value == 12
    assert sub("{{$A}}", {"A": "0.5"}).value == 0.5
    assert sub("{{$A}}", {"A": "true"}).value is True
    assert sub("{{$A:null}}", {}).value is None
    assert sub("{{$A}}", {"A": "[1, 2]"}).value == "[1, 2]"  # never a list or mapping
    assert sub("{{$A}}", {"A": "!!int 3"}).value == "!!int 3"  # never a tag
    assert sub("n{{$A}}", {"A": "12"}).value == "n12"  # part of a text stays text
    assert sub("{{$A}}", {"A": "1" * 5000}).value == "1" * 5000  # too long for an int: stays text


def test_file_placeholders_name_the_file_the_value_is_written_in():
    env: dict[str, str] = {}
    assert sub("{{ fileDirname }}", env).value == "/cfg/dir"
    assert sub("{{fileBasename}}", env).value == "exp.yaml"
    assert sub("{{ fileBasenameNoExtension }}", env).value == "exp"
    assert sub("{{ fileExtname }}", env).value == ".yaml"
    assert sub("{{ fileBasenameNoExtension }}", env, "/c/2024.yaml").value == "2024"  # file names stay text
    assert sub("{{ fileDirnme }}", env).unknown == ["{{ fileDirnme }}"]


def test_placeholders_in_a_base_file_use_that_file(here):
    (here / "base").mkdir()
    (here / "base" / "b.yaml").write_text(PRETRAIN + 'work_dir: "{{ fileDirname }}/runs"\n')
    (here / "exp.yaml").write_text('_base_: "{{ fileDirname }}/base/b.yaml"\nname: "{{ fileBasenameNoExtension }}"\n')
    raw = load_config("exp.yaml").raw
    assert raw["work_dir"] == f"{here / 'base'}/runs" and raw["name"] == "exp"


def test_defaults_in_use_are_remembered_by_path_after_merging_and_overrides(here, monkeypatch):
    (here / "b.yaml").write_text(
        "pretrain:\n  data: {name: embedded_photos, crop_size: '{{$SSLREG_T_N:96}}'}\n"
        "  pretext: {name: jigsaw}\n  backbone: {name: resnet18}\n"
        "work_dir: '{{$SSLREG_T_A:runs/a}}'\nname: '{{$SSLREG_T_B:b}}'\n"
    )
    (here / "exp.yaml").write_text("_base_: b.yaml\n")
    plan = load_plan("exp.yaml", get_registry(), ["name=given"])
    assert plan.unresolved == {"pretrain.data.crop_size": "SSLREG_T_N", "work_dir": "SSLREG_T_A"}
    assert plan.hint("pretrain.data") == " (set $SSLREG_T_N, or --set pretrain.data.crop_size=...)"
    experiment = plan.points[0][2]
    assert experiment.pretrain.data.crop_size == 96 and experiment.name == "given"
    monkeypatch.setenv("SSLREG_T_A", "runs/set")
    plan = load_plan("exp.yaml", get_registry())
    assert plan.points[0][2].work_dir == "runs/set" and "work_dir" not in plan.unresolved


def test_validate_says_which_defaults_are_in_use(here, capsys):
    (here / "exp.yaml").write_text(PRETRAIN + "work_dir: '{{$SSLREG_T_A:runs/a}}'\n")
    assert main(["validate", "exp.yaml"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "exp.yaml: OK (1 run)",
        "  work_dir: $SSLREG_T_A is not set; using the config's default",
    ]
    assert main(["validate", "exp.yaml", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unresolved"] == {"work_dir": "SSLREG_T_A"}


def test_an_override_replaces_a_placeholder_that_cannot_resolve(here, capsys):
    (here / "exp.yaml").write_text(PRETRAIN + "work_dir: '{{$SSLREG_T_A}}'\n")
    assert main(["validate", "exp.yaml"]) == 2
    assert stderr_lines(capsys.readouterr().err) == [
        "sslreg: error: exp.yaml: work_dir: $SSLREG_T_A is not set and {{$SSLREG_T_A}} has no default: set it,"
        " or --set work_dir=..."
    ]
    assert main(["validate", "exp.yaml", "--set", "work_dir=runs/x"]) == 0


def test_placeholders_in_sweep_values(here):
    (here / "exp.yaml").write_text(PRETRAIN + "sweep: {pretrain.data.crop_size: ['{{$SSLREG_T_N:64}}', 96]}\n")
    plan = load_plan("exp.yaml", get_registry())
    assert [point for _, point, _ in plan.points] == [{"pretrain.data.crop_size": 64}, {"pretrain.data.crop_size": 96}]
    assert [experiment.pretrain.data.crop_size for _, _, experiment in plan.points] == [64, 96]
    assert plan.unresolved == {"pretrain.data.crop_size": "SSLREG_T_N"}
