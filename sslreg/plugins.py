"""Plugin discovery: entry points in group ``sslreg``, each loaded and called on its own so one failure stays one.

Environment switches (the precedents are LLM_LOAD_PLUGINS and PYTEST_DISABLE_PLUGIN_AUTOLOAD):
  SSLREG_LOAD_PLUGINS=a,b   load only these plugins ("" loads none)
  SSLREG_BLOCK_PLUGINS=a,b  never load these
  SSLREG_STRICT_PLUGINS=1   re-raise plugin errors (for plugin authors)
  SSLREG_TRACE_HOOKS=1      print every hook call to stderr (pluggy tracing)
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType

import pluggy
from packaging.requirements import InvalidRequirement, Requirement

import sslreg
from sslreg import hookspecs
from sslreg.registry import Entry, Registry

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


@dataclass
class LoadedPlugins:
    """The outcome of discovery: the filled registry, every plugin's status, and the pluggy manager."""

    registry: Registry
    plugins: list[PluginInfo]
    manager: pluggy.PluginManager

    def call_each(self, hook_name: str, **kwargs: object) -> None:
        """Call one hook plugin by plugin, reporting (not raising) a plugin's failure."""
        by_module = {info.module: info for info in self.plugins}
        for impl in getattr(self.manager.hook, hook_name).get_hookimpls():
            info = by_module.get(getattr(impl.plugin, "__name__", ""))
            try:
                impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
            except Exception as error:
                if _strict():
                    raise
                name = info.name if info else impl.plugin_name
                _warn(f"plugin {name!r} failed in {hook_name}: {_short(error)}")


def _names(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _strict() -> bool:
    return os.environ.get(STRICT_ENV, "") not in ("", "0", "false", "no")


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def _warn(message: str) -> None:
    print(f"sslreg: warning: {message}", file=sys.stderr)


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
    """A plugin manager that knows sslreg's hook specs (tracing on when asked)."""
    manager = pluggy.PluginManager("sslreg")
    manager.add_hookspecs(hookspecs)
    if os.environ.get(TRACE_ENV):
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
        loaded.manager.register(module, name=info.name)
    except Exception as error:  # noqa: BLE001
        info.status, info.error = "broken", _short(error)
        return info
    added: list[Entry] = []

    def register(cls: type) -> None:
        added.append(loaded.registry.add(cls, info.name, info.distribution, info.version))

    try:
        for impl in loaded.manager.hook.sslreg_register.get_hookimpls():
            if impl.plugin is module:
                impl.function(register=register)
    except Exception as error:
        if _strict():
            raise
        loaded.registry.remove(added)
        loaded.manager.unregister(module)
        info.status, info.error = "broken", _short(error)
        return info
    info.components = [f"{entry.kind}:{entry.name}" for entry in added]
    return info


def load_plugins(entry_points: Iterable[metadata.EntryPoint] | None = None) -> LoadedPlugins:
    """Discover, import and register every plugin of group ``sslreg``; failures are recorded, not raised."""
    loaded = LoadedPlugins(Registry(), [], new_manager())
    only, blocked = _names(LOAD_ENV), _names(BLOCK_ENV) or set()
    if entry_points is None:
        entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
    for entry_point in sorted(entry_points, key=lambda ep: ep.name):
        dist = getattr(entry_point, "dist", None)
        info = PluginInfo(
            name=entry_point.name,
            distribution=dist.metadata["Name"] if dist else "",
            version=dist.version if dist else "",
            module=entry_point.value.split(":")[0],
        )
        loaded.plugins.append(info)
        if entry_point.name in blocked or (only is not None and entry_point.name not in only):
            info.status, info.error = (
                "blocked",
                f"not loaded ({BLOCK_ENV if entry_point.name in blocked else LOAD_ENV})",
            )
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
            _warn(
                f"plugin {info.name!r} ({info.distribution} {info.version}, sslreg {sslreg.__version__})"
                f" {info.status}: {info.error}"
            )
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
