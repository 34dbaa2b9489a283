"""One registry per component kind: lookup with did-you-mean, build from a config dict, provenance per entry."""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sslreg.backbone import Backbone
from sslreg.component import Component, ComponentConfig
from sslreg.dataset import DatasetSource
from sslreg.errors import UserError
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


class UnknownComponent(RegistryError, LookupError, UserError):
    """No component of that kind has that name (a user mistake); carries close names as suggestions."""

    def __init__(self, kind: str, name: str, suggestions: list[str], note: str = "") -> None:
        hint = f"; did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(f"unknown {kind} {name!r}" + (f" ({note})" if note else "") + hint)
        self.kind, self.name, self.suggestions = kind, name, suggestions


class AmbiguousComponent(UnknownComponent):
    """Several plugins provide a component of that kind and name: the config must name one as DISTRIBUTION:NAME."""

    def __init__(self, kind: str, name: str, qualified_names: list[str]) -> None:
        names = [repr(q) for q in qualified_names]
        both = "both " + " and ".join(names) if len(names) == 2 else ", ".join(names[:-1]) + " and " + names[-1]
        RegistryError.__init__(self, f"{kind} {name!r} is ambiguous: {both} provide it; name one of them")
        self.kind, self.name, self.suggestions = kind, name, qualified_names


def canonical_distribution(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): lower case, runs of -_. as one '-'."""
    return re.sub(r"[-_.]+", "-", name).lower()


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

    @property
    def qualified_name(self) -> str:
        """``DISTRIBUTION:NAME`` (the plugin's entry-point name when there is no distribution)."""
        qualifier = self.distribution or self.plugin
        return f"{qualifier}:{self.name}" if qualifier else self.name

    def answers_to(self, qualifier: str) -> bool:
        """Whether ``qualifier`` (before the ':') names this entry's distribution or plugin."""
        if self.distribution and canonical_distribution(self.distribution) == canonical_distribution(qualifier):
            return True
        return bool(self.plugin) and self.plugin == qualifier


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
    """All registered components, by kind then name; one name may have several providers (see ``get``).

    A component is found by its bare name (``jigsaw``) when one plugin provides it, or by its qualified name
    ``DISTRIBUTION:NAME`` (``sslreg-jigsaw:jigsaw``; the plugin's entry-point name works too) always.
    """

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, list[Entry]]] = {kind: {} for kind in KINDS}
        #: Set by the plugin loader: why a lookup may miss a name (plugins an environment switch excluded).
        self.exclusion_note: Callable[[str, str], str] = lambda kind, name: ""

    def add(self, cls: type, plugin: str = "", distribution: str = "", version: str = "") -> Entry:
        """Register ``cls``; the same name twice from one distribution (or plugin) is an error naming both."""
        kind = kind_of(cls)
        name = getattr(cls, "name", "")
        if not isinstance(name, str) or not name:
            raise RegistryError(f"{cls.__qualname__}: set the class attribute 'name' to a non-empty string")
        if ":" in name:
            raise RegistryError(f"{cls.__qualname__}: name {name!r} must not contain ':' (it separates qualifiers)")
        if not (isinstance(cls.Config, type) and issubclass(cls.Config, ComponentConfig)):
            raise RegistryError(f"{cls.__qualname__}.Config must subclass sslreg.ComponentConfig")
        entry = Entry(kind, name, cls, plugin, distribution, version)
        for taken in self._entries[kind].get(name, []):
            if taken.qualified_name == entry.qualified_name:
                raise RegistryError(
                    f"{kind} {name!r} from plugin {plugin!r} is already registered by plugin {taken.plugin!r}"
                    f" ({taken.provider or 'same distribution'})"
                )
        self._entries[kind].setdefault(name, []).append(entry)
        return entry

    def remove(self, entries: Iterable[Entry]) -> None:
        """Undo registrations (a plugin that failed half way is rolled back)."""
        for entry in entries:
            providers = self._entries[entry.kind].get(entry.name, [])
            providers[:] = [taken for taken in providers if taken is not entry]
            if not providers:
                self._entries[entry.kind].pop(entry.name, None)

    def _matches(self, kind: str, name: str) -> list[Entry]:
        qualifier, colon, bare = str(name).rpartition(":")
        providers = sorted(self._entries[kind].get(bare, []), key=lambda entry: entry.qualified_name)
        return [entry for entry in providers if entry.answers_to(qualifier)] if colon else providers

    def get(self, kind: str, name: str) -> Entry:
        """The entry ``name`` (bare or ``DISTRIBUTION:NAME``) of ``kind``.

        Raises UnknownComponent with close names when there is none, and its subclass AmbiguousComponent
        (naming every qualified name) when a bare name has several providers.
        """
        if kind not in KINDS:
            raise UnknownComponent("kind", kind, difflib.get_close_matches(kind, KINDS, n=2))
        found = self._matches(kind, name)
        if len(found) == 1:
            return found[0]
        if found:
            raise AmbiguousComponent(kind, name, [entry.qualified_name for entry in found])
        known = [entry.qualified_name for entry in self.list(kind)] if ":" in str(name) else self._entries[kind]
        close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.6)
        raise UnknownComponent(kind, name, close, self.exclusion_note(kind, str(name)))

    def find(self, name: str) -> list[Entry]:
        """Entries of any kind called ``name`` (bare: every provider; qualified: that provider's)."""
        return [entry for kind in KINDS for entry in self._matches(kind, name)]

    def suggest(self, name: str) -> list[str]:
        """Close names across all kinds."""
        every = sorted({n for entries in self._entries.values() for n in entries})
        return difflib.get_close_matches(name, every, n=3, cutoff=0.6)

    def is_ambiguous(self, entry: Entry) -> bool:
        """Whether another plugin provides a component of the same kind and name (the bare name is ambiguous)."""
        return len(self._entries[entry.kind].get(entry.name, [])) > 1

    def list(self, kind: str | None = None, pattern: str = "*") -> list[Entry]:
        """Entries sorted by kind then name, filtered by kind and a shell-style wildcard (bare or qualified name)."""
        kinds = [kind] if kind else list(KINDS)
        return [
            entry
            for k in kinds
            for name, providers in sorted(self._entries[k].items())
            for entry in sorted(providers, key=lambda entry: entry.qualified_name)
            if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(entry.qualified_name, pattern)
        ]

    def config(self, kind: str, options: dict[str, Any] | ComponentConfig) -> ComponentConfig:
        """Validate ``options`` (with its 'name', bare or qualified) against the component's Config.

        pydantic errors propagate; the name is kept as written, so a qualified name still finds its component.
        """
        if isinstance(options, ComponentConfig):
            return options
        entry = self.get(kind, options["name"])
        return entry.cls.Config.model_validate(dict(options))

    def build(self, kind: str, options: dict[str, Any] | ComponentConfig) -> Any:
        """Instantiate a component from its options (a failure in its constructor names the plugin)."""
        from sslreg.calls import plugin_call

        config = self.config(kind, options)
        cls = self.get(kind, config.name).cls
        with plugin_call(cls, "__init__"):
            return cls(config)

    def __len__(self) -> int:
        return sum(len(providers) for entries in self._entries.values() for providers in entries.values())


__all__ = [
    "KINDS",
    "AmbiguousComponent",
    "Component",
    "Entry",
    "Registry",
    "RegistryError",
    "UnknownComponent",
    "canonical_distribution",
    "kind_of",
]
