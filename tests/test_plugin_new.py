"""``sslreg plugin new NAME --kind KIND``: a working package for every kind, checked in-process (no pip).

The slow test in test_plugin_new_install.py pip-installs the same four packages, runs their tests in a subprocess,
runs them from a config and uninstalls them.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sslreg import UserError
from sslreg.cli import main
from sslreg.plugin_new import KINDS, scaffold
from sslreg.testing import registered_entries

#: One plugin per kind, named so that no two share a module (they are installed together in the slow test).
PLUGINS = {"pretext": "flipper", "backbone": "tinyvgg", "dataset": "csvlist", "evaluator": "centroid"}


def load_file(name: str, path: Path):
    """Import one generated file as a module of its own (the generated tests are not packages)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def scaffolded(tmp_path, monkeypatch):
    """The four packages, written by ``sslreg plugin new`` and importable from their folders."""
    for kind, name in PLUGINS.items():
        assert main(["plugin", "new", name, "--kind", kind, "--dir", str(tmp_path)]) == 0
        monkeypatch.syspath_prepend(str(tmp_path / f"sslreg-{name}"))
    yield tmp_path
    for name in [m for m in sys.modules if m.split(".")[0] in {f"sslreg_{n}" for n in PLUGINS.values()}]:
        del sys.modules[name]


def test_every_kind_is_a_package_with_the_entry_point_one_component_and_its_tests(scaffolded):
    assert set(KINDS) == set(PLUGINS)
    for kind, name in PLUGINS.items():
        root = scaffolded / f"sslreg-{name}"
        assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
            "README.md",
            "pyproject.toml",
            f"sslreg_{name}/__init__.py",
            f"sslreg_{name}/{name}.py",
            "tests/test_conformance.py",
        ]
        pyproject = (root / "pyproject.toml").read_text()
        assert f'name = "sslreg-{name}"' in pyproject and '"sslreg>=0.1,<0.2"' in pyproject
        assert f'[project.entry-points.sslreg]\n{name} = "sslreg_{name}"\n' in pyproject
        module = importlib.import_module(f"sslreg_{name}")
        assert module.SSLREG_API_VERSION == 1
        [entry] = registered_entries(module)  # the one hook registers the one component, as the loader does
        assert (entry.kind, entry.name, entry.cls.__name__) == (kind, name, name.title())
        assert entry.cls.__module__ == f"sslreg_{name}.{name}" and entry.cls.Config.__name__ == f"{name.title()}Config"
        article = "an" if kind == "evaluator" else "a"
        assert (root / f"sslreg_{name}/{name}.py").read_text().startswith(f'"""{name}: {article} {kind}')


def test_the_generated_tests_pass_in_process(scaffolded, tmp_path_factory):
    """Each package's own tests/test_conformance.py (the kit with fixture options), every test function of it."""
    ran = []
    for kind, name in PLUGINS.items():
        tests = load_file(f"generated_test_{name}", scaffolded / f"sslreg-{name}" / "tests" / "test_conformance.py")
        for test_name, test in vars(tests).items():
            if test_name.startswith("test_") and callable(test):
                wants_folder = "tmp_path" in inspect.signature(test).parameters
                test(**({"tmp_path": tmp_path_factory.mktemp(test_name)} if wants_folder else {}))
                ran.append(f"{kind}:{test_name}")
    assert {entry.split(":")[0] for entry in ran} == set(PLUGINS) and len(ran) >= 12


def test_the_skeletons_honour_the_core_contracts(scaffolded):
    """Pretext: declared contract, randomness only from rng. Backbone: no weight loading of its own. Dataset: never
    splits by worker. Evaluator: data through the context, features through extract_features (the trunk's contract).
    """
    import numpy as np
    import sslreg_centroid.centroid as evaluator
    import sslreg_csvlist.csvlist as dataset
    import sslreg_flipper.flipper as pretext
    import sslreg_tinyvgg.tinyvgg as backbone

    task = pretext.Flipper(pretext.FlipperConfig(name="flipper"))
    assert task.input_contract().space == "rgb"
    image = np.random.default_rng(0).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    draws = {int(task.make_sample(image, np.random.default_rng(seed))[1]) for seed in range(30)}
    assert draws == set(range(task.config.num_transforms))

    source = inspect.getsource(backbone)
    assert "load_state_dict" not in source and "torch.load" not in source and "weights" in backbone.__doc__
    assert "get_worker_info" not in inspect.getsource(dataset) and "def stream" not in inspect.getsource(dataset)
    code = inspect.getsource(evaluator.Centroid.evaluate)
    assert "context.build_dataset" in code and "extract_features" in code


def test_packages_are_ruff_clean_under_their_own_settings(scaffolded):
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    for name in PLUGINS.values():
        root = scaffolded / f"sslreg-{name}"
        for command in ([ruff, "check", "--no-cache", "."], [ruff, "format", "--no-cache", "--check", "."]):
            result = subprocess.run(command, cwd=root, capture_output=True, text=True)
            assert result.returncode == 0, f"{name}: {' '.join(command[1:])}\n{result.stdout}{result.stderr}"


def test_names_that_cannot_work_are_refused_in_one_line(tmp_path, capsys):
    for bad in ("Rotation", "my-task", "2d", "class", "x_"):
        with pytest.raises(UserError, match="lower-case letters"):
            scaffold(bad, "pretext", tmp_path)
    with pytest.raises(UserError, match="module 'sslreg_datasets' is already installed"):
        scaffold("datasets", "dataset", tmp_path)  # would shadow the first-party plugin's module
    with pytest.raises(UserError, match="--kind 'trunk': choose one of pretext, backbone, dataset, evaluator"):
        scaffold("mytrunk", "trunk", tmp_path)
    scaffold("twice", "backbone", tmp_path)
    assert main(["plugin", "new", "twice", "--kind", "backbone", "--dir", str(tmp_path)]) == 2
    assert "already exists; not overwriting it" in capsys.readouterr().err


def test_a_name_another_plugin_provides_gets_a_note(tmp_path, capsys):
    assert main(["plugin", "new", "resnet18", "--kind", "backbone", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "backbone 'resnet18' is also provided by sslreg-backbones:resnet18" in out
    assert "configs must name this one sslreg-resnet18:resnet18" in out
