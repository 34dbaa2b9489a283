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
