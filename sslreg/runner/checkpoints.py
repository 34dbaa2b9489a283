"""Checkpoint files of a run: ``epoch_N.pth`` beside a sha256 sidecar, verified before use, pruned only after.

A checkpoint is written as ``.epoch_N.pth.part``, synced, hashed into ``epoch_N.pth.sha256`` (the format of
``sha256sum``, so ``sha256sum -c epoch_N.pth.sha256`` checks it by hand), then renamed into place. A checkpoint
without a matching sidecar is never loaded: a resume takes the newest one that verifies, and says which it
skipped. Older checkpoints are deleted only once a newer one is complete.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from sslreg.files import atomic_write_text, sha256_file

CHECKPOINT = re.compile(r"^epoch_(\d+)\.pth$")
SIDECAR_SUFFIX = ".sha256"


def sidecar(path: Path) -> Path:
    """``epoch_N.pth`` -> ``epoch_N.pth.sha256``."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """Every ``epoch_N.pth`` in ``run_dir`` as (N, path), oldest first (valid or not)."""
    found = [(int(m.group(1)), p) for p in run_dir.glob("epoch_*.pth") if (m := CHECKPOINT.match(p.name))]
    return sorted(found)


def write_sidecar(path: Path, digest: str) -> Path:
    """Record ``digest`` as the sha256 of ``path`` (atomically)."""
    return atomic_write_text(f"{digest}  {path.name}\n", sidecar(path))


def problem(path: Path) -> str | None:
    """Why ``path`` must not be loaded (no or bad sidecar, size or checksum mismatch), or None if it verifies."""
    try:
        recorded = sidecar(path).read_text(encoding="utf-8").split()
    except FileNotFoundError:
        return f"no checksum file {sidecar(path).name}"
    except (OSError, UnicodeDecodeError) as error:
        return f"unreadable checksum file {sidecar(path).name} ({error})"
    if len(recorded) != 2 or recorded[1] != path.name or not re.fullmatch(r"[0-9a-f]{64}", recorded[0]):
        return f"malformed checksum file {sidecar(path).name}"
    try:
        actual = sha256_file(path)
    except OSError as error:
        return f"unreadable ({error.strerror or error})"
    if actual != recorded[0]:
        return "checksum mismatch (truncated or corrupt)"
    return None


def latest_valid(run_dir: Path, warn: Callable[[str], None] = print) -> Path | None:
    """The newest checkpoint that verifies; every newer one that does not is named in a warning."""
    for _, path in reversed(checkpoints(run_dir)):
        why = problem(path)
        if why is None:
            return path
        warn(f"pretrain: warning: skipping {path}: {why}")
    return None


def prune(run_dir: Path, keep: int, newest: int) -> list[Path]:
    """After checkpoint ``newest`` is complete: keep it and the ``keep - 1`` before it, delete the rest.

    Checkpoints numbered above ``newest`` are leftovers a resume skipped as invalid; they go too.
    """
    found = checkpoints(run_dir)
    kept = [step for step, _ in found if step <= newest][-keep:]
    removed = []
    for step, path in found:
        if step not in kept:
            path.unlink(missing_ok=True)
            sidecar(path).unlink(missing_ok=True)
            removed.append(path)
    return removed


def clean_leftovers(run_dir: Path) -> list[Path]:
    """Remove what a killed run can leave: ``.NAME.part`` files (checkpoints, atomic writes) and orphan sidecars.

    Only call this while holding the run folder's lock (a running run's ``.part`` files are in use).
    """
    removed = []
    folders = [run_dir, *(run_dir / sub for sub in ("stages", "features", "prepare"))]
    for folder in folders:
        if not folder.is_dir():
            continue
        pattern = "*" if folder == run_dir else "**/*"
        for path in folder.glob(pattern):
            if path.name.startswith(".") and path.name.endswith((".part", ".tmp")) and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    for path in run_dir.glob(f"epoch_*.pth{SIDECAR_SUFFIX}"):
        if not path.with_name(path.name[: -len(SIDECAR_SUFFIX)]).exists():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
