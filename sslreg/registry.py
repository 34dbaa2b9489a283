"""One registry per component kind: lookup with did-you-mean, build from a config dict, provenance per entry."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sslreg.backbone import Backbone
from sslreg.component import Component, ComponentConfig
from sslreg.dataset import DatasetSource
from sslreg.evaluator import Evaluator
from sslreg.pretext import PretextTask

#: The four kinds and the base class that defines each.
KINDS: dict[str, type] = {
    "backbone": Backbone,
    "pretext": PretextTask,
    "dataset": DatasetSource,
    "evaluator": Evaluator,
}


class RegistryError(Exception):
    """A component could not be registered or found."""


class UnknownComponent(RegistryError, LookupError):
    """No component of that kind has that name; carries close names as suggestions."""

    def __init__(self, kind: str, name: str, suggestions: list[str]) -> None:
        hint = f"; did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(f"unknown {kind} {name!r}{hint}")
        self.kind, self.name, self.suggestions = kind, name, suggestions


@dataclass(frozen=True)
class Entry:
    """A registered component with the plugin and distribution that provided it."""

    kind: str
    name: str
    cls: type
    plugin: str
    distribution: str
    version: str

    @property
    def summary(self) -> str:
        return self.cls.summary()

    @property
    def provider(self) -> str:
        return f"{self.distribution} {self.version}".strip()


def kind_of(cls: type) -> str:
    """The kind a component class belongs to, from its base class."""
    if isinstance(cls, type):
        for kind, base in KINDS.items():
            if issubclass(cls, base):
                return kind
    raise RegistryError(
        f"{getattr(cls, '__qualname__', cls)!r} is not a component: subclass one of "
        + ", ".join(base.__name__ for base in KINDS.values())
    )


class Registry:
    """All registered components, by kind then name."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}

    def add(self, cls: type, plugin: str = "", distribution: str = "", version: str = "") -> Entry:
        """Register ``cls``; a taken name is an error naming both providers."""
        kind = kind_of(cls)
        name = getattr(cls, "name", "")
        if not isinstance(name, str) or not name:
            raise RegistryError(f"{cls.__qualname__}: set the class attribute 'name' to a non-empty string")
        if not (isinstance(cls.Config, type) and issubclass(cls.Config, ComponentConfig)):
            raise RegistryError(f"{cls.__qualname__}.Config must subclass sslreg.ComponentConfig")
        taken = self._entries[kind].get(name)
        if taken is not None:
            raise RegistryError(
                f"{kind} {name!r} from plugin {plugin!r} is already registered by plugin {taken.plugin!r}"
                f" ({taken.provider})"
            )
        entry = Entry(kind, name, cls, plugin, distribution, version)
        self._entries[kind][name] = entry
        return entry

    def remove(self, entries: Iterable[Entry]) -> None:
        """Undo registrations (a plugin that failed half way is rolled back)."""
        for entry in entries:
            if self._entries[entry.kind].get(entry.name) is entry:
                del self._entries[entry.kind][entry.name]

    def get(self, kind: str, name: str) -> Entry:
        """The entry ``name`` of ``kind``, or UnknownComponent with close names."""
        if kind not in KINDS:
            raise UnknownComponent("kind", kind, difflib.get_close_matches(kind, KINDS, n=2))
        try:
            return self._entries[kind][name]
        except KeyError:
            close = difflib.get_close_matches(str(name), self._entries[kind], n=3, cutoff=0.6)
            raise UnknownComponent(kind, name, close) from None

    def find(self, name: str) -> list[Entry]:
        """Entries of any kind called ``name``."""
        return [entries[name] for entries in self._entries.values() if name in entries]

    def suggest(self, name: str) -> list[str]:
        """Close names across all kinds."""
        every = [n for entries in self._entries.values() for n in entries]
        return difflib.get_close_matches(name, every, n=3, cutoff=0.6)

    def list(self, kind: str | None = None, pattern: str = "*") -> list[Entry]:
        """Entries sorted by kind then name, filtered by kind and a shell-style wildcard."""
        kinds = [kind] if kind else list(KINDS)
        return [
            entry
            for k in kinds
            for name, entry in sorted(self._entries[k].items())
            if fnmatch.fnmatchcase(name, pattern)
        ]

    def config(self, kind: str, options: dict[str, Any] | ComponentConfig) -> ComponentConfig:
        """Validate ``options`` (with its 'name') against the component's Config; pydantic errors propagate."""
        if isinstance(options, ComponentConfig):
            return options
        entry = self.get(kind, options["name"])
        return entry.cls.Config.model_validate(dict(options))

    def build(self, kind: str, options: dict[str, Any] | ComponentConfig) -> Any:
        """Instantiate a component from its options."""
        config = self.config(kind, options)
        return self.get(kind, config.name).cls(config)

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._entries.values())


__all__ = ["KINDS", "Component", "Entry", "Registry", "RegistryError", "UnknownComponent", "kind_of"]
