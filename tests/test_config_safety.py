"""Config loading never runs code and stays within its limits: canaries, unsafe tags, code-loading keys, bombs.

Each canary test would create the file CANARY with mmengine's loader (placeholders substituted into the text,
then PyYAML's unsafe loader; ``custom_imports`` imported): the loader must refuse or ignore it, and the file
must never appear.
"""

from __future__ import annotations

import os
import textwrap
import tracemalloc
from pathlib import Path

import pytest

from sslreg.cli import main
from sslreg.config import load_config

PRETRAIN = """\
pretrain:
  pretext: {name: jigsaw, num_permutations: 100}
  backbone: {name: resnet18}
  data: {name: embedded_photos}
"""
PAYLOAD = '!!python/object/apply:os.system ["touch CANARY"]'


def run(*argv: object) -> int:
    return main([str(a) for a in argv])


def stderr_lines(err: str) -> list[str]:
    """stderr without plugin-load warnings (other plugins may be installed on this machine)."""
    return [line for line in err.splitlines() if not line.startswith("sslreg: warning: plugin ")]


def error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    captured = capsys.readouterr()
    lines = stderr_lines(captured.err)
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    assert lines and all(line.startswith("sslreg: error: ") for line in lines), lines
    return lines


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current folder is tmp_path (where ``touch CANARY`` would write), and it is importable."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_canary_through_an_environment_variable(here, monkeypatch, capsys):
    # mmengine would turn this into `seed: "x"` + a new key holding the tag, and run it.
    monkeypatch.setenv("EVIL", f'x"\nevil: {PAYLOAD}\nz: "')
    config = here / "exp.yaml"
    config.write_text(PRETRAIN + 'seed: "{{$EVIL:0}}"\n')
    assert run("validate", config) == 2
    [line] = error_lines(capsys)
    assert line.startswith("sslreg: error: ") and ": seed: Input should be a valid integer" in line
    assert not (here / "CANARY").exists()


def test_canary_through_a_folder_name(here, capsys):
    # The folder's name closes the quoted string and adds a key with the tag (names may hold '"' and newlines).
    folder = here / f'x"\nevil: {PAYLOAD}\nz: "a'
    folder.mkdir(parents=True)
    config = folder / "exp.yaml"
    config.write_text(PRETRAIN + 'seed: "{{ fileDirname }}"\n')
    assert run("validate", config) == 2
    [line] = error_lines(capsys)  # the newlines of the folder name are escaped: still one line
    assert ": seed: Input should be a valid integer" in line
    assert not (here / "CANARY").exists()


def test_canary_through_custom_imports(here, capsys):
    (here / "sslreg_canary_module.py").write_text("open('CANARY', 'w').close()\n")
    config = here / "exp.yaml"
    config.write_text(PRETRAIN + "custom_imports: {imports: [sslreg_canary_module], allow_failed_imports: false}\n")
    assert run("validate", "exp.yaml") == 2
    assert error_lines(capsys) == [
        "sslreg: error: exp.yaml: custom_imports: refusing 'custom_imports': mmengine imports the Python modules it"
        " names; sslreg configs cannot load code (components come from installed plugins)"
    ]
    assert not (here / "CANARY").exists()


@pytest.mark.parametrize(
    "text, line",
    [
        (PRETRAIN + "  schedule: {custom_imports: {imports: [os]}}\n", "pretrain.schedule.custom_imports: refusing"),
        (PRETRAIN + "evaluate: [{name: voc07_svm, _scope_: mmdet}]\n", "evaluate[0]._scope_: refusing '_scope_'"),
        (PRETRAIN + "default_scope: mmdet\n", "default_scope: refusing 'default_scope'"),
    ],
)
def test_code_loading_keys_are_refused_at_any_level(here, capsys, text, line):
    (here / "exp.yaml").write_text(text)
    assert run("validate", "exp.yaml") == 2
    [message] = error_lines(capsys)
    assert message.startswith(f"sslreg: error: exp.yaml: {line}")


def test_code_loading_key_in_a_set_override_is_refused(here, capsys):
    (here / "exp.yaml").write_text(PRETRAIN)
    assert run("validate", "exp.yaml", "--set", "custom_imports.imports=[os]") == 2
    [line] = error_lines(capsys)
    assert line.startswith("sslreg: error: --set 'custom_imports.imports=[os]': refusing 'custom_imports'")
    assert run("validate", "exp.yaml", "--set", "pretrain.schedule={custom_imports: [os]}") == 2
    assert "refusing 'custom_imports'" in error_lines(capsys)[0]


