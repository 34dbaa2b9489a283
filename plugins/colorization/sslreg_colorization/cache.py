"""Where the plugin caches what it computes (gamut bins, colour priors), and atomic writes into it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

CACHE_ENV = "SSLREG_CACHE"


def default_cache_dir() -> Path:
    """``$SSLREG_CACHE/colorization`` when the variable is set, else ``~/.cache/sslreg/colorization``."""
    root = os.environ.get(CACHE_ENV)
    return Path(root) / "colorization" if root else Path.home() / ".cache" / "sslreg" / "colorization"


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    """The given directory, or the default one."""
    return Path(cache_dir).expanduser() if cache_dir else default_cache_dir()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
