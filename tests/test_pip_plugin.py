"""A third-party plugin really pip-installed: seen by `sslreg list`, usable from a config, gone once uninstalled."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

GOOD_PLUGIN = '''
from pydantic import Field
from sslreg import hookimpl
from sslreg.testing import TinyBackbone

SSLREG_API_VERSION = 1


class Mini(TinyBackbone):
    """A tiny trunk from a third-party plugin."""

    name = "{component}"


@hookimpl
def sslreg_register(register):
    register(Mini)
'''

PYPROJECT = """
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.3.0"
dependencies = ["sslreg"]

[project.entry-points.sslreg]
{name} = "{module}"
"""


def write_plugin(root: Path, name: str, body: str, component: str = "") -> Path:
    """Write an installable plugin package ``sslreg-<name>`` (module ``sslreg_<name>``) and return its folder."""
    folder = root / f"sslreg-{name}"
    module = f"sslreg_{name}"
    (folder / module).mkdir(parents=True)
    (folder / module / "__init__.py").write_text(textwrap.dedent(body).format(component=component or name))
    (folder / "pyproject.toml").write_text(PYPROJECT.format(dist=f"sslreg-{name}", name=name, module=module))
    return folder


BROKEN_PLUGIN = "raise ImportError('this plugin needs libfoo')\n"


def sslreg(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "sslreg.cli", *args], capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def pip(*args):
    subprocess.run([sys.executable, "-m", "pip", *args], check=True, capture_output=True, text=True)


def test_install_list_use_uninstall(tmp_path):
    good = write_plugin(tmp_path, "thirdparty", GOOD_PLUGIN, component="mini_trunk")
    broken = write_plugin(tmp_path, "brokenthing", BROKEN_PLUGIN)
    pip("install", "--no-build-isolation", "--no-deps", "--no-index", "-q", str(good), str(broken))
    try:
        listed = json.loads(sslreg("list", "--json").stdout)  # exit 0 despite the broken plugin
        mini = [row for row in listed if row["name"] == "mini_trunk"]
        assert mini == [
            {
                "name": "mini_trunk",
                "qualified_name": "sslreg-thirdparty:mini_trunk",
                "ambiguous": False,
                "kind": "backbone",
                "plugin": "thirdparty",
                "distribution": "sslreg-thirdparty",
                "version": "0.3.0",
                "summary": "A tiny trunk from a third-party plugin.",
            }
        ]
        assert {"jigsaw", "resnet50", "embedded_photos"} <= {row["name"] for row in listed}

        plugins = json.loads(sslreg("plugins", "--json").stdout)["installed"]
        status = {row["name"]: (row["status"], row["error"]) for row in plugins}
        assert status["thirdparty"] == ("ok", "")
        assert status["brokenthing"] == ("broken", "ImportError: this plugin needs libfoo")
        table = sslreg("plugins").stdout
        assert "brokenthing" in table and "broken" in table

        config = tmp_path / "uses_plugin.yaml"
        config.write_text(
            "pretrain:\n  pretext: {name: jigsaw, num_permutations: 10}\n"
            "  backbone: {name: mini_trunk}\n  data: {name: embedded_photos}\n"
        )
        assert "OK" in sslreg("validate", str(config)).stdout
    finally:
        pip("uninstall", "-y", "-q", "sslreg-thirdparty", "sslreg-brokenthing")
    assert "mini_trunk" not in {row["name"] for row in json.loads(sslreg("list", "--json").stdout)}
    gone = sslreg("validate", str(config), check=False)
    assert gone.returncode == 2 and "unknown backbone 'mini_trunk'" in gone.stderr


DUP_JIGSAW = '''
from sslreg import PretextTask, hookimpl
from sslreg.testing import TinyBackbone


class Jigsaw(PretextTask):
    """A third-party pretext task that takes the first-party name 'jigsaw'."""

    name = "jigsaw"

    def make_sample(self, image, rng):
        raise NotImplementedError

    def build_model(self, trunk):
        raise NotImplementedError

    def loss(self, model, inputs, targets):
        raise NotImplementedError


class Trunk(TinyBackbone):
    """A tiny trunk, also registered by another third-party plugin."""

    name = "twin_trunk"


@hookimpl
def sslreg_register(register):
    register(Jigsaw)
    register(Trunk)
'''

TWIN_TRUNK = '''
from sslreg import hookimpl
from sslreg.testing import TinyBackbone


class Trunk(TinyBackbone):
    """The other twin trunk."""

    name = "twin_trunk"


@hookimpl
def sslreg_register(register):
    register(Trunk)
'''


def in_process(capsys, *argv):
    """``sslreg ARGV`` in this process (plugins reloaded): exit code, stdout, stderr."""
    import sslreg.plugins
    from sslreg.cli import main

    sslreg.plugins.reset()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_name_clashes_never_depend_on_sort_order(tmp_path, capsys):
    """A pip-installed 'dupjigsaw' also registers pretext 'jigsaw': both stay usable by qualified name."""
    dup = write_plugin(tmp_path, "dupjigsaw", DUP_JIGSAW)
    twin = write_plugin(tmp_path, "twintrunk", TWIN_TRUNK)
    pip("install", "--no-build-isolation", "--no-deps", "--no-index", "-q", str(dup), str(twin))
    quickstart = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
    try:
        code, out, err = in_process(capsys, "plugins", "--json")
        status = {row["name"]: row["status"] for row in json.loads(out)["installed"]}
        assert status["dupjigsaw"] == status["jigsaw"] == status["twintrunk"] == "ok"
        assert "warning" not in err

        code, out, err = in_process(capsys, "list", "--json")
        rows = [(row["qualified_name"], row["ambiguous"]) for row in json.loads(out) if row["name"] == "jigsaw"]
        assert rows == [("sslreg-dupjigsaw:jigsaw", True), ("sslreg-jigsaw:jigsaw", True)]
        code, out, err = in_process(capsys, "list", "backbone", "twin*")
        assert "sslreg-dupjigsaw:twin_trunk" in out and "sslreg-twintrunk:twin_trunk" in out
        assert "backbone 'twin_trunk' is provided by 2 plugins: name one in configs as" in out

        code, out, err = in_process(capsys, "info", "sslreg-jigsaw:jigsaw", "--json")
        info = json.loads(out)
        assert code == 0 and info["distribution"] == "sslreg-jigsaw" and "num_permutations" in str(info["options"])
        code, out, err = in_process(capsys, "info", "jigsaw", "--json")  # the bare name shows every provider
        assert [row["distribution"] for row in json.loads(out)] == ["sslreg-dupjigsaw", "sslreg-jigsaw"]

        code, out, err = in_process(capsys, "validate", str(quickstart))
        assert code == 2
        assert err.strip() == (
            f"sslreg: error: {quickstart}: pretrain.pretext.name: pretext 'jigsaw' is ambiguous: both"
            " 'sslreg-dupjigsaw:jigsaw' and 'sslreg-jigsaw:jigsaw' provide it; name one of them"
        )
        for qualified in ("sslreg-jigsaw:jigsaw", "jigsaw:jigsaw"):  # distribution or plugin as the qualifier
            code, out, err = in_process(
                capsys, "validate", str(quickstart), "--set", f"pretrain.pretext.name={qualified}"
            )
            assert code == 0 and "OK" in out, err
        # the third-party one is reachable too: its options are its own
        code, out, err = in_process(
            capsys, "validate", str(quickstart), "--set", "pretrain.pretext.name=dupjigsaw:jigsaw"
        )
        assert code == 2 and "pretrain.pretext.num_permutations: unknown option" in err
    finally:
        pip("uninstall", "-y", "-q", "sslreg-dupjigsaw", "sslreg-twintrunk")
        import sslreg.plugins

        sslreg.plugins.reset()
        for name in [m for m in sys.modules if m in ("sslreg_dupjigsaw", "sslreg_twintrunk")]:
            del sys.modules[name]
    code, out, err = in_process(capsys, "validate", str(quickstart))
    assert code == 0, err
