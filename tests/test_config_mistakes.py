"""Config-level user mistakes: each is exactly one line per problem on stderr, exit code 2, never a traceback.

Every case names its files (written in the current folder), the ``sslreg validate`` arguments after the file,
and the exact lines expected (without the ``sslreg: error: `` prefix).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sslreg.cli import main

PRETRAIN = """\
pretrain:
  pretext: {name: jigsaw, num_permutations: 100}
  backbone: {name: resnet18}
  data: {name: embedded_photos}
"""
EVAL = "evaluate: [{name: voc07_svm, layers: [res5]}]\n"
DEEP = "a: " + "[" * 5000 + "]" * 5000 + "\n"

CASES: dict[str, tuple[dict[str, str | bytes], list[str], list[str]]] = {
    # --- the file itself
    "nested 5000 deep": ({"exp.yaml": DEEP}, [], ["exp.yaml:1: nested deeper than 64 levels; refusing it"]),
    "not UTF-8": (
        {"exp.yaml": "name: caf\xe9\n".encode("latin-1")},
        [],
        ["exp.yaml:1: not UTF-8 text (byte 0xe9 at offset 9)"],
    ),
    "empty file": ({"exp.yaml": ""}, [], ["exp.yaml: empty config; expected a mapping of options"]),
    "only comments": ({"exp.yaml": "# nothing\n"}, [], ["exp.yaml: empty config; expected a mapping of options"]),
    "a list": (
        {"exp.yaml": "- a\n- b\n"},
        [],
        ["exp.yaml: expected a mapping of options at the top level (got a list)"],
    ),
    "a scalar": (
        {"exp.yaml": "hello\n"},
        [],
        ["exp.yaml: expected a mapping of options at the top level (got a string)"],
    ),
    "a number": ({"exp.yaml": "5\n"}, [], ["exp.yaml: expected a mapping of options at the top level (got a number)"]),
    "unsupported type": (
        {"exp.txt": "seed: 1\n"},
        [],
        ["exp.txt: unsupported config type '.txt' (use .yaml, .yml or .json)"],
    ),
    "no such file": ({}, [], ["exp.yaml: no such config file"]),
    "broken YAML": (
        {"exp.yaml": "pretrain: [unclosed\n"},
        [],
        ["exp.yaml:2:1: invalid YAML: did not find expected ',' or ']'"],
    ),
    "tab indentation": (
        {"exp.yaml": "a:\n\tb: 1\n"},
        [],
        ["exp.yaml:2:1: invalid YAML: found character that cannot start any token"],
    ),
    "NUL character": (
        {"exp.yaml": 'name: "a\0b"\n'},
        [],
        ["exp.yaml:1: invalid YAML: control characters are not allowed (character '\\x00')"],
    ),
    "broken JSON": ({"exp.json": '{"seed": '}, [], ["exp.json:1:10: invalid JSON: Expecting value"]),
    "duplicate key": (
        {"exp.yaml": PRETRAIN + "seed: 1\nseed: 2\n"},
        [],
        ["exp.yaml:6: duplicate key 'seed' (also on line 5); one of the two values would be silently dropped"],
    ),
    "duplicate JSON key": (
        {"exp.json": '{"seed": 1, "seed": 2}'},
        [],
        ["exp.json: duplicate key 'seed'; one of the two values would be silently dropped"],
    ),
    "key that is not a string": (
        {"exp.yaml": PRETRAIN + "1: x\n"},
        [],
        ["exp.yaml:1: key 1 is not a string; quote it"],
    ),
    "number too long": (
        {"exp.yaml": "seed: " + "1" * 5000 + "\n"},
        [],
        [
            "exp.yaml: a value cannot be read: Exceeds the limit (4300 digits) for integer string conversion:"
            " value has 5000 digits"
        ],
    ),
    # --- _base_
    "_base_ is a number": (
        {"exp.yaml": "_base_: 5\n"},
        [],
        ["exp.yaml: _base_: expected a file name or a list of file names (got 5)"],
    ),
    "_base_ list holds a number": (
        {"exp.yaml": "_base_: [5]\n"},
        [],
        ["exp.yaml: _base_: expected a file name or a list of file names (got 5)"],
    ),
    "_base_ missing": (
        {"exp.yaml": "_base_: [missing.yaml]\n" + PRETRAIN},
        [],
        ["exp.yaml: _base_: 'missing.yaml': no such config file (missing.yaml)"],
    ),
    "_base_ is a folder": (
        {"exp.yaml": "_base_: d\n", "d/x.yaml": "seed: 1\n"},
        [],
        ["exp.yaml: _base_: 'd' is a folder, not a config file"],
    ),
    "_base_ cycle": (
        {"exp.yaml": "_base_: b.yaml\n", "b.yaml": "_base_: exp.yaml\n"},
        [],
        ["b.yaml: _base_: 'exp.yaml' is a base of itself (a _base_ cycle)"],
    ),
    "_base_ with an unsafe tag": (
        {"exp.yaml": "_base_: b.yaml\n" + PRETRAIN, "b.yaml": "seed: !!python/object/apply:os.getpid []\n"},
        [],
        [
            "b.yaml:1: refusing unsafe YAML tag 'tag:yaml.org,2002:python/object/apply:os.getpid'; only plain"
            " YAML is accepted"
        ],
    ),
    "_delete_ not a bool": (
        {"exp.yaml": "_base_: b.yaml\npretrain: {data: {_delete_: 3}}\n", "b.yaml": PRETRAIN},
        [],
        ["exp.yaml: pretrain.data: _delete_ must be true or false"],
    ),
    "mapping extends a scalar": (
        {"exp.yaml": "_base_: b.yaml\npretrain: {data: {name: x}}\n", "b.yaml": "pretrain: {data: x}\n"},
        [],
        [
            "exp.yaml: pretrain.data: a mapping cannot extend the value of b.yaml (not a mapping); add"
            " `_delete_: true` to replace it"
        ],
    ),
    # --- --set
    "--set into a list index out of range": (
        {"exp.yaml": PRETRAIN + EVAL},
        ["--set", "evaluate.3.name=x"],
        ["--set 'evaluate.3.name=x': index 3 is out of range: evaluate has 1 item"],
    ),
    "--set bracket index out of range": (
        {"exp.yaml": PRETRAIN + EVAL},
        ["--set", "evaluate[1].layers=all"],
        ["--set 'evaluate[1].layers=all': index 1 is out of range: evaluate has 1 item"],
    ),
    "--set into a missing list": (
        {"exp.yaml": PRETRAIN},
        ["--set", "evaluate.0.name=x"],
        ["--set 'evaluate.0.name=x': evaluate is not in the config, so it has no item 0"],
    ),
    "--set a key into a list": (
        {"exp.yaml": PRETRAIN + EVAL},
        ["--set", "evaluate.x=1"],
        ["--set 'evaluate.x=1': evaluate is a list: use an index 0..0, not 'x'"],
    ),
    "--set into a string": (
        {"exp.yaml": PRETRAIN},
        ["--set", "pretrain.data.name.x=1"],
        ["--set 'pretrain.data.name.x=1': pretrain.data.name is a string, not a mapping or a list"],
    ),
    "--set empty segment": (
        {"exp.yaml": PRETRAIN},
        ["--set", "a..b=1"],
        [
            "--set 'a..b=1': malformed path 'a..b': use dotted names and list indices, e.g. evaluate.0.layers or"
            " evaluate[0].layers"
        ],
    ),
    "--set bad bracket": (
        {"exp.yaml": PRETRAIN},
        ["--set", "evaluate[x]=1"],
        [
            "--set 'evaluate[x]=1': malformed path 'evaluate[x]': use dotted names and list indices, e.g."
            " evaluate.0.layers or evaluate[0].layers"
        ],
    ),
    "--set without a path": (
        {"exp.yaml": PRETRAIN},
        ["--set", "=1"],
        ["--set '=1': expected PATH=VALUE, e.g. pretrain.schedule.epochs=2"],
    ),
    "--set without a value": (
        {"exp.yaml": PRETRAIN},
        ["--set", "seed"],
        ["--set 'seed': expected PATH=VALUE, e.g. pretrain.schedule.epochs=2"],
    ),
    "--set _base_": (
        {"exp.yaml": PRETRAIN},
        ["--set", "_base_=x.yaml"],
        ["--set '_base_=x.yaml': _base_ cannot be set from the command line; write a config that names its bases"],
    ),
    "--set value nested too deep": (
        {"exp.yaml": PRETRAIN},
        ["--set", "name=" + "[" * 100 + "]" * 100],
        [f"--set {('name=' + '[' * 52)!r}...:1: nested deeper than 64 levels; refusing it"],
    ),
    "--set unknown option": ({"exp.yaml": PRETRAIN}, ["--set", "pretrain.x=1"], ["--set: pretrain.x: unknown option"]),
    # --- values
    "seed 2**70": (
        {"exp.yaml": PRETRAIN + "seed: 1180591620717411303424\n"},
        [],
        ["exp.yaml: seed: Input should be less than or equal to 4294967295 (got 1180591620717411303424)"],
    ),
    "negative seed": (
        {"exp.yaml": PRETRAIN + "seed: -1\n"},
        [],
        ["exp.yaml: seed: Input should be greater than or equal to 0 (got -1)"],
    ),
    "trunk seed 2**70": (
        {"exp.yaml": "backbone: {name: resnet18, seed: 1180591620717411303424}\n" + EVAL},
        [],
        ["exp.yaml: backbone.seed: Input should be less than or equal to 4294967295 (got 1180591620717411303424)"],
    ),
    "empty name": (
        {"exp.yaml": PRETRAIN + "name: ''\n"},
        [],
        ["exp.yaml: name: String should have at least 1 character (got '')"],
    ),
    "pretrain is a number": (
        {"exp.yaml": "pretrain: 5\n"},
        [],
        ["exp.yaml: pretrain: Input should be a valid dictionary or instance of PretrainConfig (got 5)"],
    ),
    "evaluate is a number": (
        {"exp.yaml": PRETRAIN + "evaluate: 5\n"},
        [],
        ["exp.yaml: evaluate: Input should be a valid list (got 5)"],
    ),
    "component is a string": (
        {"exp.yaml": PRETRAIN.replace("{name: embedded_photos}", "embedded_photos")},
        [],
        ["exp.yaml: pretrain.data: expected a mapping with at least 'name' (got 'embedded_photos')"],
    ),
    "nothing to do": (
        {"exp.yaml": "seed: 1\n"},
        [],
        ["exp.yaml: pretrain: nothing to do: give a pretrain section, an evaluate list, or both"],
    ),
    "typo of a top-level option": (
        {"exp.yaml": PRETRAIN + "sed: 1\n"},
        [],
        ["exp.yaml: sed: unknown option; did you mean 'seed'?"],
    ),
    "missing weights file": (
        {"exp.yaml": "backbone: {name: resnet18, weights: missing.pth}\n" + EVAL},
        [],
        ["exp.yaml: backbone: weights 'missing.pth': no such file"],
    ),
    # --- sweeps
    "sweep index out of range": (
        {"exp.yaml": PRETRAIN + EVAL + "sweep: {evaluate.2.layers: [[res1]]}\n"},
        [],
        ["exp.yaml: sweep.evaluate.2.layers: index 2 is out of range: evaluate has 1 item"],
    ),
    "sweep into a string": (
        {"exp.yaml": PRETRAIN + "sweep: {pretrain.data.name.x: [1]}\n"},
        [],
        ["exp.yaml: sweep.pretrain.data.name.x: pretrain.data.name is a string, not a mapping or a list"],
    ),
    "sweep with no values": (
        {"exp.yaml": PRETRAIN + "sweep: {pretrain.data.subset: []}\n"},
        [],
        ["exp.yaml: sweep.pretrain.data.subset: expected a non-empty list of values (got [])"],
    ),
    "sweep value twice": (
        {"exp.yaml": PRETRAIN + "sweep: {pretrain.data.subset: [1, 2, 1]}\n"},
        [],
        ["exp.yaml: sweep.pretrain.data.subset: 1 is listed twice (two runs of the same point)"],
    ),
    "sweep too big": (
        {"exp.yaml": PRETRAIN + f"sweep: {{seed: {list(range(40))}, pretrain.data.subset: {list(range(1, 41))}}}\n"},
        [],
        ["exp.yaml: sweep: 1,600 points; at most 1,000 runs per sweep"],
    ),
    "sweep not a mapping": (
        {"exp.yaml": PRETRAIN + "sweep: 5\n"},
        [],
        ["exp.yaml: sweep: expected a mapping of dotted path -> list of values (got a number)"],
    ),
    "sweep of the sweep": (
        {"exp.yaml": PRETRAIN + "sweep: {sweep.x: [1]}\n"},
        [],
        ["exp.yaml: sweep.sweep.x: a sweep cannot sweep itself"],
    ),
    "sweep path malformed": (
        {"exp.yaml": PRETRAIN + "sweep: {'pretrain..x': [1]}\n"},
        [],
        [
            "exp.yaml: sweep.pretrain..x: malformed path 'pretrain..x': use dotted names and list indices, e.g."
            " evaluate.0.layers or evaluate[0].layers"
        ],
    ),
    # --- placeholders
    "variable without default unset": (
        {"exp.yaml": PRETRAIN + 'work_dir: "{{$SSLREG_TEST_UNSET}}/runs"\n'},
        [],
        [
            "exp.yaml: work_dir: $SSLREG_TEST_UNSET is not set and {{$SSLREG_TEST_UNSET}} has no default: set"
            " it, or --set work_dir=..."
        ],
    ),
    "variable unset in a number field": (  # the consequence (seed is not a number) is not reported on top
        {"exp.yaml": PRETRAIN + 'seed: "{{$SSLREG_TEST_UNSET}}"\n'},
        [],
        [
            "exp.yaml: seed: $SSLREG_TEST_UNSET is not set and {{$SSLREG_TEST_UNSET}} has no default:"
            " set it, or --set seed=..."
        ],
    ),
    "unknown placeholder": (
        {"exp.yaml": PRETRAIN + 'work_dir: "{{ fileDirnme }}"\n'},
        [],
        [
            "exp.yaml: work_dir: unknown placeholder '{{ fileDirnme }}': use {{$VAR}}, {{$VAR:default}} or one of"
            " {{ fileDirname }}, {{ fileBasename }}, {{ fileBasenameNoExtension }}, {{ fileExtname }}"
        ],
    ),
}


def stderr_lines(err: str) -> list[str]:
    """stderr without plugin-load warnings (other plugins may be installed on this machine)."""
    return [line for line in err.splitlines() if not line.startswith("sslreg: warning: plugin ")]


@pytest.mark.parametrize("case", list(CASES))
def test_one_line_per_mistake_and_exit_2(case, tmp_path, monkeypatch, capsys):
    files, extra, expected = CASES[case]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SSLREG_TEST_UNSET", raising=False)
    for name, content in files.items():
        path = Path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    target = next(iter(files), "exp.yaml")
    assert main(["validate", target, *extra]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert stderr_lines(captured.err) == [f"sslreg: error: {line}" for line in expected]


@pytest.mark.parametrize("name", ["configs", "exp.yaml"])
def test_a_folder_given_as_the_config(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path(name).mkdir()
    assert main(["validate", name]) == 2
    assert stderr_lines(capsys.readouterr().err) == [f"sslreg: error: {name}: is a folder, not a config file"]


def test_problems_of_several_kinds_come_together(tmp_path, monkeypatch, capsys):
    """Top-level schema, unknown names, options, and a dataset nested in an evaluator: one pass, one line each."""
    monkeypatch.chdir(tmp_path)
    Path("exp.yaml").write_text(
        PRETRAIN.replace("resnet18", "resnet81")
        + "  schedule: {epochs: 0}\n"
        + "seed: -1\nbacth: 3\n"
        + "evaluate:\n"
        + "  - {name: voc07_svm, layers: [res9], train: {name: voc07, rot: x}, test: 5, bogus: 1}\n"
        + "  - {name: voc07_svm, train: {name: embedded_shapez}}\n"
    )
    assert main(["validate", "exp.yaml"]) == 2
    assert sorted(stderr_lines(capsys.readouterr().err)) == sorted(
        f"sslreg: error: exp.yaml: {line}"
        for line in [
            "pretrain.backbone.name: unknown backbone 'resnet81'; did you mean 'resnet18' or 'resnet101' or"
            " 'resnet50'?",
            "pretrain.schedule.epochs: Input should be greater than or equal to 1 (got 0)",
            "seed: Input should be greater than or equal to 0 (got -1)",
            "bacth: unknown option",
            "evaluate[0].test: Input should be a valid dictionary or instance of DataSpec (got 5)",
            "evaluate[0].bogus: unknown option",
            "evaluate[0].train.root: required option is missing",
            "evaluate[0].train.rot: unknown option; did you mean 'root'?",
            "evaluate[1].train.name: unknown dataset 'embedded_shapez'; did you mean 'embedded_shapes' or"
            " 'embedded_photos' or 'embedded_detection'?",
        ]
    )
