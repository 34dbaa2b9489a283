"""Where the plugin caches what it computes (gamut bins, colour priors), and atomic writes into it."""

from __future__ import annotations

import os
from pathlib import Path

from sslreg import atomic_write_bytes, cache_dir

__all__ = ["atomic_write_bytes", "default_cache_dir", "resolve_cache_dir"]


def default_cache_dir() -> Path:
    """``$SSLREG_CACHE/colorization`` when the variable is set, else ``~/.cache/sslreg/colorization``."""
    return cache_dir("colorization")


def resolve_cache_dir(cache_dir_option: str | os.PathLike[str] | None) -> Path:
    """The given directory, or the default one."""
    return cache_dir("colorization", cache_dir_option or None)
