"""``{{$VAR}}``, ``{{$VAR:default}}`` and ``{{ fileDirname }}``-style placeholders, substituted in parsed values.

mmengine substitutes these into the file's text and re-parses it with PyYAML's unsafe loader, so a variable or
a folder name could smuggle in a ``!!python/object/apply`` tag. Here a placeholder is only ever replaced inside
one string value that was already parsed safely; the result is text, or, for a value that is exactly one
``{{$VAR...}}``, a YAML number, bool or null read by the plain-scalar resolver (never a tag, list or mapping).

An unset (or empty) variable takes its default; ``{{$VAR:}}`` has no default, as in mmengine. File placeholders
name the file the value is written in: ``fileDirname`` (its folder, absolute), ``fileBasename``,
``fileBasenameNoExtension``, ``fileExtname``; they stay text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FILE_VARIABLES = ("fileDirname", "fileBasename", "fileBasenameNoExtension", "fileExtname")
_ANY = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_ENV = re.compile(r"""\s*(['"]?)\s*\$(\w+)\s*(?::\s*(.*?))?\s*\1\s*""", re.DOTALL)
_FILE = re.compile(r"\s*(" + "|".join(FILE_VARIABLES) + r")\s*")
_TYPED = {
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


@dataclass(frozen=True)
class Placeholder:
    """A string value holding ``{{ }}`` as written in ``file``, substituted after files and overrides merge."""

    text: str
    file: Path
    shown: str  # the file as named in messages


@dataclass
class Substitution:
    """What substituting one value did: the value, variables that fell back to their default, and problems."""

    value: Any
    defaulted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def file_variables(path: Path) -> dict[str, str]:
    """mmengine's predefined variables for the file at ``path`` (backslashes turned into slashes, as there)."""
    path = path.absolute()
    values = {
        "fileDirname": str(path.parent),
        "fileBasename": path.name,
        "fileBasenameNoExtension": path.stem,
        "fileExtname": path.suffix,
    }
    return {key: value.replace("\\", "/") for key, value in values.items()}


def typed_scalar(text: str) -> Any:
    """``text`` as YAML would read it as a plain scalar, when that is a number, bool or null; else ``text``."""
    tag = yaml.resolver.Resolver().resolve(yaml.ScalarNode, text, (True, False))
    if tag not in _TYPED:
        return text
    try:
        return yaml.constructor.SafeConstructor().construct_object(yaml.ScalarNode(tag, text))
    except ValueError:  # e.g. an integer longer than Python's digit limit
        return text


def substitute(placeholder: Placeholder, environ: Mapping[str, str] | None = None) -> Substitution:
    """Replace every placeholder in ``placeholder.text``; unresolvable ones stay as written and are reported."""
    environ = os.environ if environ is None else environ
    files = file_variables(placeholder.file)
    result = Substitution(None)
    typed = False

    def replace(match: re.Match[str]) -> str:
        nonlocal typed
        inner = match.group(1)
        env = _ENV.fullmatch(inner)
        if env:
            name, default = env.group(2), env.group(3) or None
            value = environ.get(name) or None
            if value is None and default is not None:
                value = default
                result.defaulted.append(name)
            if value is None:
                result.missing.append(name)
                return match.group(0)
            typed = True
            return value
        known = _FILE.fullmatch(inner)
        if known:
            return files[known.group(1)]
        result.unknown.append(match.group(0))
        return match.group(0)

    text = _ANY.sub(replace, placeholder.text)
    whole = _ANY.fullmatch(placeholder.text) is not None
    result.value = typed_scalar(text) if whole and typed and not result.missing else text
    return result


__all__ = ["FILE_VARIABLES", "Placeholder", "Substitution", "file_variables", "substitute", "typed_scalar"]
