"""Plugin discovery: entry points in group ``sslreg``, each loaded and called on its own so one failure stays one.

Every hook is called through pluggy, one plugin at a time (a subset hook caller with the other plugins removed),
so pluggy's tracing, ordering and wrappers apply and one plugin's exception is that plugin's failure alone.

Environment switches (the precedents are LLM_LOAD_PLUGINS and PYTEST_DISABLE_PLUGIN_AUTOLOAD); a plugin is named
by its entry-point name or its distribution name:
  SSLREG_LOAD_PLUGINS=a,b   load only these plugins ("" loads none)
  SSLREG_BLOCK_PLUGINS=a,b  never load these
  SSLREG_STRICT_PLUGINS=1   re-raise plugin errors (for plugin authors)
  SSLREG_TRACE_HOOKS=1      print every hook call to stderr (pluggy tracing)
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy
from packaging.requirements import InvalidRequirement, Requirement

import sslreg
from sslreg import hookspecs
from sslreg.env import env_flag, env_names
from sslreg.registry import Entry, Registry, canonical_distribution

ENTRY_POINT_GROUP = "sslreg"
LOAD_ENV = "SSLREG_LOAD_PLUGINS"
BLOCK_ENV = "SSLREG_BLOCK_PLUGINS"
STRICT_ENV = "SSLREG_STRICT_PLUGINS"
TRACE_ENV = "SSLREG_TRACE_HOOKS"


@dataclass
class PluginInfo:
    """What happened to one installed plugin: status is ok, broken, incompatible or blocked."""

    name: str
    distribution: str
    version: str
    module: str
    status: str = "ok"
    error: str = ""
    components: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """The name the plugin is registered under in pluggy: unique even if two distributions share a name."""
        return f"{self.distribution}:{self.name}" if self.distribution else self.name


@dataclass
class LoadedPlugins:
    """The outcome of discovery: the filled registry, every plugin's status, and the pluggy manager."""

    registry: Registry
    plugins: list[PluginInfo]
    manager: pluggy.PluginManager

    def call_each(self, hook_name: str, **kwargs: object) -> None:
        """Call one hook plugin by plugin through pluggy, reporting (not raising) a plugin's failure."""
        by_key = {info.key: info for info in self.plugins}
        for key, plugin in self.manager.list_name_plugin():
            try:
                call_alone(self.manager, plugin, hook_name, **kwargs)
            except Exception as error:
                if _strict():
                    raise
                info = by_key.get(key) or PluginInfo(key, "", "", getattr(plugin, "__name__", ""))
                _warn(f"{_describe(info)} failed in {hook_name}: {_short(error)}")


def call_alone(manager: pluggy.PluginManager, plugin: object, hook_name: str, **kwargs: object) -> list[Any]:
    """Call ``hook_name`` through pluggy with only ``plugin``'s implementations (none: nothing is called)."""
    caller = getattr(manager.hook, hook_name)
    if not any(impl.plugin is plugin for impl in caller.get_hookimpls()):
        return []
    others = [other for other in manager.get_plugins() if other is not plugin]
    return manager.subset_hook_caller(hook_name, remove_plugins=others)(**kwargs)


def _strict() -> bool:
    return env_flag(STRICT_ENV)


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def _warn(message: str) -> None:
    print(f"sslreg: warning: {message}", file=sys.stderr)


def _describe(info: PluginInfo) -> str:
    """``plugin 'x' (sslreg-x 0.3.0, sslreg 0.1.0)``: who failed, and against which sslreg."""
    provider = f"{info.distribution} {info.version}".strip()
    return f"plugin {info.name!r} ({provider + ', ' if provider else ''}sslreg {sslreg.__version__})"


def _requirement_problem(dist: metadata.Distribution | None) -> str:
    """Why the plugin's own requirement on sslreg excludes this sslreg, or ''."""
    if dist is None:
        return ""
    for line in dist.requires or []:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.name.lower() == "sslreg" and requirement.marker is None:
            if requirement.specifier and not requirement.specifier.contains(sslreg.__version__, prereleases=True):
                return f"requires sslreg{requirement.specifier}, this is sslreg {sslreg.__version__}"
    return ""


def _api_problem(module: ModuleType) -> str:
    declared = getattr(module, "SSLREG_API_VERSION", sslreg.API_VERSION)
    if declared != sslreg.API_VERSION:
        return f"written for sslreg plugin API {declared}, this sslreg offers API {sslreg.API_VERSION}"
    return ""


def new_manager() -> pluggy.PluginManager:
    """A plugin manager that knows sslreg's hook specs (tracing to stderr when SSLREG_TRACE_HOOKS is on)."""
    manager = pluggy.PluginManager("sslreg")
    manager.add_hookspecs(hookspecs)
    if env_flag(TRACE_ENV):
        manager.trace.root.setwriter(sys.stderr.write)
        manager.enable_tracing()
    return manager


