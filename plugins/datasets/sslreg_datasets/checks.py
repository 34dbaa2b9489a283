"""Cheap checks of the paths a config names, worded for ``DatasetSource.check``: one line per problem.

Each line starts with the option it concerns (``root '/data/VOC2007' does not exist``). Sources raise the same
lines as a UserError when built on bad paths, so a mistake reads the same from ``sslreg validate`` and later.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from sslreg import UserError


def _exists(path: Path) -> bool:
    """Path.exists, False for a path the OS cannot take (an embedded NUL byte, a name too long)."""
    try:
        os.stat(path)
    except (OSError, ValueError):
        return False
    return True


def folder_problem(option: str, value: str | os.PathLike[str]) -> str | None:
    """What is wrong with folder ``value`` of ``option`` (missing, not a folder, unreadable), or None."""
    path = Path(value).expanduser()
    if not _exists(path):
        return f"{option} {str(value)!r} does not exist"
    if not path.is_dir():
        return f"{option} {str(value)!r} is not a folder"
    if not os.access(path, os.R_OK | os.X_OK):
        return f"{option} {str(value)!r} cannot be read (permission denied)"
    return None


def file_problem(option: str, value: str | os.PathLike[str]) -> str | None:
    """What is wrong with file ``value`` of ``option`` (missing, a folder, unreadable), or None."""
    path = Path(value).expanduser()
    if not _exists(path):
        return f"{option} {str(value)!r} does not exist"
    if path.is_dir():
        return f"{option} {str(value)!r} is a folder, not a file"
    if not os.access(path, os.R_OK):
        return f"{option} {str(value)!r} cannot be read (permission denied)"
    return None


def extensions_text(extensions: Sequence[str]) -> str:
    """'.jpg, .png, ...' for a message."""
    return ", ".join(ext if ext.startswith(".") else "." + ext for ext in extensions)


def raise_problems(source: str, problems: Sequence[str]) -> None:
    """A UserError naming the source and every problem on one line; nothing when there is none."""
    if problems:
        raise UserError(f"dataset {source!r}: " + "; ".join(problems))


def first_line(file: Path) -> tuple[int, str] | None:
    """(line number, text) of the first non-blank, non-'#' line of a list file, reading no further."""
    try:
        with open(file, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                text = line.strip()
                if text and not text.startswith("#"):
                    return number, text
    except OSError:
        return None
    return None