def test_unsafe_tag_in_a_set_value_is_refused(here, capsys):
    (here / "exp.yaml").write_text(PRETRAIN)
    assert run("validate", "exp.yaml", "--set", f"name={PAYLOAD}") == 2
    [line] = error_lines(capsys)
    assert "refusing unsafe YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'" in line
    assert not (here / "CANARY").exists()


def test_a_substituted_value_is_never_parsed_as_a_tag_or_a_mapping(here, monkeypatch):
    monkeypatch.setenv("TAGGED", PAYLOAD)
    monkeypatch.setenv("MAPPING", "{a: 1}")
    (here / "exp.yaml").write_text(PRETRAIN + 'work_dir: "{{$TAGGED}}"\nname: "{{$MAPPING}}"\n')
    raw = load_config("exp.yaml").raw
    assert raw["work_dir"] == PAYLOAD and raw["name"] == "{a: 1}"
    assert not (here / "CANARY").exists()


def test_billion_laughs_is_refused_quickly_with_flat_memory(here, capsys):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    (here / "laughs.yaml").write_text("\n".join(lines) + "\n")
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as refused:
            load_config("laughs.yaml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.1f} MiB while refusing"  # 10**10 values were never built
    assert str(refused.value) == "laughs.yaml:6: expands to more than 1,000,000 values (through aliases); refusing it"
    assert run("validate", "laughs.yaml") == 2
    assert error_lines(capsys) == [f"sslreg: error: {refused.value}"]


def test_deep_nesting_is_refused_before_python_recursion(here, capsys):
    depth = 5000
    (here / "deep.yaml").write_text("a: " + "[" * depth + "]" * depth + "\n")
    (here / "deep.json").write_text('{"a": ' + "[" * depth + "]" * depth + "}")
    (here / "aliased.yaml").write_text(
        "l0: &l0 [1]\n" + "".join(f"l{i}: &l{i} [*l{i - 1}]\n" for i in range(1, 70)) + PRETRAIN
    )
    assert run("validate", "deep.yaml") == 2
    assert error_lines(capsys) == ["sslreg: error: deep.yaml:1: nested deeper than 64 levels; refusing it"]
    assert run("validate", "deep.json") == 2
    assert error_lines(capsys) == ["sslreg: error: deep.json:1: nested deeper than 64 levels; refusing it"]
    assert run("validate", "aliased.yaml") == 2
    assert error_lines(capsys) == [
        "sslreg: error: aliased.yaml:64: nested deeper than 64 levels (through aliases); refusing it"
    ]


def test_recursive_alias_is_refused(here, capsys):
    (here / "loop.yaml").write_text(PRETRAIN + "x: &a [1, *a]\n")
    assert run("validate", "loop.yaml") == 2
    assert error_lines(capsys) == [
        "sslreg: error: loop.yaml:5: an alias refers to a value that contains it; refusing it"
    ]


def test_size_limit(here, capsys):
    (here / "big.yaml").write_text(PRETRAIN + "# padding\n" * 110_000)
    assert os.path.getsize(here / "big.yaml") > 2**20
    assert run("validate", "big.yaml") == 2
    assert error_lines(capsys) == ["sslreg: error: big.yaml: larger than 1 MiB, the limit for a config file"]


def test_aliases_are_copied_apart(here):
    """An override of one aliased value does not change the other (they are separate values once loaded)."""
    (here / "exp.yaml").write_text(PRETRAIN + "work_dir: &w runs/a\nname: *w\nx: &m {a: 1}\ny: *m\n")
    raw = load_config("exp.yaml", ["x.a=2"]).raw
    assert raw["x"] == {"a": 2} and raw["y"] == {"a": 1}


def test_python_config_goes_through_mmengine_only_when_allowed(here, capsys):
    (here / "exp.py").write_text(
        textwrap.dedent(
            """
            open('CANARY', 'w').close()
            pretrain = dict(pretext=dict(name='jigsaw'), backbone=dict(name='resnet18'),
                            data=dict(name='embedded_photos'))
            """
        )
    )
    assert run("validate", "exp.py") == 2
    assert error_lines(capsys) == [
        "sslreg: error: exp.py: Python configs execute code; pass --allow-python-config"
        " (or set SSLREG_ALLOW_PYTHON_CONFIG=1) to trust it"
    ]
    assert not (here / "CANARY").exists()
    assert run("validate", "exp.py", "--allow-python-config") == 0  # it ran, as the user asked
    assert (here / "CANARY").exists()
