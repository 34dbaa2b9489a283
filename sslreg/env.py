"""Environment switches: one reading of 'on' and 'off' for every SSLREG_* flag."""

from __future__ import annotations

import os

#: Values that mean off (case-insensitive); anything else non-empty means on.
OFF_VALUES = frozenset({"", "0", "false", "no", "off"})


def env_flag(name: str) -> bool:
    """True when the environment variable ``name`` is set to something other than 0/false/no/off/empty."""
    return os.environ.get(name, "").strip().lower() not in OFF_VALUES
