"""Files written atomically, weights read safely, and the cache folder every component shares."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
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
    """Give a temporary file the usual permissions (mkstemp makes it private) and move it into place.

    The folder is synced too, so the new name survives a power cut, not only a killed process.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    os.replace(temporary, path)
    sync_folder(Path(path).parent)


def sync_folder(folder: str | os.PathLike[str]) -> None:
    """fsync a folder (its entries: renames, new files); a no-op where folders cannot be opened."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def with_filename(error: OSError, path: str | os.PathLike[str], size: int | None = None) -> OSError:
    """``error`` naming ``path`` when it names no file (writes through a descriptor lose the name).

    ``size``: the bytes that were being written, shown next to the free space when the disk is full.
    """
    if error.filename is None:
        error.filename = os.fspath(path)
    if size is not None:
        error.bytes_needed = size  # type: ignore[attr-defined]
    return error


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def free_space(path: str | os.PathLike[str]) -> int | None:
    """Free bytes on the disk holding ``path`` (or its nearest existing parent); None if unknown."""
    where = Path(path).absolute()
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        return shutil.disk_usage(where).free
    except OSError:
        return None


def human_size(size: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


#: Attribute naming the log file that should receive an error's traceback (set by ``sslreg run``).
LOG_ATTRIBUTE = "sslreg_log"


def attach_log(error: BaseException, path: str | os.PathLike[str]) -> None:
    """Mark ``error`` so the CLI writes its traceback to ``path`` (the innermost run's log wins)."""
    if getattr(error, LOG_ATTRIBUTE, None) is None:
        with contextlib.suppress(AttributeError, TypeError):
            setattr(error, LOG_ATTRIBUTE, Path(path))


def attached_log(error: BaseException) -> Path | None:
    """The log file :func:`attach_log` gave ``error``, if any."""
    return getattr(error, LOG_ATTRIBUTE, None)


def describe_os_error(error: OSError) -> str:
    """One line for a failed file operation: the path and what went wrong, with the free space on a full disk."""
    path = error.filename
    where = os.fspath(path) if path is not None else None
    if error.filename2 is not None:
        where = f"{where} -> {os.fspath(error.filename2)}"
    reason = error.strerror or str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        free = free_space(path) if path is not None else None
        left = f"{human_size(free)} free there" if free is not None else "free space unknown"
        needed = getattr(error, "bytes_needed", None)
        left = f"{human_size(needed)} needed, {left}" if needed else left
        target = f" writing {where}" if where else ""
        return f"disk full{target} ({reason.lower()}; {left}); free some space and run again"
    if error.errno == errno.ENAMETOOLONG and where:
        longest = max(Path(os.fspath(path)).parts, key=len)
        return f"{where}: file name too long ({len(longest)} characters in one name); choose a shorter name"
    return f"{where}: {reason}" if where else reason


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it is synced and renamed over ``path``, else removed.

    Readers never see half a file, and a killed process leaves the old file intact (plus at most a stale
    ``.NAME.*.part`` file, which the runner removes at the start of the next run). A failed write (a full disk)
    raises an OSError naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as error:
        error.filename = os.fspath(path)  # not the random temporary name
        raise
    try:
        with os.fdopen(handle, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        publish(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise with_filename(error, path) from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    try:
        with atomic_open(path, "wb") as stream:
            stream.write(data)
    except OSError as error:
        raise with_filename(error, path, len(data)) from None
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


def write_text_if_changed(text: str, path: str | os.PathLike[str]) -> bool:
    """Write ``text`` atomically unless the file already holds exactly it; True when written."""
    try:
        if Path(path).read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(text, path)
    return True


def load_weights_only(path: str | os.PathLike[str], map_location: Any = "cpu") -> Any:
    """``torch.load(weights_only=True)`` allowing numpy data types and nothing else extra."""
    with torch.serialization.safe_globals(NUMPY_SAFE_GLOBALS):
        return torch.load(os.fspath(path), map_location=map_location, weights_only=True)
