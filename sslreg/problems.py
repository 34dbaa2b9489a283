"""Config problems as data: where (file, line, dotted path) and what, printed one line each or as JSON."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sslreg.errors import ConfigError


def format_loc(loc: Sequence[Any]) -> str:
    """('evaluate', 0, 'layers') -> 'evaluate[0].layers'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def describe_type(value: Any) -> str:
    """'a mapping', 'a list', 'a string', 'a number', ... for messages about a value of the wrong kind."""
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, (int, float)):
        return "a number"
    names = {dict: "a mapping", list: "a list", str: "a string", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def one_line(text: str) -> str:
    """``text`` with line breaks escaped, so a problem (or a file name holding a newline) stays one line."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config: ``message`` about the value at ``path`` written in ``source`` (at ``line``)."""

    message: str
    path: str = ""
    source: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = self.source + (f":{self.line}" if self.source and self.line else "")
        return one_line(": ".join(part for part in (where, self.path, self.message) if part))

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class ConfigProblems(ConfigError):
    """A ConfigError whose problems also come as :class:`Problem` records (for ``sslreg validate --json``).

    ``problems`` holds the formatted lines (``FILE: PATH: MESSAGE``), so code that prints a ConfigError's
    problems one per line prints these the same way.
    """

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.records = list(dict.fromkeys(problems))
        super().__init__([str(problem) for problem in self.records])


def refuse(message: str, source: str = "", line: int | None = None, path: str = "") -> ConfigProblems:
    """A one-problem ConfigProblems, for refusals that stop loading (the caller raises it)."""
    return ConfigProblems([Problem(message, path, source, line)])


def problem_records(error: ConfigError) -> list[Problem]:
    """The Problem records of any ConfigError (plain ones become records without a path)."""
    if isinstance(error, ConfigProblems):
        return error.records
    return [Problem(one_line(line), source=error.source) for line in error.problems]


__all__ = ["ConfigProblems", "Problem", "describe_type", "format_loc", "one_line", "problem_records", "refuse"]
