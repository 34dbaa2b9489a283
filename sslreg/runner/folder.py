"""A run folder bound to one trunk: a fingerprint of what decides the trunk's weights, and a lock.

The fingerprint covers the resolved ``pretrain`` section (or, without one, the ``backbone`` section and the
sha256 of its weights file), the seed, and the sslreg and plugin versions of the components that make the
trunk. A folder holding work of another fingerprint is refused with the differing keys named; the
``evaluate`` section is not part of it (each evaluator is its own stage, see :mod:`sslreg.runner.stages`).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

import sslreg
from sslreg.errors import UserError
from sslreg.experiment import ExperimentConfig
from sslreg.files import atomic_write_text, sha256_file, write_text_if_changed
from sslreg.registry import Registry

LOCK_FILE = "sslreg.lock"
CLAIM_FILE = "fingerprint.json"
CONFIG_FILE = "config.yaml"
LOG_FILE = "sslreg.log"
#: Options of ``pretrain`` that do not change the trained weights: changing them keeps a folder's work (raising
#: max_bad_fraction after a run stopped for bad images resumes it).
OPERATIONAL = (
    ("schedule", "log_interval"),
    ("schedule", "keep_checkpoints"),
    ("schedule", "checkpoint_interval"),
    ("data", "max_bad_fraction"),
)


class FolderLock:
    """An exclusive ``flock`` on ``folder/sslreg.lock`` for the whole run; a second run refuses at once.

    The lock dies with its process (a killed run never leaves the folder locked). The file keeps the holder's
    pid so the refusal can name it.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.handle: int | None = None

    def __enter__(self) -> FolderLock:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise UserError(f"{self.folder}: exists and is not a folder; work_dir must name a folder") from None
        except NotADirectoryError as error:
            raise UserError(f"{self.folder}: {error.filename or 'a parent'} is a file, not a folder") from None
        path = self.folder / LOCK_FILE
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = os.pread(handle, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(handle)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise UserError(
                f"{self.folder}: in use by another sslreg run (pid {holder}); wait for it to end,"
                " or use --set work_dir=... for a separate run"
            ) from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
        self.handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            os.close(self.handle)  # releases the lock; the file stays (removing it would race a new holder)
            self.handle = None


def _provider(registry: Registry, kind: str, name: str) -> str:
    try:
        entry = registry.get(kind, name)
    except LookupError:
        return "?"
    return f"{entry.distribution or entry.plugin} {entry.version}".strip()


def trunk_identity(experiment: ExperimentConfig, registry: Registry) -> dict[str, Any]:
    """Everything that decides the trunk's weights, as plain data (the fingerprint is its hash)."""
    identity: dict[str, Any] = {"seed": experiment.seed}
    versions = {"sslreg": sslreg.__version__}
    if experiment.pretrain is not None:
        pretrain = experiment.pretrain.model_dump(mode="json")
        for section, key in OPERATIONAL:
            pretrain.get(section, {}).pop(key, None)
        identity["pretrain"] = pretrain
        for kind, spec in (
            ("pretext", experiment.pretrain.pretext),
            ("backbone", experiment.pretrain.backbone),
            ("dataset", experiment.pretrain.data),
        ):
            versions[kind] = _provider(registry, kind, spec.name)
    elif experiment.backbone is not None:
        identity["backbone"] = experiment.backbone.model_dump(mode="json")
        versions["backbone"] = _provider(registry, "backbone", experiment.backbone.name)
        weights = experiment.backbone.weights
        if weights and Path(weights).is_file():
            identity["weights_sha256"] = sha256_file(weights)
    identity["versions"] = versions
    return identity


def fingerprint_of(identity: dict[str, Any]) -> str:
    """A short stable hash of plain data."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Dotted paths where ``old`` and ``new`` differ, each as 'path: old -> new'."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            line
            for key in dict.fromkeys([*old, *new])
            for line in differences(old.get(key), new.get(key), f"{path}.{key}".lstrip("."))
        ]
    if old == new:
        return []

    def short(value: Any) -> str:
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."

    return [f"{path or '(top)'}: {short(old)} -> {short(new)}"]


def has_work(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds anything a run produced (checkpoints, trunk, stage records)."""
    return (
        any(run_dir.glob("epoch_*.pth")) or (run_dir / "trunk.pth").exists() or any((run_dir / "stages").glob("*.json"))
    )


def _read_claim(path: Path) -> tuple[dict[str, Any] | None, str]:
    try:
        claim = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, "missing"
    except (OSError, ValueError) as error:
        return None, f"unreadable: {error}"
    if not isinstance(claim, dict) or not isinstance(claim.get("fingerprint"), str):
        return None, "malformed"
    return claim, ""


def claim(run_dir: Path, experiment: ExperimentConfig, registry: Registry) -> str:
    """Bind ``run_dir`` to this experiment's trunk and return its fingerprint; refuse a folder of another trunk.

    A folder with no work in it yet (a run that failed before its first checkpoint) is simply re-bound.
    Also writes the current resolved config as ``config.yaml`` (for people; decisions use the fingerprint).
    """
    identity = trunk_identity(experiment, registry)
    fingerprint = fingerprint_of(identity)
    path = run_dir / CLAIM_FILE
    old, why = _read_claim(path)
    if (old is None or old["fingerprint"] != fingerprint) and has_work(run_dir):
        if old is None:
            raise UserError(
                f"{run_dir}: holds a run but its {CLAIM_FILE} is {why} (made by an older sslreg?); use --set"
                f" work_dir=... for this run, or delete {run_dir} to start over"
            )
        changed = differences(old.get("identity", {}), identity)
        shown = "; ".join(changed[:3]) + (f"; +{len(changed) - 3} more" if len(changed) > 3 else "")
        raise UserError(
            f"{run_dir}: holds a run of another config ({shown or 'fingerprint differs'}); use --set"
            f" work_dir=... for this one, or delete {run_dir} to start over"
        )
    if old is None or old["fingerprint"] != fingerprint:
        atomic_write_text(json.dumps({"fingerprint": fingerprint, "identity": identity}, indent=1) + "\n", path)
    resolved = experiment.model_dump(mode="json")
    resolved.pop("work_dir", None)
    write_text_if_changed(yaml.safe_dump(resolved, sort_keys=False), run_dir / CONFIG_FILE)
    return fingerprint
