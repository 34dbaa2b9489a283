"""Files written atomically, weights read safely, and the cache folder every component shares."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

CACHE_ENV = "SSLREG_CACHE"


def cache_dir(name: str, override: str | os.PathLike[str] | None = None) -> Path:
    """``override`` if given, else ``$SSLREG_CACHE/<name>``, else ``~/.cache/sslreg/<name>``."""
    if override is not None:
        return Path(override).expanduser()
    root = os.environ.get(CACHE_ENV)
    return (Path(root) if root else Path.home() / ".cache" / "sslreg") / name


def publish(temporary: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Give a temporary file the usual permissions (mkstemp makes it private) and move it into place."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    os.replace(temporary, path)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it is synced and renamed over ``path``, else removed.

    Readers never see half a file, and a killed process leaves the old file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        publish(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as stream:
        stream.write(data)
    return Path(path)


def atomic_write_text(text: str, path: str | os.PathLike[str]) -> Path:
    """Write a UTF-8 text file atomically."""
    with atomic_open(path, "w") as stream:
        stream.write(text)
    return Path(path)


def _numpy_globals() -> list[Any]:
    """numpy's array, scalar and dtype reconstructors: data only, no callable that can run arbitrary code."""
    core = getattr(np, "_core", None) or np.core  # numpy 2 renamed np.core to np._core
    dtype_classes = {type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDGSUV"}
    return [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype, *sorted(dtype_classes, key=str)]


#: Exactly the globals allowed on top of torch's own weights-only set (never ``getattr``).
NUMPY_SAFE_GLOBALS: list[Any] = _numpy_globals()


def load_weights_only(path: str | os.PathLike[str], map_location: Any = "cpu") -> Any:
    """``torch.load(weights_only=True)`` allowing numpy data types and nothing else extra."""
    with torch.serialization.safe_globals(NUMPY_SAFE_GLOBALS):
        return torch.load(os.fspath(path), map_location=map_location, weights_only=True)
