"""Environment switches: one reading of on/off for every ``SSLREG_*`` boolean variable."""

from __future__ import annotations

import os

#: Values that mean "off" (compared case-insensitively, surrounding blanks ignored); unset is off too.
OFF_VALUES = frozenset({"", "0", "false", "no", "off"})


def env_flag(name: str) -> bool:
    """True when the environment variable ``name`` is set to anything but 0/false/no/off/"" (unset: False)."""
    return os.environ.get(name, "").strip().lower() not in OFF_VALUES


def env_names(name: str) -> set[str] | None:
    """A comma-separated list variable as a set of names; None when unset ("" is the empty set)."""
    value = os.environ.get(name)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}
