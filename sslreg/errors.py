"""Errors that mean the user (a config, a file, a plugin's options) is wrong: the CLI prints them as one line, exit 2.

Raise :class:`UserError` at the boundaries (config, data, files, plugin options) with a line that names what is
wrong and where. Anything else that escapes is an internal error: one line pointing to the log, traceback there.
``UserError`` subclasses ValueError so code that already catches ValueError keeps working.
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake outside sslreg's code: a bad path, bad data, a bad value. Components raise it with a clear line."""


class NoReadableImages(UserError):
    """Feature extraction found not one readable image in a dataset (each was skipped and counted)."""


class ConfigError(UserError):
    """A config is wrong; ``problems`` holds one line per problem, each naming its dotted path."""

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(prefix + problem for problem in problems))


class PluginError(RuntimeError):
    """A plugin's code failed at run time (not a user mistake); the message names plugin, component and method."""
