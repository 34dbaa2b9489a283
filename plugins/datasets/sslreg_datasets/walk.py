"""Folder scans that end on any tree: every folder is entered once, whatever links point at it.

``os.walk(followlinks=True)`` loops on a link to a parent folder (it stops only at the OS's path-length limit,
listing every image again on each turn). Here a folder is identified by the (st_dev, st_ino) of what it resolves
to and entered at most once, and a file reached through a link is listed only when its target is not listed
already: the direct path wins over a link, and among links the first in sorted order. Folders behave the same
way: linked folders are entered after every folder reachable without a link, so a folder that is also reachable
directly is listed under its direct path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple


class Found(NamedTuple):
    """A file ``walk`` found: its '/'-separated path under the top, the folder it was listed in, its link target."""

    relative: str
    folder: str
    linked_target: str | None


def normalized_extensions(extensions: Sequence[str]) -> frozenset[str]:
    """Lower-case extensions with a leading dot ('JPG' and '.jpg' both become '.jpg')."""
    return frozenset(ext.lower() if ext.startswith(".") else "." + ext.lower() for ext in extensions)


def walk(folder: Path, extensions: Sequence[str], ordered: bool = True) -> Iterator[Found]:
    """Files under ``folder`` (any depth, links followed) with one of ``extensions``.

    ``ordered``: depth first in name order (each folder is listed whole, then sorted); otherwise in the order
    the OS lists entries, yielding as it goes (the first file comes at once, even from a folder of millions).
    Folders reached through a link come after all the others; unreadable sub-folders are skipped. A file reached
    twice through links may be yielded twice here; ``scan`` removes the repeats (it needs the whole list to know
    which path is direct).
    """
    wanted = normalized_extensions(extensions)
    visited: set[tuple[int, int]] = set()
    stack = [(str(folder), "")]
    linked: list[tuple[str, str]] = []  # linked folders, entered once no direct folder is left
    while stack or linked:
        directory, prefix = stack.pop() if stack else linked.pop(0)
        try:
            status = os.stat(directory)
            if (status.st_dev, status.st_ino) in visited:
                continue
            visited.add((status.st_dev, status.st_ino))
            listing = os.scandir(directory)
        except OSError:
            continue
        subfolders: list[tuple[str, str]] = []
        with listing:
            try:
                for entry in sorted(listing, key=lambda entry: entry.name) if ordered else listing:
                    try:
                        is_folder = entry.is_dir()  # follows links
                        is_link = entry.is_symlink()
                    except OSError:
                        continue
                    if is_folder:
                        (linked if is_link else subfolders).append((entry.path, f"{prefix}{entry.name}/"))
                    elif os.path.splitext(entry.name)[1].lower() in wanted:
                        yield Found(prefix + entry.name, directory, os.path.realpath(entry.path) if is_link else None)
            except OSError:
                pass  # the folder became unreadable while listed: keep what was found
        stack.extend(reversed(subfolders))


def scan(folder: Path, extensions: Sequence[str]) -> list[str]:
    """Sorted relative paths of the files ``walk`` finds, each file listed once (see the module doc)."""
    found = list(walk(folder, extensions))
    links = [item for item in found if item.linked_target is not None]
    if not links:
        return sorted(item.relative for item in found)
    real_folders: dict[str, str] = {}

    def real_path(item: Found) -> str:
        if item.folder not in real_folders:
            real_folders[item.folder] = os.path.realpath(item.folder)
        return os.path.join(real_folders[item.folder], os.path.basename(item.relative))

    direct = [item for item in found if item.linked_target is None]
    taken = {real_path(item) for item in direct}
    keep = [item.relative for item in direct]
    for item in sorted(links):
        if item.linked_target not in taken:
            taken.add(str(item.linked_target))
            keep.append(item.relative)
    return sorted(keep)


def first(folder: Path, extensions: Sequence[str]) -> str | None:
    """Some file ``walk`` finds, None when there is none: a cheap 'does it hold any image' test."""
    return next((item.relative for item in walk(folder, extensions, ordered=False)), None)
