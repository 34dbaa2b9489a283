"""Discovery isolates every plugin: one broken plugin is one report, never a crash of the others."""

from importlib.metadata import EntryPoint

import pytest

import sslreg
from sslreg.plugins import load_plugins
from sslreg.registry import UnknownComponent

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
        "dupe": "ok",  # a clash makes the bare name ambiguous; it breaks neither plugin
        "oldapi": "incompatible",
        "zeta": "ok",
    }
    # 'half' rolled back; both 'alpha's listed, by qualified name
    assert [entry.qualified_name for entry in loaded.registry.list()] == ["alpha:alpha", "dupe:alpha", "zeta:zeta"]
    infos = by_name(loaded)
    assert "missing dependency xyz" in infos["imports"].error
    assert "boom in hook" in infos["hook"].error
    assert "API 0" in infos["oldapi"].error
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sslreg: warning")]
    assert len(warnings) == 3  # one line per failed plugin
    assert warnings[0] == (
        f"sslreg: warning: plugin 'hook' (sslreg {sslreg.__version__}) broken: RuntimeError: boom in hook"
    )


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


WRAPPED = '''
from sslreg import hookimpl
from sslreg.testing import TinyBackbone

CALLS = []


class First(TinyBackbone):
    """Registered by the tryfirst implementation."""
    name = "first"


class Second(TinyBackbone):
    """Registered by the plain implementation."""
    name = "second"


@hookimpl(specname="sslreg_register")
def plain(register):
    CALLS.append("plain")
    register(Second)


@hookimpl(specname="sslreg_register", tryfirst=True)
def early(register):
    CALLS.append("early")
    register(First)


@hookimpl(specname="sslreg_register", wrapper=True)
def around(register):
    CALLS.append("wrapper in")
    result = yield
    CALLS.append("wrapper out")
    return result
'''


def test_hooks_run_through_pluggy_with_ordering_and_wrappers(plugin_dir):
    loaded = load_plugins([make(plugin_dir, "sslregtest_wrapped", WRAPPED), good(plugin_dir, "sslregtest_b", "b")])
    import sslregtest_wrapped

    assert sslregtest_wrapped.CALLS == ["wrapper in", "early", "plain", "wrapper out"]  # called once, in order
    assert [e.name for e in loaded.registry.list()] == ["b", "first", "second"]
    assert by_name(loaded)["wrapped"].components == ["backbone first", "backbone second"]


def test_trace_switch_prints_every_hook_call(plugin_dir, monkeypatch, capsys):
    monkeypatch.setenv("SSLREG_TRACE_HOOKS", "1")
    source = GOOD.format(cls="Cmd", name="cmd") + "\n@hookimpl\ndef sslreg_commands(subparsers):\n    pass\n"
    loaded = load_plugins([make(plugin_dir, "sslregtest_cmd", source), good(plugin_dir, "sslregtest_b", "b")])
    loaded.call_each("sslreg_commands", subparsers=None)
    err = capsys.readouterr().err
    assert err.count("sslreg_register [hook]") == 2 and err.count("finish sslreg_register") == 2
    assert err.count("sslreg_commands [hook]") == 1  # only the plugin that implements it is called
    monkeypatch.setenv("SSLREG_TRACE_HOOKS", "0")
    load_plugins([good(plugin_dir, "sslregtest_c", "c")])
    assert "[hook]" not in capsys.readouterr().err


def test_strict_mode_reraises_a_hook_failure_after_rolling_it_back(plugin_dir, monkeypatch):
    monkeypatch.setenv("SSLREG_STRICT_PLUGINS", "yes")
    with pytest.raises(RuntimeError, match="boom in hook"):
        load_plugins([make(plugin_dir, "sslregtest_hook", RAISES_IN_HOOK)])
    monkeypatch.setenv("SSLREG_STRICT_PLUGINS", "off")  # off means off
    assert by_name(load_plugins([make(plugin_dir, "sslregtest_hook2", RAISES_IN_HOOK)]))["hook2"].status == "broken"


def test_switches_naming_unknown_plugins_warn_once(plugin_dir, monkeypatch, capsys):
    entry_points = [good(plugin_dir, "sslregtest_one", "one"), good(plugin_dir, "sslregtest_two", "two")]
    monkeypatch.setenv("SSLREG_LOAD_PLUGINS", "two,tow,three")
    monkeypatch.setenv("SSLREG_BLOCK_PLUGINS", "won")
    load_plugins(entry_points)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings == [
        "sslreg: warning: SSLREG_LOAD_PLUGINS names unknown plugins 'three', 'tow'; SSLREG_BLOCK_PLUGINS names"
        " unknown plugin 'won' (installed plugins: 'one', 'two')"
    ]


def test_a_lookup_that_fails_names_the_switch_that_excluded_plugins(plugin_dir, monkeypatch, tmp_path):
    catalogue = tmp_path / "registry.yaml"
    catalogue.write_text(
        "plugins:\n  - {name: one, requirement: x, kinds: [backbone], components: {backbone: [one]}}\n"
        "  - {name: two, requirement: y, kinds: [backbone], components: {backbone: [two]}}\n"
    )
    monkeypatch.setenv("SSLREG_CATALOGUE", str(catalogue))
    entry_points = [good(plugin_dir, f"sslregtest_{name}", name) for name in ("one", "two", "three")]
    monkeypatch.setenv("SSLREG_LOAD_PLUGINS", "three")
    registry = load_plugins(entry_points).registry
    with pytest.raises(UnknownComponent) as caught:
        registry.get("backbone", "one")
    assert str(caught.value) == "unknown backbone 'one' (SSLREG_LOAD_PLUGINS=three excludes plugin 'one')"
    with pytest.raises(UnknownComponent) as caught:  # the catalogue names no provider: every excluded plugin
        registry.get("backbone", "nowhere")
    assert "(SSLREG_LOAD_PLUGINS=three excludes plugins 'one', 'two')" in str(caught.value)
    monkeypatch.delenv("SSLREG_LOAD_PLUGINS")
    monkeypatch.setenv("SSLREG_BLOCK_PLUGINS", "two")
    with pytest.raises(UnknownComponent, match=r"^unknown backbone 'two' \(SSLREG_BLOCK_PLUGINS=two excludes"):
        load_plugins(entry_points).registry.get("backbone", "two")
    monkeypatch.delenv("SSLREG_BLOCK_PLUGINS")
    with pytest.raises(UnknownComponent) as caught:
        load_plugins(entry_points).registry.get("backbone", "nowhere")
    assert str(caught.value) == "unknown backbone 'nowhere'"  # no switch, no note


def test_sslreg_list_with_the_trace_switch_shows_the_hook_calls(plugin_dir, monkeypatch, capsys):
    from sslreg.cli import main

    monkeypatch.setenv("SSLREG_TRACE_HOOKS", "1")
    assert main(["list", "--json"]) == 0  # plugin_dir resets the process-wide plugins, so they load again here
    err = capsys.readouterr().err
    assert err.count("sslreg_register [hook]") >= 6  # one call per first-party plugin
    assert "sslreg_commands [hook]" in err  # svm's and colorization's commands
