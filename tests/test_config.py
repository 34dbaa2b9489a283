"""Experiment configs: safe YAML, _base_ inheritance, --set overrides, and one clear line per problem."""

import json
import textwrap

import pytest

from sslreg.cli import main

PRETRAIN = """
pretrain:
  pretext: {name: jigsaw, num_permutations: 100}
  backbone: {name: resnet18}
  data: {name: embedded_photos}
"""


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def run(*argv):
    return main([str(a) for a in argv])


def errors(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(line.startswith("sslreg: error:") for line in err), err  # no traceback
    return "\n".join(err)


def test_valid_config_passes(tmp_path, capsys):
    config = write(tmp_path / "ok.yaml", PRETRAIN)
    assert run("validate", config) == 0
    assert "OK (1 run)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "pretext, expected",
    [
        ("{name: jigsw}", "pretrain.pretext.name: unknown pretext 'jigsw'; did you mean 'jigsaw'?"),
        (
            "{name: jigsaw, num_permutations: many}",
            "pretrain.pretext.num_permutations: Input should be a valid integer",
        ),
        (
            "{name: jigsaw, num_permutations: 400000}",
            "pretrain.pretext.num_permutations: Input should be less than or equal to 10000",
        ),
        (
            "{name: jigsaw, num_permutation: 100}",
            "pretrain.pretext.num_permutation: unknown option; did you mean 'num_permutations'?",
        ),
    ],
)
def test_mistakes_fail_before_work_with_the_path(tmp_path, capsys, pretext, expected):
    config = write(tmp_path / "bad.yaml", PRETRAIN.replace("{name: jigsaw, num_permutations: 100}", pretext))
    assert run("validate", config) == 2
    assert expected in errors(capsys)


def test_every_problem_is_reported_at_once(tmp_path, capsys):
    text = (
        PRETRAIN.replace("resnet18}", "resnet81}")
        + "  schedule: {epochs: 0, bacth_size: 4}\nevaluate: [{name: voc07_sv}]\n"
    )
    assert run("validate", write(tmp_path / "bad.yaml", text)) == 2
    err = errors(capsys)
    assert "pretrain.backbone.name: unknown backbone 'resnet81'; did you mean 'resnet18'" in err
    assert "pretrain.schedule.epochs: Input should be greater than or equal to 1" in err
    assert "pretrain.schedule.bacth_size: unknown option; did you mean 'batch_size'?" in err
    assert "evaluate[0].name: unknown evaluator 'voc07_sv'; did you mean 'voc07_svm'?" in err


def test_unknown_layer_of_the_trunk(tmp_path, capsys):
    text = PRETRAIN + "evaluate: [{name: voc07_svm, layers: [res3, res9]}]\n"
    assert run("validate", write(tmp_path / "bad.yaml", text)) == 2
    assert "evaluate[0].layers: unknown layer 'res9'" in errors(capsys)


def test_unsafe_yaml_tag_is_refused_and_never_executed(tmp_path, capsys):
    marker = tmp_path / "pwned"
    config = write(tmp_path / "evil.yaml", f"name: !!python/object/apply:os.system ['touch {marker}']\n" + PRETRAIN)
    assert run("validate", config) == 2
    assert "refusing unsafe YAML" in errors(capsys)
    assert not marker.exists()


def test_unsafe_tag_in_a_base_file_is_refused(tmp_path, capsys):
    marker = tmp_path / "pwned"
    write(tmp_path / "base.yaml", f"seed: !!python/object/apply:os.system ['touch {marker}']\n")
    config = write(tmp_path / "child.yaml", "_base_: base.yaml\n" + PRETRAIN)
    assert run("validate", config) == 2
    assert "base.yaml:1: refusing unsafe YAML" in errors(capsys)
    assert not marker.exists()


def test_base_inheritance_and_set_overrides(tmp_path, capsys):
    write(tmp_path / "base.yaml", PRETRAIN + "seed: 7\n")
    child = write(tmp_path / "child.yaml", "_base_: base.yaml\npretrain:\n  pretext: {num_permutations: 200}\n")
    code = run("validate", child, "--json", "--set", "pretrain.schedule.epochs=3", "--set", "name=demo")
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    [point] = report["points"]
    config = point["config"]
    assert config["seed"] == 7 and config["name"] == "demo"
    assert config["pretrain"]["pretext"]["num_permutations"] == 200
    assert config["pretrain"]["pretext"]["tile"] == 64  # defaults are filled in
    assert config["pretrain"]["schedule"]["epochs"] == 3


def test_python_configs_need_opt_in(tmp_path, capsys):
    config = write(
        tmp_path / "exp.py",
        "pretrain = dict(pretext=dict(name='jigsaw'), backbone=dict(name='resnet18'),"
        " data=dict(name='embedded_photos'))\n",
    )
    assert run("validate", config) == 2
    assert "--allow-python-config" in errors(capsys)
    assert run("validate", config, "--allow-python-config") == 0


def test_missing_file_and_bad_yaml(tmp_path, capsys):
    assert run("validate", tmp_path / "nope.yaml") == 2
    assert "no such config file" in errors(capsys)
    assert run("validate", write(tmp_path / "broken.yaml", "pretrain: [unclosed\n")) == 2
    assert "broken.yaml:2:1: invalid YAML" in errors(capsys)


def test_sweep_points_are_each_validated(tmp_path, capsys):
    text = PRETRAIN + "sweep:\n  pretrain.pretext.num_permutations: [10, 20000]\n  pretrain.data.subset: [50, 100]\n"
    assert run("validate", write(tmp_path / "sweep.yaml", text)) == 2
    # one line for the two points that share the problem (it used to be one line per point)
    assert errors(capsys).splitlines() == [
        f"sslreg: error: {tmp_path / 'sweep.yaml'}: pretrain.pretext.num_permutations: Input should be less than"
        " or equal to 10000 (got 20000) (at sweep points with pretrain.pretext.num_permutations=20000)"
    ]
    ok = write(tmp_path / "ok.yaml", text.replace("20000", "20"))
    assert run("validate", ok) == 0
    assert "OK (4 sweep points)" in capsys.readouterr().out
