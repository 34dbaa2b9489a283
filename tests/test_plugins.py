"""Discovery isolates every plugin: one broken plugin is one report, never a crash of the others."""

from importlib.metadata import EntryPoint

import pytest

from sslreg.plugins import load_plugins

GOOD = '''
from sslreg import hookimpl
from sslreg.testing import TinyBackbone

class {cls}(TinyBackbone):
    """Trunk {name}."""
    name = "{name}"

@hookimpl
def sslreg_register(register):
    register({cls})
'''

RAISES_IN_HOOK = '''
from sslreg import hookimpl
from sslreg.testing import TinyBackbone

class Half(TinyBackbone):
    """Registered before the hook fails; must be rolled back."""
    name = "half"

@hookimpl
def sslreg_register(register):
    register(Half)
    raise RuntimeError("boom in hook")
'''


def make(plugin_dir, module, source):
    (plugin_dir / f"{module}.py").write_text(source)
    return EntryPoint(name=module.removeprefix("sslregtest_"), value=module, group="sslreg")


def good(plugin_dir, module, component):
    return make(plugin_dir, module, GOOD.format(cls=component.title(), name=component))


def by_name(loaded):
    return {info.name: info for info in loaded.plugins}


def test_broken_plugins_are_reported_and_the_rest_loads(plugin_dir, capsys):
    entry_points = [
        good(plugin_dir, "sslregtest_alpha", "alpha"),
        make(plugin_dir, "sslregtest_imports", "raise ImportError('missing dependency xyz')"),
        make(plugin_dir, "sslregtest_hook", RAISES_IN_HOOK),
        good(plugin_dir, "sslregtest_dupe", "alpha"),
        make(plugin_dir, "sslregtest_oldapi", "SSLREG_API_VERSION = 0\n" + GOOD.format(cls="Old", name="old")),
        good(plugin_dir, "sslregtest_zeta", "zeta"),
    ]
    loaded = load_plugins(entry_points)
    status = {name: info.status for name, info in by_name(loaded).items()}
    assert status == {
        "alpha": "ok",
        "imports": "broken",
        "hook": "broken",
        "dupe": "broken",
        "oldapi": "incompatible",
        "zeta": "ok",
    }
    assert [entry.name for entry in loaded.registry.list()] == ["alpha", "zeta"]  # 'half' rolled back
    infos = by_name(loaded)
    assert "missing dependency xyz" in infos["imports"].error
    assert "boom in hook" in infos["hook"].error
    assert "already registered by plugin 'alpha'" in infos["dupe"].error
    assert "API 0" in infos["oldapi"].error
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sslreg: warning")]
    assert len(warnings) == 4  # one line per failed plugin


def test_environment_narrows_and_blocks_loading(plugin_dir, monkeypatch):
    entry_points = [good(plugin_dir, "sslregtest_one", "one"), good(plugin_dir, "sslregtest_two", "two")]
    monkeypatch.setenv("SSLREG_LOAD_PLUGINS", "two")
    assert [e.name for e in load_plugins(entry_points).registry.list()] == ["two"]
    monkeypatch.setenv("SSLREG_LOAD_PLUGINS", "")
    assert len(load_plugins(entry_points).registry) == 0
    monkeypatch.delenv("SSLREG_LOAD_PLUGINS")
    monkeypatch.setenv("SSLREG_BLOCK_PLUGINS", "one")
    loaded = load_plugins(entry_points)
    assert [e.name for e in loaded.registry.list()] == ["two"]
    assert by_name(loaded)["one"].status == "blocked"


def test_strict_mode_reraises_for_plugin_authors(plugin_dir, monkeypatch):
    entry_points = [make(plugin_dir, "sslregtest_bad", "raise ValueError('author bug')")]
    monkeypatch.setenv("SSLREG_STRICT_PLUGINS", "1")
    with pytest.raises(ValueError, match="author bug"):
        load_plugins(entry_points)


def test_a_failing_command_hook_does_not_break_the_others(plugin_dir, capsys):
    source = GOOD.format(cls="Cmd", name="cmd") + (
        "\n@hookimpl\ndef sslreg_commands(subparsers):\n    raise RuntimeError('bad command hook')\n"
    )
    loaded = load_plugins([make(plugin_dir, "sslregtest_cmd", source)])
    import argparse

    subparsers = argparse.ArgumentParser().add_subparsers()
    loaded.call_each("sslreg_commands", subparsers=subparsers)
    assert "bad command hook" in capsys.readouterr().err