def register_module(loaded: LoadedPlugins, module: ModuleType, info: PluginInfo) -> PluginInfo:
    """Register one imported plugin module and call its sslreg_register alone; roll back on failure."""
    problem = _api_problem(module)
    if problem:
        info.status, info.error = "incompatible", problem
        return info
    try:
        loaded.manager.register(module, name=info.key)
    except Exception as error:
        if _strict():
            raise
        info.status, info.error = "broken", _short(error)
        return info
    added: list[Entry] = []

    def register(cls: type) -> None:
        added.append(loaded.registry.add(cls, info.name, info.distribution, info.version))

    try:
        call_alone(loaded.manager, module, "sslreg_register", register=register)
    except Exception as error:
        loaded.registry.remove(added)
        loaded.manager.unregister(module)
        if _strict():
            raise
        info.status, info.error = "broken", _short(error)
        return info
    info.components = [f"{entry.kind} {entry.name}" for entry in added]
    return info


def _chosen(names: set[str], info: PluginInfo) -> bool:
    """Whether a switch's list names this plugin, by entry-point name or distribution name."""
    return (
        info.name in names
        or bool(info.distribution)
        and canonical_distribution(info.distribution) in {canonical_distribution(name) for name in names}
    )


def _warn_unknown_names(switches: dict[str, set[str]], plugins: list[PluginInfo]) -> None:
    """One warning line when a switch names plugins that are not installed (a typo would otherwise pass)."""
    known = {info.name for info in plugins} | {canonical_distribution(i.distribution) for i in plugins}
    parts = []
    for variable, names in switches.items():
        unknown = sorted(name for name in names if name not in known and canonical_distribution(name) not in known)
        if unknown:
            parts.append(f"{variable} names unknown plugin{'s' if len(unknown) > 1 else ''} {_quoted(unknown)}")
    if parts:
        installed = _quoted(sorted({info.name for info in plugins})) or "none"
        _warn(f"{'; '.join(parts)} (installed plugins: {installed})")


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(repr(name) for name in names)


def _exclusion_note(excluded: dict[str, list[str]]) -> Callable[[str, str], str]:
    """For lookups that fail: the switch that excluded plugins, naming those the catalogue says provide the name
    (every excluded plugin when the catalogue names none of them)."""

    def note(kind: str, name: str) -> str:  # kind "" means any kind
        bare = name.rpartition(":")[2]
        try:
            from sslreg.catalogue import load_catalogue

            providers = {
                entry.name
                for entry in load_catalogue().plugins
                for provided_kind, names in entry.components.items()
                if bare in names and provided_kind in (kind or provided_kind)
            }
        except (ValueError, OSError):  # no usable catalogue: name every excluded plugin
            providers = set()
        if not providers & {name for names in excluded.values() for name in names}:
            providers = {name for names in excluded.values() for name in names}
        parts = []
        for switch, names in excluded.items():
            named = [name for name in names if name in providers]
            if named:
                parts.append(f"{switch} excludes plugin{'s' if len(named) > 1 else ''} {_quoted(named)}")
        return "; ".join(parts)

    return note


def load_plugins(entry_points: Iterable[metadata.EntryPoint] | None = None) -> LoadedPlugins:
    """Discover, import and register every plugin of group ``sslreg``; failures are recorded, not raised."""
    loaded = LoadedPlugins(Registry(), [], new_manager())
    only, blocked = env_names(LOAD_ENV), env_names(BLOCK_ENV) or set()
    if entry_points is None:
        entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
    excluded: dict[str, list[str]] = {}
    for entry_point in sorted(entry_points, key=lambda ep: ep.name):
        dist = getattr(entry_point, "dist", None)
        info = PluginInfo(
            name=entry_point.name,
            distribution=dist.metadata["Name"] if dist else "",
            version=dist.version if dist else "",
            module=entry_point.value.split(":")[0],
        )
        loaded.plugins.append(info)
        if _chosen(blocked, info) or (only is not None and not _chosen(only, info)):
            variable = BLOCK_ENV if _chosen(blocked, info) else LOAD_ENV
            switch = f"{variable}={os.environ.get(variable, '')}"
            info.status, info.error = "blocked", f"not loaded ({switch})"
            excluded.setdefault(switch, []).append(info.name)
            continue
        problem = _requirement_problem(dist)
        if problem:
            info.status, info.error = "incompatible", problem
        else:
            try:
                module = importlib.import_module(info.module)
            except Exception as error:
                if _strict():
                    raise
                info.status, info.error = "broken", _short(error)
            else:
                register_module(loaded, module, info)
        if info.status != "ok":
            _warn(f"{_describe(info)} {info.status}: {info.error}")
    _warn_unknown_names({LOAD_ENV: only or set(), BLOCK_ENV: blocked}, loaded.plugins)
    if excluded:
        loaded.registry.exclusion_note = _exclusion_note(excluded)
    return loaded


_LOADED: LoadedPlugins | None = None


def get_plugins() -> LoadedPlugins:
    """The process-wide plugin state, loaded on first use."""
    global _LOADED
    if _LOADED is None:
        _LOADED = load_plugins()
    return _LOADED


def get_registry() -> Registry:
    """The process-wide registry, filled by every installed plugin."""
    return get_plugins().registry


def reset() -> None:
    """Forget loaded plugins (tests, or after installing a plugin in-process)."""
    global _LOADED
    _LOADED = None
    importlib.invalidate_caches()
