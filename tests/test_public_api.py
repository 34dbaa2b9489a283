"""First-party plugins use only the public API: ``from sslreg import ...`` (and ``sslreg.testing``).

Internal modules (``sslreg.runner``, ``sslreg.features``, ``sslreg.files``, ``sslreg.plugins``, ...) may change
shape at any time; everything a plugin needs is exported from ``sslreg`` itself. The scan covers each plugin's
package code (``plugins/*/sslreg_*/**/*.py``); tests and examples may also use ``sslreg.cli``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sslreg

ROOT = Path(__file__).resolve().parents[1]
ALLOWED_MODULES = {"sslreg", "sslreg.testing"}
PUBLIC = set(sslreg.__all__)
PLUGINS = sorted(path.parent.name for path in ROOT.glob("plugins/*/pyproject.toml"))

#: Internal imports the plugins still make (file, module), to be replaced by ``from sslreg import ...``.
#: Remove a line when it is fixed: the xfail below is strict, so a clean plugin listed here fails the run.
KNOWN_OFFENDERS: dict[str, set[tuple[str, str]]] = {}


def _instead(names: list[str]) -> str:
    public = [name for name in names if name in PUBLIC]
    private = [name for name in names if name not in PUBLIC]
    parts = [f"use `from sslreg import {', '.join(public)}`"] if public else []
    if private:
        parts.append(f"{', '.join(private)} not exported by sslreg: ask for it in sslreg/__init__.py")
    return "; ".join(parts)


def offences(path: Path) -> list[tuple[int, str, str]]:
    """(line, module, what to use instead) for each import of a non-public part of sslreg in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [alias.name for alias in node.names]
            if node.module.startswith("sslreg.") and node.module not in ALLOWED_MODULES:
                found.append((node.lineno, node.module, _instead(names)))
            elif node.module == "sslreg":
                hidden = [name for name in names if name not in PUBLIC and f"sslreg.{name}" not in ALLOWED_MODULES]
                if hidden:
                    found.append((node.lineno, f"sslreg.{hidden[0]}", f"{', '.join(hidden)} is not public API"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("sslreg.") and alias.name not in ALLOWED_MODULES:
                    found.append((node.lineno, alias.name, "use `import sslreg` and its public names"))
    return sorted(found)


def plugin_offences(plugin: str) -> list[tuple[str, int, str, str]]:
    """Every offence of one first-party plugin: (file, line, module, what to use instead)."""
    folder = ROOT / "plugins" / plugin
    return [
        (path.relative_to(folder).as_posix(), line, module, instead)
        for path in sorted(folder.glob("sslreg_*/**/*.py"))
        for line, module, instead in offences(path)
    ]


def _report(found: list[tuple[str, int, str, str]]) -> list[str]:
    return [f"{file}:{line}: imports {module} -> {instead}" for file, line, module, instead in found]


@pytest.mark.parametrize(
    "plugin",
    [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason="known internal imports (KNOWN_OFFENDERS)"))
        if name in KNOWN_OFFENDERS
        else name
        for name in PLUGINS
    ],
)
def test_plugin_imports_only_the_public_api(plugin):
    assert _report(plugin_offences(plugin)) == []


@pytest.mark.parametrize("plugin", PLUGINS)
def test_no_internal_import_beyond_the_known_ones(plugin):
    """Not xfailed: a new internal import fails at once, even in a plugin that already has known ones."""
    known = KNOWN_OFFENDERS.get(plugin, set())
    assert _report([found for found in plugin_offences(plugin) if (found[0], found[2]) not in known]) == []


def test_the_scan_finds_internal_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from sslreg import Backbone, hookimpl\nfrom sslreg.testing import TinyBackbone\n"
        "from sslreg.files import atomic_open, secret\nimport sslreg.runner.compat\nfrom sslreg import files\n"
        "def f():\n    from sslreg.plugins import get_registry\n"
    )
    assert offences(sample) == [
        (
            3,
            "sslreg.files",
            "use `from sslreg import atomic_open`; secret not exported by sslreg: ask for it in sslreg/__init__.py",
        ),
        (4, "sslreg.runner.compat", "use `import sslreg` and its public names"),
        (5, "sslreg.files", "files is not public API"),
        (7, "sslreg.plugins", "use `from sslreg import get_registry`"),
    ]
