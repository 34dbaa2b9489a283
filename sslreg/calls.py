"""Calls into plugin code: a failure that is not a user mistake names the plugin, the component and the method.

The runner, the data adapter and the evaluation wrap every call into a component (``load``, ``make_sample``,
``loss``, ``evaluate``, ...) in :func:`plugin_call`. A UserError or OSError passes through unchanged (it is the
user's to fix); anything else becomes a :class:`sslreg.errors.PluginError` whose one line says whose code failed,
with the original exception chained (its traceback goes to the log).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache
from importlib import metadata

from sslreg.errors import PluginError, UserError


@cache
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


@cache
def provider(module: str) -> str:
    """'distribution version' of the installed package that holds ``module`` ('' when none, e.g. a test module)."""
    names = _distributions().get(module.split(".")[0], [])
    if not names:
        return ""
    try:
        return f"{names[0]} {metadata.version(names[0])}"
    except metadata.PackageNotFoundError:
        return names[0]


def describe(component: object) -> str:
    """ "plugin sslreg-jigsaw 0.1.0, pretext 'jigsaw'" for a component instance or class."""
    cls = component if isinstance(component, type) else type(component)
    where = provider(cls.__module__) or cls.__module__
    kind, name = getattr(cls, "kind", "") or "component", getattr(cls, "name", "") or cls.__qualname__
    return f"plugin {where}, {kind} {name!r}"


@contextlib.contextmanager
def plugin_call(component: object, method: str) -> Iterator[None]:
    """Run plugin code; turn an internal failure into a PluginError naming plugin, component and ``method``."""
    try:
        yield
    except (UserError, OSError, PluginError):
        raise
    except Exception as error:
        text = str(error).strip().splitlines()
        detail = f"{type(error).__name__}: {text[-1]}" if text else type(error).__name__
        raise PluginError(f"{describe(component)}, {method}() failed: {detail}") from error


__all__ = ["describe", "plugin_call", "provider"]
